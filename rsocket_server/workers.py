"""``serve --workers N``: N server processes on the same ports (SO_REUSEPORT), one supervisor.

Every worker is a whole server (hub, RSocket, HTTP) reading the same Kafka
topic, so any worker can serve any client and a ``clk`` from one resumes on
another; the kernel spreads new connections across the listening sockets.
The supervisor only starts, watches and stops them: a worker that dies after
it was up is started again; one that dies while starting stops them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

log = logging.getLogger("sportsbook.workers")

START_GRACE_S = 15.0  # a worker that dies sooner is failing to start, not crashing
STOP_TIMEOUT_S = 10.0


@dataclass
class _Worker:
    index: int
    process: asyncio.subprocess.Process
    started: float = field(default_factory=time.monotonic)


class WorkerFailed(Exception):
    def __init__(self, index: int, code: int) -> None:
        super().__init__(f"worker {index} exited with {code} while starting")
        self.code = code


async def supervise(count: int, worker_args: Sequence[str]) -> int:
    """Run ``count`` copies of ``sportsbook <worker_args>`` until SIGINT/SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    workers = [await _spawn(i, worker_args) for i in range(count)]
    try:
        while not stop.is_set():
            await _wait_any(workers, stop)
            for n, worker in enumerate(workers):
                code = worker.process.returncode
                if code is None or stop.is_set():
                    continue
                if time.monotonic() - worker.started < START_GRACE_S:
                    raise WorkerFailed(worker.index, code)
                log.error("worker died; restarting", extra={"worker": worker.index, "code": code})
                workers[n] = await _spawn(worker.index, worker_args)
        return 0
    finally:
        await _stop_all(workers)


async def _spawn(index: int, worker_args: Sequence[str]) -> _Worker:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "clients.cli", *worker_args, "--worker-index", str(index)
    )
    return _Worker(index, process)


async def _wait_any(workers: list[_Worker], stop: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(w.process.wait()) for w in workers]
    waits.append(asyncio.ensure_future(stop.wait()))
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


async def _stop_all(workers: list[_Worker]) -> None:
    for worker in workers:
        if worker.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                worker.process.terminate()
    for worker in workers:
        try:
            await asyncio.wait_for(worker.process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                worker.process.kill()
            await worker.process.wait()
