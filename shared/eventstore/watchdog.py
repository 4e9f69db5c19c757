"""A watchdog for a worker loop that calls into kafka-python (the outbox relay, the consumer).

Every wait of the loops' own is bounded, but a call into kafka-python may still never return (a
chaos run on three brokers once left intake's relay inside one for seven minutes after two
brokers came back). The loop calls `beat()` each time round; a watchdog thread that sees no beat
for `stall_after_s` logs where the stuck thread is (its stack), counts it, lets the owner drop the
client the stuck thread holds (`on_stall`), and starts a new thread. The stuck thread, if it ever
returns, finds itself `superseded()` and leaves without touching what is its successor's now."""

from __future__ import annotations

import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)


class Watchdog:
    def __init__(
        self,
        name: str,
        target: Callable[[], None],
        *,
        stall_after_s: float,
        stop: threading.Event,
        on_stall: Callable[[], None] = lambda: None,
    ):
        self.name = name
        self.target = target
        self.stall_after_s = stall_after_s
        self._stop = stop
        self.on_stall = on_stall
        self.thread: threading.Thread | None = None
        self._replaced: weakref.WeakSet[threading.Thread] = weakref.WeakSet()
        self._beat_at = time.monotonic()
        self.stalls_total = 0

    def beat(self) -> None:
        """The loop came round: it is not stuck."""
        self._beat_at = time.monotonic()

    def superseded(self) -> bool:
        """Whether the calling thread is one this watchdog replaced while it was stuck."""
        return threading.current_thread() in self._replaced

    def start(self) -> None:
        self._start_thread()
        threading.Thread(target=self._watch, name=f"{self.name}-watchdog", daemon=True).start()

    def join(self, timeout_s: float) -> None:
        if self.thread is not None:
            self.thread.join(timeout_s)

    def _start_thread(self) -> None:
        self._beat_at = time.monotonic()
        self.thread = threading.Thread(target=self.target, name=self.name, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(min(5.0, self.stall_after_s / 4)):
            stuck = self.thread
            stalled_s = time.monotonic() - self._beat_at
            if stuck is None or not stuck.is_alive() or stalled_s < self.stall_after_s:
                continue
            frame = sys._current_frames().get(stuck.ident)
            log.error(
                f"{self.name} stalled: one round has not come back; starting a new thread (the stuck one is "
                "left where it is, and leaves without touching anything if it ever returns)",
                stalled_s=round(stalled_s, 1),
                stack="".join(traceback.format_stack(frame)) if frame is not None else "(gone)",
            )
            self.stalls_total += 1
            self._replaced.add(stuck)
            self.on_stall()
            self._start_thread()
