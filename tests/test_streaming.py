"""``stream_in_thread``: order, errors, back-pressure and closing."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import anyio
import pytest

from kasar.streaming import AHEAD, stream_in_thread


class Source:
    def __init__(self, count: int, fail_at: int | None = None) -> None:
        self.count, self.fail_at = count, fail_at
        self.produced = 0
        self.closed = threading.Event()
        self.thread: str | None = None

    def __iter__(self) -> Iterator[bytes]:
        try:
            for i in range(self.count):
                if i == self.fail_at:
                    raise RuntimeError("the database went away")
                self.produced += 1
                yield str(i).encode()
        finally:
            self.thread = threading.current_thread().name
            self.closed.set()


def test_every_chunk_in_order_then_closed_in_its_thread() -> None:
    source = Source(50)

    async def read() -> list[bytes]:
        return [chunk async for chunk in stream_in_thread(iter(source))]

    assert anyio.run(read) == [str(i).encode() for i in range(50)]
    assert source.closed.is_set() and source.thread == "kasar-stream"


def test_an_error_mid_stream_reaches_the_reader() -> None:
    source = Source(50, fail_at=7)

    async def read() -> list[bytes]:
        out = []
        async for chunk in stream_in_thread(iter(source)):
            out.append(chunk)
        return out

    with pytest.raises(RuntimeError, match="went away"):
        anyio.run(read)
    assert source.closed.is_set()


def test_a_reader_that_stops_closes_the_source_and_it_reads_ahead_little() -> None:
    source = Source(10_000)

    async def read_three() -> None:
        stream = stream_in_thread(iter(source))
        for _ in range(3):
            await stream.__anext__()
        await anyio.sleep(0.2)  # the producer fills its room, then waits
        assert source.produced <= 3 + AHEAD + 1
        await stream.aclose()

    anyio.run(read_three)
    assert source.closed.wait(5)
    assert source.produced < 100
