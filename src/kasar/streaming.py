"""A blocking generator streamed to an HTTP response from one worker thread.

Starlette's ``iterate_in_threadpool`` hands every ``next()`` to a worker thread
and waits for it: a round trip through the thread pool per chunk, measured at
2.6 ms for the 33 chunks of a 2 MB export (5.0 ms against 2.4 ms for the same
bytes from an async generator). Here one thread runs the generator to its end
and hands the chunks over through a bounded queue, so that reading the database
and sending the bytes overlap. The generator is always closed in its own thread,
however the response ends (done, an error, the client gone).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Iterator

import anyio

AHEAD = 4  # chunks read ahead of the client at most (memory: AHEAD x chunk size)
_DONE = object()


async def stream_in_thread(chunks: Iterator[bytes]) -> AsyncGenerator[bytes, None]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    room = threading.Semaphore(AHEAD)
    stop = threading.Event()

    def produce() -> None:
        try:
            for chunk in chunks:
                while not room.acquire(timeout=0.5):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                loop.call_soon_threadsafe(queue.put_nowait, chunk)
            loop.call_soon_threadsafe(queue.put_nowait, _DONE)
        except BaseException as exc:  # handed to the response, which ends with it
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    producer = threading.Thread(target=produce, name="kasar-stream", daemon=True)
    producer.start()
    try:
        while True:
            item = await queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            room.release()
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(producer.join)
