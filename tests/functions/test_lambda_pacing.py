"""The sender's token bucket (recipients per second) and its backoff, with a fake clock."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "functions"))

from lambda_sender.pacing import MAX_DELAY_SECONDS, TokenBucket, backoff_delay


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TestTokenBucket:
    def test_a_full_bucket_sends_one_second_of_rate_at_once_then_paces(self) -> None:
        clock = Clock()
        bucket = TokenBucket(2.0, clock=clock)
        assert [bucket.reserve(1, budget=60) for _ in range(4)] == [0.0, 0.0, 0.5, 1.0]

    def test_it_counts_recipients_not_messages(self) -> None:
        clock = Clock()
        bucket = TokenBucket(5.0, clock=clock)
        assert bucket.reserve(5, budget=60) == 0.0
        assert bucket.reserve(3, budget=60) == pytest.approx(0.6)

    def test_it_refills_with_time_up_to_one_second_of_rate(self) -> None:
        clock = Clock()
        bucket = TokenBucket(2.0, clock=clock)
        bucket.reserve(2, budget=60)
        clock.now += 60
        assert [bucket.reserve(1, budget=60) for _ in range(3)] == [0.0, 0.0, 0.5]

    def test_a_message_larger_than_the_bucket_goes_when_full_and_leaves_a_debt(self) -> None:
        clock = Clock()
        bucket = TokenBucket(1.0, clock=clock)
        assert bucket.reserve(50, budget=60) == 0.0
        # 49 recipients of debt plus one for the next: 50 s at 1/s.
        assert bucket.reserve(1, budget=60) == pytest.approx(50.0)

    def test_a_wait_beyond_the_budget_reserves_nothing_and_says_how_long(self) -> None:
        clock = Clock()
        bucket = TokenBucket(1.0, clock=clock)
        bucket.reserve(1, budget=60)
        assert bucket.reserve(1, budget=0.5) is None
        assert bucket.wait_for(1) == pytest.approx(1.0)
        clock.now += 1
        assert bucket.reserve(1, budget=0.5) == 0.0  # the refused call took nothing

    def test_the_long_run_rate_is_the_configured_rate(self) -> None:
        clock = Clock()
        bucket = TokenBucket(3.0, clock=clock)
        sent = 0
        while clock.now < 200.0:
            wait = bucket.reserve(2, budget=60)
            assert wait is not None
            clock.now += wait
            sent += 2
        assert sent / 100.0 == pytest.approx(3.0, rel=0.05)

    @pytest.mark.parametrize("rate", [0, -1])
    def test_a_rate_that_is_not_positive_is_refused(self, rate: float) -> None:
        with pytest.raises(ValueError, match="rate must be above 0"):
            TokenBucket(rate)


class TestBackoff:
    def test_it_doubles_per_hop_with_half_of_it_jittered(self) -> None:
        lows = [backoff_delay(hop, base=2, rand=lambda: 0.0) for hop in range(1, 6)]
        highs = [backoff_delay(hop, base=2, rand=lambda: 1.0) for hop in range(1, 6)]
        assert lows == [1, 2, 4, 8, 16]
        assert highs == [2, 4, 8, 16, 32]

    def test_it_never_exceeds_the_longest_sqs_delay_and_is_never_zero(self) -> None:
        assert backoff_delay(30, base=2, rand=lambda: 1.0) == MAX_DELAY_SECONDS
        assert backoff_delay(1, base=0.1, rand=lambda: 0.0) == 1
