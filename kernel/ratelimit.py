"""Rate-limited logging: a flood of junk on a socket must not become a flood of log lines.

`RateLimitFilter` is a `logging.Filter` a module puts on its own logger (the orchestrator does,
for what it drops and refuses). Records from one call site pass at most `burst` times per
`interval` seconds; errors always pass. The first record let through after some were held
back says how many, so a dropped message is never unaccounted for once that kind of message
is logged again.
"""
import logging
import threading
import time


class RateLimitFilter(logging.Filter):
    """At most `burst` records per call site per `interval` seconds, for levels below ERROR."""

    BURST = 20
    INTERVAL = 10.0

    def __init__(self, burst=BURST, interval=INTERVAL, clock=time.monotonic):
        super().__init__()
        self.burst, self.interval, self.clock = burst, interval, clock
        self.windows = {}  # (path, line) → [window start, records passed, records held back]
        self.lock = threading.Lock()

    def filter(self, record):
        """Whether `record` is logged; the first of a new window reports the held-back ones."""
        if record.levelno >= logging.ERROR:
            return True
        site, now = (record.pathname, record.lineno), self.clock()
        with self.lock:
            window = self.windows.get(site)
            if window is None or now - window[0] >= self.interval:
                held_back = window[2] if window else 0
                self.windows[site] = [now, 1, 0]
            elif window[1] < self.burst:
                window[1] += 1
                return True
            else:
                window[2] += 1
                return False
        if held_back:
            record.msg = f"{record.msg} ({held_back} more like this suppressed before)"
        return True
