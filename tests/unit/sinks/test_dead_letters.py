"""The DLQ review and re-drive decisions (streams.sinks.dead_letters), on DLQ records built
by the real codec and ``dlq_record``; the Kafka side is in tests/integration/test_dlq_cmd.py."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from streams.codec import decode_event, dlq_record
from streams.codec.dlq import DLQ_ORIGINAL_MAX, PROCESSING_ERROR
from streams.codec.types import Rejection
from streams.settings import Settings
from streams.sinks.dead_letters import (
    REDRIVEN_HEADER,
    ErasureHistory,
    RedrivePlanner,
    RedriveReport,
    Selection,
    Send,
    collect,
    decoders,
    parse,
    plan,
)
from streams.sinks.topic_reader import TopicRecord

SETTINGS = Settings.from_env({}, topic_prefix="cx")
AT = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
NOW = AT.timestamp()


def event(**changes: object) -> bytes:
    base: dict[str, object] = {"event_id": "e-1", "customer_id": "c-1",
                               "occurred_at": "2026-11-26T09:00:00Z", "channel": "web",
                               "type": "page.error"}  # fmt: skip
    base.update(changes)
    return orjson.dumps({k: v for k, v in base.items() if v is not None})


def letter_record(
    raw: bytes,
    *,
    rejection: Rejection | None = None,
    topic: str = "cx.touchpoints",
    source: str = "worker",
    at: datetime = AT,
    offset: int = 0,
) -> TopicRecord:
    if rejection is None:
        decoded = decode_event(raw)
        assert isinstance(decoded, Rejection), decoded
        rejection = decoded
    record = dlq_record(rejection, topic=topic, partition=0, offset=offset, key=b"c-1",
                        source=source, rejected_at=at)  # fmt: skip
    return TopicRecord(1, offset, int(at.timestamp() * 1000), b"c-1", orjson.dumps(record))


def test_parse_gives_the_original_bytes_and_where_the_letter_sits() -> None:
    raw = b'{"event_id": 1}'
    letter = parse(letter_record(raw, offset=42))
    assert letter is not None
    assert (letter.partition, letter.offset, letter.original) == (1, 42, raw)
    assert (letter.reason, letter.path, letter.source) == ("wrong_type", "$.event_id", "worker")
    assert letter.rejected_at == NOW and letter.key == "c-1" and not letter.truncated


@pytest.mark.parametrize(
    "value",
    [b"not json", b"[1]", b'{"reason": "x"}', None,
     orjson.dumps({"reason": "r", "message": "m", "path": "$", "source": "worker",
                   "topic": "t", "original_base64": "!!", "rejected_at": "2026-11-26T10:00:00Z"})],
)  # fmt: skip
def test_parse_refuses_what_is_not_a_dlq_record(value: bytes | None) -> None:
    assert parse(TopicRecord(0, 0, 0, None, value)) is None


def test_selection_by_reason_source_path_and_time() -> None:
    bad_type = parse(letter_record(b'{"event_id": 1}'))
    bad_json = parse(letter_record(b"{", source="collector", at=AT - timedelta(hours=3)))
    assert bad_type is not None and bad_json is not None
    assert Selection(reasons=frozenset({"wrong_type"})).matches(bad_type)
    assert not Selection(reasons=frozenset({"wrong_type"})).matches(bad_json)
    assert Selection(sources=frozenset({"collector"})).matches(bad_json)
    assert not Selection(sources=frozenset({"collector"})).matches(bad_type)
    assert Selection(path_prefix="$.event").matches(bad_type)
    assert not Selection(path_prefix="$.metrics").matches(bad_type)
    assert Selection(since=NOW - 3600).matches(bad_type)
    assert not Selection(since=NOW - 3600).matches(bad_json)
    assert Selection(until=NOW - 3600).matches(bad_json)
    assert not Selection(until=NOW).matches(bad_type)  # until is exclusive


def test_stats_count_by_reason_source_topic_and_path_and_the_unreadable() -> None:
    records = [
        letter_record(b'{"event_id": 1}'),
        letter_record(event(metrics={"nps": 11})),
        letter_record(event(metrics={"nps": 12}), source="collector"),
        TopicRecord(0, 9, 0, None, b"garbage"),
    ]
    stats = collect(records, Selection())
    assert (stats.read, stats.unreadable, stats.selected) == (4, 1, 3)
    assert stats.reasons == {"out_of_range": 2, "wrong_type": 1}
    assert stats.sources == {"worker": 2, "collector": 1}
    assert stats.paths["out_of_range"] == {"$.metrics.nps": 2}
    text = "\n".join(stats.lines())
    assert "4 DLQ records read, 3 selected, 1 not DLQ records v1" in text
    assert "out_of_range" in text and "$.metrics.nps 2" in text
    assert text.index("out_of_range") < text.index("wrong_type")  # most frequent first


def test_a_record_the_codec_accepts_now_is_sent_back_as_it_was_keyed_by_customer() -> None:
    raw = event()
    failed = Rejection(PROCESSING_ERROR, "KeyError: 'x'", "$", raw)
    letter = parse(letter_record(raw, rejection=failed, offset=7))
    assert letter is not None
    send = plan(letter, decoders(SETTINGS, NOW), "cx.touchpoints.dlq")
    occurred = datetime(2026, 11, 26, 9, 0, tzinfo=UTC).timestamp()
    assert send == Send("cx.touchpoints", b"c-1", raw,
                        [(REDRIVEN_HEADER, b"cx.touchpoints.dlq:1:7")], occurred)  # fmt: skip


def test_a_future_event_is_sent_back_once_its_time_has_come() -> None:
    raw = event(occurred_at="2026-11-26T12:00:00Z")
    rejected = decode_event(raw, now=NOW)
    assert isinstance(rejected, Rejection) and rejected.reason == "occurred_at_in_future"
    letter = parse(letter_record(raw, rejection=rejected))
    assert letter is not None
    still = plan(letter, decoders(SETTINGS, NOW), "cx.touchpoints.dlq")
    assert still == "still_invalid:occurred_at_in_future"
    later = plan(letter, decoders(SETTINGS, NOW + 3 * 3600), "cx.touchpoints.dlq")
    assert isinstance(later, Send) and later.value == raw


def test_skipped_truncated_other_topic_and_still_invalid() -> None:
    codecs = decoders(SETTINGS, NOW)
    invalid = parse(letter_record(b'{"event_id": 1}'))
    assert invalid is not None
    assert plan(invalid, codecs, "dlq") == "still_invalid:wrong_type"
    other = parse(letter_record(event(), rejection=Rejection(PROCESSING_ERROR, "m", "$", event()),
                                topic="someone.else"))  # fmt: skip
    assert other is not None and plan(other, codecs, "dlq") == "other_topic"
    huge = event(text="x" * 1500) * 50  # over 64 KiB: cut in the DLQ
    assert len(huge) > DLQ_ORIGINAL_MAX
    cut = parse(letter_record(huge))
    assert cut is not None and cut.truncated
    assert plan(cut, codecs, "dlq") == "truncated"


def test_outcomes_and_erasures_go_back_to_their_own_topics() -> None:
    outcome = orjson.dumps({"outcome_id": "o-1", "customer_id": "c-9", "alert_id": "a-1",
                            "outcome": "contacted", "occurred_at": "2026-11-26T09:00:00Z"})  # fmt: skip
    letter = parse(letter_record(outcome, rejection=Rejection(PROCESSING_ERROR, "m", "$", outcome),
                                 topic="cx.outreach-outcomes"))  # fmt: skip
    assert letter is not None
    send = plan(letter, decoders(SETTINGS, NOW), "dlq")
    assert isinstance(send, Send) and (send.topic, send.key) == ("cx.outreach-outcomes", b"c-9")


def test_redrive_report_says_what_was_sent_and_why_the_rest_was_skipped() -> None:
    report = RedriveReport(read=5, unreadable=1)
    report.sent["processing_error"] = 2
    report.skipped.update({"still_invalid:wrong_type": 1, "truncated": 1})
    text = "\n".join(report.lines(dry_run=True))
    assert "5 DLQ records read (1 not DLQ records v1): would send 2, skipped 2" in text
    assert "would be rejected again as wrong_type" in text and "64 KiB" in text


def test_original_bytes_survive_base64_exactly() -> None:
    raw = b"\xff\xfe not utf-8 {"
    letter = parse(letter_record(raw))
    assert letter is not None and letter.original == raw
    assert letter.record["original_base64"] == base64.b64encode(raw).decode()


def test_a_redrive_sends_each_original_once_and_at_most_the_limit() -> None:
    """The same original twice in the DLQ (re-driven before the fix, failed again) is sent
    once: sending every copy would double it in the DLQ at each run."""
    failed = [Rejection(PROCESSING_ERROR, "KeyError", "$", event(event_id=f"e-{n}"))
              for n in (1, 1, 2, 3)]  # fmt: skip
    records = [letter_record(r.raw, rejection=r, offset=i) for i, r in enumerate(failed)]
    planner = RedrivePlanner(decoders(SETTINGS, NOW), "cx.touchpoints.dlq", Selection(), limit=2)
    sends = [planner.take(record) for record in records]
    assert [s.value if s else None for s in sends] == [failed[0].raw, None, failed[2].raw, None]
    assert planner.report.skipped == {"repeat": 1, "over_limit": 1}
    assert planner.report.sent == {PROCESSING_ERROR: 2}
    assert "sent once" in "\n".join(planner.report.lines(dry_run=False))


def erasure(customer: str, at: str, *, redriven: bool = False) -> TopicRecord:
    value = orjson.dumps({"request_id": f"r-{customer}-{at}", "customer_id": customer,
                          "requested_at": at})  # fmt: skip
    headers = ((REDRIVEN_HEADER, b"dlq:0:7"),) if redriven else ()
    return TopicRecord(0, 0, 0, customer.encode(), value, headers)


def test_the_erasure_history_keeps_the_newest_request_and_ignores_junk() -> None:
    history = ErasureHistory.read([
        erasure("c-1", "2026-11-26T08:00:00Z"),
        erasure("c-1", "2026-11-26T09:30:00Z"),
        erasure("c-1", "2026-11-26T07:00:00Z"),
        TopicRecord(0, 1, 0, b"c-2", b"not an erasure", ((REDRIVEN_HEADER, b"dlq:0:1"),)),
    ], "cx.erasure")  # fmt: skip
    assert history.erased == {"c-1": datetime(2026, 11, 26, 9, 30, tzinfo=UTC).timestamp()}
    assert history.redriven == set()  # junk is not an erasure, re-driven or not


def test_an_erasure_an_earlier_redrive_sent_is_not_sent_again_unless_asked() -> None:
    """A second run over the same DLQ window would erase again what was learnt since."""
    first = erasure("c-1", "2026-11-26T09:30:00Z", redriven=True)
    other = erasure("c-2", "2026-11-26T09:40:00Z")  # on the topic, never re-driven
    letters = [
        letter_record(first.value or b"", topic="cx.erasure",
                      rejection=Rejection(PROCESSING_ERROR, "m", "$", first.value or b"")),
        letter_record(other.value or b"", topic="cx.erasure", offset=1,
                      rejection=Rejection(PROCESSING_ERROR, "m", "$", other.value or b"")),
    ]  # fmt: skip
    history = ErasureHistory.read([first, other], "cx.erasure")
    planner = RedrivePlanner(decoders(SETTINGS, NOW), "dlq", Selection(), erasures=history)
    sends = [planner.take(record) for record in letters]
    assert [s.value if s else None for s in sends] == [None, other.value]
    assert planner.report.skipped == {"already_redriven": 1}
    assert "--again sends it" in "\n".join(planner.report.lines(dry_run=True))
    again = RedrivePlanner(decoders(SETTINGS, NOW), "dlq", Selection(), erasures=history,
                           again=True)  # fmt: skip
    assert [s.value if s else None for s in map(again.take, letters)] == [first.value, other.value]


def test_a_redrive_never_brings_an_erased_customer_back() -> None:
    """An event of c-1 (09:00) rejected, then c-1 erased (09:30): the event stays in the DLQ.
    An event after the erasure is new data and goes; an erasure itself always goes."""
    before = event(event_id="e-old")  # occurred 09:00
    after = event(event_id="e-new", occurred_at="2026-11-26T09:45:00Z")
    again = orjson.dumps({"request_id": "r-9", "customer_id": "c-1",
                          "requested_at": "2026-11-26T09:30:00Z"})  # fmt: skip
    letters = [
        letter_record(before, rejection=Rejection(PROCESSING_ERROR, "m", "$", before)),
        letter_record(after, rejection=Rejection(PROCESSING_ERROR, "m", "$", after), offset=1),
        letter_record(again, rejection=Rejection(PROCESSING_ERROR, "m", "$", again), offset=2,
                      topic="cx.erasure"),
    ]  # fmt: skip
    history = ErasureHistory.read([erasure("c-1", "2026-11-26T09:30:00Z")], "cx.erasure")
    planner = RedrivePlanner(decoders(SETTINGS, NOW), "dlq", Selection(), erasures=history)
    sends = [planner.take(record) for record in letters]
    assert [s.value if s else None for s in sends] == [None, after, again]
    assert planner.report.skipped == {"erased": 1}
    assert "erased since" in "\n".join(planner.report.lines(dry_run=True))
