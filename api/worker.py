"""Ingest work off the request path: one bounded background worker per API process.

Writes that extract or rescore (documents, uploads, usage) run on a single worker thread, one at a time, and
the request awaits the result without holding the event loop or a thread-pool slot; vector indexing runs on
the same thread between jobs, with a one-thread embedding model. So at most one CPU-heavy task runs beside
the event loop whatever the number of clients, and GET health/why keep their latency while documents arrive.
The queue is bounded: when it is full a write is refused at once with 503 and ``Retry-After`` (never an
unbounded backlog of request bodies in memory).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from extractors.errors import HealthtraceError

log = logging.getLogger("healthtrace.api")
T = TypeVar("T")
_SWITCH_INTERVAL_S = 0.001  # the event loop waits at most ~1 ms for the GIL while a job computes


class BusyError(HealthtraceError):
    """The ingest queue is full: retry after a moment (HTTP 503 with Retry-After)."""


class IngestWorker:
    """A bounded FIFO of jobs on one daemon thread; ``idle`` tasks (vector indexing) run when it is empty."""

    def __init__(self, max_pending: int = 32) -> None:
        self._jobs: queue.Queue[tuple[Callable[[], Any], concurrent.futures.Future[Any]] | None] = \
            queue.Queue(maxsize=max_pending)
        self._idle: list[Callable[[], None]] = []
        self._idle_wanted = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopped = False

    def start(self) -> None:
        with self._lock:
            if self._thread is None and not self._stopped:
                if sys.getswitchinterval() > _SWITCH_INTERVAL_S:
                    sys.setswitchinterval(_SWITCH_INTERVAL_S)
                self._thread = threading.Thread(target=self._loop, name="healthtrace-ingest", daemon=True)
                self._thread.start()

    def on_idle(self, task: Callable[[], None]) -> None:
        """Register a task that runs after jobs, whenever :meth:`wake_idle` asked for it."""
        self._idle.append(task)

    def wake_idle(self) -> None:
        self._idle_wanted.set()
        self.start()
        try:
            self._jobs.put_nowait(None)  # a nudge: the loop runs idle tasks once the queue is drained
        except queue.Full:
            pass  # busy: the idle tasks run after the queued jobs anyway

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> concurrent.futures.Future[T]:
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()
        self.start()
        try:
            self._jobs.put_nowait((lambda: fn(*args, **kwargs), fut))
        except queue.Full:
            raise BusyError(f"the ingest queue is full ({self._jobs.maxsize} writes waiting); retry shortly") from None
        return fut

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` on the worker and await its result (its exception is raised here)."""
        return await asyncio.wrap_future(self.submit(fn, *args, **kwargs))

    def _loop(self) -> None:
        while True:
            item = self._jobs.get()
            if item is not None:
                fn, fut = item
                if fut.set_running_or_notify_cancel():
                    try:
                        fut.set_result(fn())
                    except BaseException as e:  # handed to the awaiting request
                        fut.set_exception(e)
            elif self._stopped:
                return
            if self._jobs.empty() and self._idle_wanted.is_set():
                self._idle_wanted.clear()
                for task in self._idle:
                    try:
                        task()
                    except Exception:  # background work (vectors are rebuildable) never kills the worker
                        log.exception("background task failed")

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            self._stopped = True
            thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            thread.join(timeout)
