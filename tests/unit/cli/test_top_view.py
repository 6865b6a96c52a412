from streams.cli.top_view import build_frame, parse_metrics, rate

PAGE_1 = """
# TYPE cx_events_received_total counter
cx_events_received_total{source="kafka"} 100
# TYPE cx_alerts_raised_total counter
cx_alerts_raised_total{trigger="complaint",severity="high"} 4
# TYPE cx_consumer_lag_records gauge
cx_consumer_lag_records{topic="cx.touchpoints",partition="0"} 7
"""
PAGE_2 = """
# TYPE cx_events_received_total counter
cx_events_received_total{source="kafka"} 300
# TYPE cx_alerts_raised_total counter
cx_alerts_raised_total{trigger="complaint",severity="high"} 10
# TYPE cx_consumer_lag_records gauge
cx_consumer_lag_records{topic="cx.touchpoints",partition="0"} 3
cx_consumer_lag_records{topic="cx.touchpoints",partition="1"} 2
"""


def test_parse_sums_the_same_series_across_processes() -> None:
    scrape = parse_metrics([PAGE_1, PAGE_1])
    key = ("cx_events_received_total", (("source", "kafka"),))
    assert scrape[key] == 200


def test_rate_treats_a_counter_reset_as_a_restart() -> None:
    assert rate(100, 300, 2.0) == 100
    assert rate(300, 50, 5.0) == 10


def test_frame_shows_rates_lag_and_latest_alerts() -> None:
    before, after = parse_metrics([PAGE_1]), parse_metrics([PAGE_2])
    alert = {"customer_id": "c-9", "trigger": "complaint", "severity": "high", "gap": 31.5}
    text = build_frame(before, after, 2.0, [alert], sources=1).render()
    assert "events in           100.0/s" in text
    assert "consumer lag            5 records" in text
    # 6 complaint alerts in 2 s is 180 per minute
    assert "complaint/high" in text and "180.0" in text
    assert "c-9" in text and "gap 31.5" in text


def test_frame_shows_the_longest_wait_without_progress_and_stuck_partitions() -> None:
    page = """
# TYPE cx_consumer_waiting_seconds gauge
cx_consumer_waiting_seconds{topic="cx.touchpoints",partition="0"} 40
cx_consumer_waiting_seconds{topic="cx.touchpoints",partition="1"} 190
# TYPE cx_consumer_stuck_partitions gauge
cx_consumer_stuck_partitions 1
"""
    text = build_frame(parse_metrics([page]), parse_metrics([page]), 2.0, [], 1).render()
    assert "no progress           190 s longest wait   1 stuck partition(s)" in text
    quiet = build_frame(parse_metrics([PAGE_1]), parse_metrics([PAGE_2]), 2.0, [], 1).render()
    assert "no progress             0 s longest wait   0 stuck partition(s)" in quiet
