"""Scheduled operations work: the availability probe and the alert rules, on their own clocks.

`powerdesk ops probe` / `ops alerts` run one of them in the foreground; `powerdesk serve --monitor`
runs both in a background thread of the serving (or supervising) process. A probe inside the
process it watches cannot record the time that process is down, so production runs
`powerdesk ops probe` from another machine or a timer and keeps `--monitor` for small set-ups.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from channels.alerts import run_alerts_once
from channels.probe import DEFAULT_TIMEOUT_SECONDS, probe_once

log = logging.getLogger("powerdesk.channels")

PROBE_EVERY_SECONDS = 60.0
ALERTS_EVERY_SECONDS = 300.0


def max_gap(every_seconds: float) -> timedelta:
    """How long a silence between two checks may be and still count as probed time (3 missed checks)."""
    return timedelta(seconds=3 * every_seconds + DEFAULT_TIMEOUT_SECONDS)


class Monitor:
    """Probe every `probe_every` seconds and evaluate alerts every `alerts_every` seconds, until stopped."""

    def __init__(self, base_url: str, probe_every: float = PROBE_EVERY_SECONDS,
                 alerts_every: float = ALERTS_EVERY_SECONDS, timeout: float = DEFAULT_TIMEOUT_SECONDS,
                 first_delay: float = 0.0) -> None:
        self.base_url, self.probe_every, self.alerts_every = base_url, probe_every, alerts_every
        self.timeout, self.first_delay = timeout, first_delay
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def wait_ready(self, limit_seconds: float = 600.0) -> None:
        """Inside `serve`: start probing once the service says it is ready, so start-up is not fault time."""
        import httpx

        waited = 0.0
        while waited < limit_seconds and not self.stopping.is_set():
            try:
                if httpx.get(self.base_url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            self.stopping.wait(2.0)
            waited += 2.0

    def run(self) -> None:
        if self.stopping.wait(self.first_delay):
            return
        next_alerts = 0.0
        elapsed = 0.0
        while not self.stopping.is_set():
            try:
                probe_once(self.base_url, max_gap(self.probe_every), self.timeout)
            except Exception:  # noqa: BLE001 - the database may be down too; keep watching
                log.exception("probe failed to record")
            if elapsed >= next_alerts:
                try:
                    run_alerts_once()
                except Exception:  # noqa: BLE001
                    log.exception("alert evaluation failed")
                next_alerts = elapsed + self.alerts_every
            if self.stopping.wait(self.probe_every):
                break
            elapsed += self.probe_every

    def start(self) -> Monitor:
        """Run in a background thread, from the moment the service is ready."""

        def run() -> None:
            self.wait_ready()
            self.run()

        self._thread = threading.Thread(target=run, name="powerdesk-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 5)
