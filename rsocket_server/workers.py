"""``serve --workers N``: N server processes on the same ports (SO_REUSEPORT), one supervisor.

Every worker is a whole server (hub, RSocket, HTTP) reading the same Kafka
topic, so any worker can serve any client and a ``clk`` from one resumes on
another; the kernel spreads new connections across the listening sockets.

The supervisor only starts, watches and stops them:

* Before starting any, it binds each port once *without* SO_REUSEPORT: a port
  held by another program (or by a worker orphaned by an earlier run) is an
  error naming it, not silently shared.
* Start: a worker that exits before its first ``worker N ready`` line fails the
  start; all are stopped and ``serve`` exits non-zero (an unreachable broker or
  a bad option will not get better by retrying).
* Restart: once a worker has been ready, a death is a crash: it is logged and
  that worker alone is started again after a back-off of 0.5 s, doubling up to
  30 s while it keeps dying, and back to 0.5 s after it stayed up 60 s. The
  others keep serving meanwhile; it never stops them.
* Workers die with the supervisor, even on ``kill -9``: PR_SET_PDEATHSIG on
  Linux, and each worker also stops when its parent pid changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence

log = logging.getLogger("sportsbook.workers")

RESTART_DELAY_S = 0.5
RESTART_DELAY_MAX_S = 30.0
RESTART_RESET_S = 60.0  # up this long: the next death starts the back-off over
STOP_TIMEOUT_S = 10.0
PARENT_POLL_S = 0.5
SUPERVISOR_ENV = "SPORTSBOOK_SUPERVISOR_PID"  # tells a worker whose death it must follow
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class WorkerFailed(Exception):
    """The workers could not start: ``str()`` is the one-line reason, ``code`` the exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def restart_delay(previous: float | None, uptime_s: float) -> float:
    """The back-off before restarting a worker that died after ``uptime_s``."""
    if previous is None or uptime_s >= RESTART_RESET_S:
        return RESTART_DELAY_S
    return min(previous * 2, RESTART_DELAY_MAX_S)


def check_ports_free(host: str, ports: Iterable[int]) -> None:
    """Raise WorkerFailed naming the first port another process already listens on."""
    for port in ports:
        try:
            _bind_once(host, port)
        except OSError as error:
            raise WorkerFailed(f"cannot listen on {host}:{port}: {_why(error)}", 3) from None


def _why(error: OSError) -> str:
    if error.errno == errno.EADDRINUSE:
        return "address already in use (another server, or a worker left from an earlier run?)"
    return (error.strerror or str(error)).lower()


def _bind_once(host: str, port: int) -> None:
    for family, kind, proto, _, address in socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    ):
        with socket.socket(family, kind, proto) as sock:
            # SO_REUSEADDR as the server sets it (TIME_WAIT is no conflict); no
            # SO_REUSEPORT, so any socket bound to the port makes this fail.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)


async def supervise(count: int, worker_args: Sequence[str], host: str, ports: Sequence[int]) -> int:
    """Run ``count`` copies of ``sportsbook <worker_args>`` until SIGINT/SIGTERM."""
    check_ports_free(host, ports)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    running: dict[int, asyncio.subprocess.Process] = {}
    tasks = [asyncio.ensure_future(_keep_running(i, worker_args, running)) for i in range(count)]
    stopping = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait([*tasks, stopping], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()  # a worker's failed start raises WorkerFailed here
        return 0
    finally:
        for task in [*tasks, stopping]:
            task.cancel()
        await asyncio.gather(*tasks, stopping, return_exceptions=True)
        await _stop_all(running.values())


async def _keep_running(
    index: int, worker_args: Sequence[str], running: dict[int, asyncio.subprocess.Process]
) -> None:
    """Worker ``index``, restarted with back-off whenever it dies after having been ready."""
    was_ready = False
    delay: float | None = None
    while True:
        started = time.monotonic()
        process = running[index] = await _spawn(index, worker_args)
        was_ready = await _relay_output(index, process) or was_ready
        code = await process.wait()
        if not was_ready:
            raise WorkerFailed(
                f"worker {index} {_exit_reason(code)} while starting; stopped all workers",
                code if code > 0 else 1,
            )
        delay = restart_delay(delay, time.monotonic() - started)
        log.error(
            "worker died; restarting",
            extra={"worker": index, "pid": process.pid, "code": code, "restart_in_s": delay},
        )
        await asyncio.sleep(delay)


def _exit_reason(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with {code}"


async def _spawn(index: int, worker_args: Sequence[str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "clients.cli",
        *worker_args,
        "--worker-index",
        str(index),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, SUPERVISOR_ENV: str(os.getpid())},
        preexec_fn=_die_with(os.getpid()),  # takes no lock, so safe beside threads
    )


def _die_with(supervisor: int) -> Callable[[], None]:
    """The child's pre-exec step: SIGTERM when the supervisor dies, even by ``kill -9``."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None

    def in_child() -> None:
        if prctl is not None and prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != supervisor:  # it died before prctl took effect
            os._exit(1)

    return in_child


async def _relay_output(index: int, process: asyncio.subprocess.Process) -> bool:
    """Copy the worker's stdout to ours until it closes; True if it said it was ready."""
    assert process.stdout is not None
    ready_line = f"sportsbook: worker {index} ready".encode()  # printed by clients.cli
    ready = False
    async for line in process.stdout:
        ready = ready or line.startswith(ready_line)
        with contextlib.suppress(OSError, ValueError):  # our reader left: workers go on
            sys.stdout.write(line.decode(errors="replace"))
            sys.stdout.flush()
    return ready


async def _stop_all(processes: Iterable[asyncio.subprocess.Process]) -> None:
    processes = list(processes)
    for process in processes:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
    for process in processes:
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


def exit_with_supervisor() -> None:
    """In a worker: stop (SIGTERM to itself) once the supervisor that started it is gone.

    PR_SET_PDEATHSIG covers Linux; this covers the rest, and a supervisor that
    died before the worker got here."""
    supervisor = os.environ.pop(SUPERVISOR_ENV, None)
    if supervisor is not None:
        watch = threading.Thread(
            target=_watch_parent, args=(int(supervisor),), name="supervisor-watch", daemon=True
        )
        watch.start()


def _watch_parent(supervisor: int) -> None:
    while os.getppid() == supervisor:
        time.sleep(PARENT_POLL_S)
    os.kill(os.getpid(), signal.SIGTERM)
