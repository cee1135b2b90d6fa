"""kernel.ratelimit: per call site, at most a burst of records per interval; errors always
pass; the held-back ones are counted in the next record let through."""
import logging

import pytest

from kernel.ratelimit import RateLimitFilter


class Lines(logging.Handler):
    """Keeps the formatted messages."""

    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


class Clock:
    """A clock the test moves by hand (the filter's only notion of time)."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def logged():
    """A real logger with the filter and a handler keeping the formatted lines."""
    clock = Clock()
    logger = logging.getLogger("test_ratelimit")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = Lines()
    lines = handler.lines
    logger.addHandler(handler)
    rate = RateLimitFilter(burst=3, interval=10.0, clock=clock)
    logger.addFilter(rate)
    yield logger, lines, clock
    logger.removeFilter(rate)
    logger.removeHandler(handler)


def warn_junk(logger, n):
    logger.warning("dropping junk %d", n)  # one call site for every record


def test_a_flood_from_one_site_is_cut_to_the_burst_and_counted_afterwards(logged):
    logger, lines, clock = logged
    for n in range(50):
        warn_junk(logger, n)
    assert lines == ["dropping junk 0", "dropping junk 1", "dropping junk 2"]
    clock.now = 10.0
    warn_junk(logger, 50)
    assert lines[-1] == "dropping junk 50 (47 more like this suppressed before)"
    warn_junk(logger, 51)
    assert lines[-1] == "dropping junk 51"


def test_sites_have_their_own_budgets_and_errors_always_pass(logged):
    logger, lines, _clock = logged
    for n in range(5):
        warn_junk(logger, n)
        logger.info("other %d", n)
        logger.error("failure %d", n)
    assert [line for line in lines if line.startswith("dropping")] == [
        "dropping junk 0", "dropping junk 1", "dropping junk 2"]
    assert [line for line in lines if line.startswith("other")] == ["other 0", "other 1",
                                                                     "other 2"]
    assert [line for line in lines if line.startswith("failure")] == [
        f"failure {n}" for n in range(5)]
