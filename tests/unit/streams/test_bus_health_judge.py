"""BusHealthJudge: the Kafka reader's health verdicts, step by step (issue 3 item 6)."""

from __future__ import annotations

from streams.kafka_bus import HEALTHY, BusHealthJudge, KafkaSettings

SETTINGS = KafkaSettings(
    "127.0.0.1:1",
    health_interval_s=1.0,
    unreachable_after_s=3.0,
    lagging_records=100,
    feed_silent_after_s=10.0,
)


def test_a_moving_topic_that_is_read_is_healthy() -> None:
    judge = BusHealthJudge(SETTINGS, now=0.0)
    assert [judge.reached(t, end=10 * t, position=10 * t) for t in (1, 2, 3)] == [HEALTHY] * 3


def test_unreachable_is_judged_only_after_unreachable_after_s() -> None:
    judge = BusHealthJudge(SETTINGS, now=0.0)
    assert judge.reached(1.0, end=5, position=5) == HEALTHY
    assert [judge.unreachable(t) for t in (2.0, 3.0, 4.0)] == [None, None, "bus unreachable"]


def test_lagging_is_judged_after_five_intervals_and_keeps_the_verdict_meanwhile() -> None:
    judge = BusHealthJudge(SETTINGS, now=0.0)
    verdicts = [judge.reached(t, end=1000 + t, position=0) for t in (1, 2, 3, 4, 5, 6)]
    assert verdicts == [None, None, None, None, None, "bus lagging"]
    assert judge.reached(7.0, end=1007, position=1007) == HEALTHY


def test_a_topic_end_that_stops_moving_is_a_silent_feed_after_feed_silent_after_s() -> None:
    """A dead feed process (helper-16's walkthrough: health stayed ok, bets accepted at
    frozen prices): the end offset stops moving; 10 s later the verdict is 'feed silent'."""
    judge = BusHealthJudge(SETTINGS, now=0.0)
    assert judge.reached(1.0, end=50, position=50) == HEALTHY
    assert judge.reached(10.9, end=50, position=50) == HEALTHY
    assert judge.reached(11.0, end=50, position=50) == "feed silent"
    assert judge.reached(12.0, end=51, position=51) == HEALTHY  # a heartbeat: alive again


def test_silence_is_not_judged_across_an_outage() -> None:
    """The end could not be read while the broker was gone: the clock restarts when it
    answers, so a reconnect is not mistaken for a silent feed."""
    judge = BusHealthJudge(SETTINGS, now=0.0)
    assert judge.reached(1.0, end=50, position=50) == HEALTHY
    assert judge.unreachable(20.0) == "bus unreachable"
    assert judge.reached(21.0, end=50, position=50) == HEALTHY
    assert judge.reached(31.0, end=50, position=50) == "feed silent"


def test_feed_silent_after_0_turns_silence_off() -> None:
    settings = KafkaSettings("127.0.0.1:1", feed_silent_after_s=0.0)
    judge = BusHealthJudge(settings, now=0.0)
    assert judge.reached(1_000.0, end=0, position=0) == HEALTHY
