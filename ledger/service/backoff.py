"""Growing delays between the follower's retries of a failing step (the bus refusing a dead
letter, the database connection lost): FIRST seconds, doubled after each failure, at most
CAP; a success starts again from FIRST. Bounded attempts (`attempts`) turn a failure that
lasts into an exit with one line instead of retrying for ever.
"""

from __future__ import annotations

from dataclasses import dataclass

FIRST = 0.5  # seconds before the first retry
CAP = 30.0  # seconds between retries, at most


@dataclass
class Backoff:
    """Consecutive failures of one step, and the delay before its next try."""

    first: float = FIRST
    cap: float = CAP
    failures: int = 0

    def delay(self) -> float:
        """Count a failure; the seconds to wait before trying again."""
        wait = min(self.cap, self.first * 2.0 ** self.failures)
        self.failures += 1
        return wait

    def reset(self) -> None:
        """The step succeeded: the next failure waits FIRST again."""
        self.failures = 0


def schedule(count: int, first: float = FIRST, cap: float = CAP) -> list[float]:
    """The first `count` delays of a step that keeps failing."""
    backoff = Backoff(first, cap)
    return [backoff.delay() for _ in range(count)]
