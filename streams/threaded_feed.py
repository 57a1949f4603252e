"""Blocking feed adapters on a worker thread, handed to the asyncio loop safely.

Case B27: reactivex's ``AsyncIOScheduler`` uses ``call_soon``, which is not
thread-safe, and reactivex has no backpressure. Here the blocking source runs
as a reactivex pipeline on its own thread; every item crosses to the loop with
``run_coroutine_threadsafe`` (``call_soon_threadsafe`` underneath, so an idle
loop wakes at once) and the worker *waits* for the bounded bus to accept it:
a fast feed is slowed down, never buffered without bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

import reactivex as rx
from reactivex import operators as ops
from reactivex.scheduler import NewThreadScheduler

from sportsbook_core.changes import FeedStatus, MarketChange

FeedItem = MarketChange | FeedStatus


async def run_threaded_feed(
    messages: Callable[[], Iterable[Any]],
    transform: Callable[[Any], Iterable[FeedItem]],
    publish: Callable[[FeedItem], Coroutine[Any, Any, None]],
) -> int:
    """Read ``messages()`` on a worker thread, ``transform`` each, publish in order.

    Returns how many items were published once the source is exhausted.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[int] = loop.create_future()
    published = 0

    def deliver(item: FeedItem) -> None:
        nonlocal published
        asyncio.run_coroutine_threadsafe(publish(item), loop).result()
        published += 1

    def finish(error: Exception | None = None) -> None:
        def settle() -> None:
            if done.done():
                return
            if error is None:
                done.set_result(published)
            else:
                done.set_exception(error)

        loop.call_soon_threadsafe(settle)

    pipeline = rx.from_iterable(messages(), scheduler=NewThreadScheduler()).pipe(
        ops.flat_map(lambda message: rx.from_iterable(transform(message)))
    )
    subscription = pipeline.subscribe(on_next=deliver, on_error=finish, on_completed=finish)
    try:
        return await done
    finally:
        subscription.dispose()
