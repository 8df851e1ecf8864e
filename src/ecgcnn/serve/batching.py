"""Inference off the event loop, with opportunistic micro-batching of concurrent requests.

One :class:`InferenceQueue` per predictor owns a single worker thread: the predictor (a LiteRT interpreter, an
ONNX Runtime session, a torch module) is never called from two threads at once, and the event loop never runs
model code. While a batch runs, new requests wait in a list; when the batch finishes, every waiting single-beat
request (up to ``max_batch`` beats) goes into the next ``predict_proba`` call together. Nothing waits for a timer:
an idle server runs a lone request at once, a busy one amortises the thread hand-off and the interpreter call over
many beats. Multi-beat requests run in calls of their own, so their rows are exactly what ``predict_proba`` returns
for that request's beats.

Merging single beats is exact for the full-INT8 TFLite models (integer kernels compute each row independently;
``tests/test_serve.py`` checks it); float backends may order a reduction differently for another batch size, so
for them a merged beat can differ from a lone ``predict_proba`` call in the last float32 bit. ``micro_batch=False``
turns merging off.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np


class InferenceQueue:
    """``await queue.predict(beats)`` → ``predictor.predict_proba(beats)``, computed on the inference thread."""

    def __init__(self, predictor, max_batch: int = 64, micro_batch: bool = True):
        self.predictor = predictor
        self.max_batch = max(1, int(max_batch))
        self.micro_batch = micro_batch
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ecgcnn-inference")
        self._waiting: list[tuple[np.ndarray, asyncio.Future]] = []
        self._busy = False
        # Counters for /healthz-style introspection and the tests: calls made and beats computed.
        self.calls = 0
        self.beats = 0

    async def predict(self, beats: np.ndarray) -> np.ndarray:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._waiting.append((beats, future))
        if not self._busy:
            self._next(loop)
        return await future

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # ---- scheduling (always on the event loop thread) ------------------------------------------------------------
    def _take(self) -> list[tuple[np.ndarray, asyncio.Future]]:
        """The next batch: the oldest request, plus (micro-batching) every waiting single beat that fits."""
        first = self._waiting.pop(0)
        batch = [first]
        if self.micro_batch and len(first[0]) == 1:
            rest = []
            for item in self._waiting:
                if len(item[0]) == 1 and len(batch) < self.max_batch:
                    batch.append(item)
                else:
                    rest.append(item)
            self._waiting = rest
        return batch

    def _next(self, loop: asyncio.AbstractEventLoop) -> None:
        # Requests whose client went away (cancelled futures) are dropped before any work is done for them.
        self._waiting = [item for item in self._waiting if not item[1].done()]
        if not self._waiting:
            self._busy = False
            return
        self._busy = True
        batch = self._take()
        beats = batch[0][0] if len(batch) == 1 else np.concatenate([b for b, _ in batch], axis=0)
        job = loop.run_in_executor(self._executor, self._compute, beats)
        job.add_done_callback(lambda done: self._finish(loop, batch, done))

    def _compute(self, beats: np.ndarray) -> np.ndarray:
        probabilities = self.predictor.predict_proba(beats)
        self.calls += 1
        self.beats += len(beats)
        return probabilities

    def _finish(self, loop, batch, done: asyncio.Future) -> None:
        error = done.exception() if not done.cancelled() else asyncio.CancelledError()
        if error is None:
            probabilities = done.result()
            start = 0
            for beats, future in batch:
                if not future.done():
                    future.set_result(probabilities[start:start + len(beats)])
                start += len(beats)
        else:
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
        self._next(loop)
