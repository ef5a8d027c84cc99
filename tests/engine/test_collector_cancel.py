"""Cancelling a task that reads an answer always cancels the answer, even while tokens stream in.

On Python 3.10/3.11 ``asyncio.wait_for`` swallows a cancellation that arrives just as its inner
wait completes (gh-86296); a reader woken at every token hits that race often, and the task then
read the whole answer instead of stopping (found by the gRPC deadline tests under CPU load).
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from streamer.engine.collector import AnswerStream
from streamer.engine.protocol import FinishReason

pytestmark = pytest.mark.timeout(60)


def test_cancelling_the_reading_task_cancels_the_answer_while_tokens_stream():
    async def trial() -> float:
        stream = AnswerStream()
        stop = threading.Event()

        def producer() -> None:  # a token every ~0.2 ms, as a fast decoder would deliver them
            while not stop.is_set() and not stream.finished:
                stream.put("x", [1])
                time.sleep(0.0002)

        thread = threading.Thread(target=producer)
        thread.start()
        try:

            async def read() -> None:
                async for _ in stream:
                    pass

            task = asyncio.ensure_future(read())
            await asyncio.sleep(0.003)
            cancelled_at = time.perf_counter()
            task.cancel()
            await asyncio.wait({task}, timeout=2.0)
            assert task.done(), "the reader ignored its cancellation"
            assert stream.finish_reason is FinishReason.CANCELLED
            return time.perf_counter() - cancelled_at
        finally:
            stop.set()
            thread.join()

    async def main() -> None:
        for _ in range(200):
            assert await trial() < 1.0

    asyncio.run(main())
