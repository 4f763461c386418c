"""The feedback JSONL schema: validation, durable appends, undo, and reporting of torn or unknown lines."""

import json

import pytest

from text_envs.feedback.records import append_record, check_record, make_item_id, make_record, read_feedback


def label(item_id="i1", annotator="alice", value=1):
    return make_record("label", item_id, annotator, prompt="p", completion="c", label=value)


@pytest.mark.parametrize(
    "record, message",
    [
        ([1, 2], "JSON object"),
        ({"type": "vote", "item_id": "i", "annotator": "a", "timestamp": "t"}, "'type' must be one of"),
        ({"type": "skip", "item_id": "", "annotator": "a", "timestamp": "t"}, "'item_id'"),
        ({"type": "skip", "item_id": "i", "timestamp": "t"}, "'annotator'"),
        (
            {"type": "label", "item_id": "i", "annotator": "a", "timestamp": "t", "prompt": "p", "completion": "c"},
            "'label' must be an integer",
        ),
        (
            {
                "type": "label",
                "item_id": "i",
                "annotator": "a",
                "timestamp": "t",
                "prompt": "p",
                "completion": "c",
                "label": True,
            },
            "'label' must be an integer",
        ),
        (
            {
                "type": "label",
                "item_id": "i",
                "annotator": "a",
                "timestamp": "t",
                "prompt": "p",
                "completion": "c",
                "label": 2,
            },
            "0 or 1",
        ),
        (
            {
                "type": "comparison",
                "item_id": "i",
                "annotator": "a",
                "timestamp": "t",
                "prompt": "p",
                "completion_a": "x",
                "completion_b": "y",
                "choice": "c",
            },
            "'a' or 'b'",
        ),
        (
            {
                "type": "score",
                "item_id": "i",
                "annotator": "a",
                "timestamp": "t",
                "prompt": "p",
                "completion": "c",
                "score": "5",
            },
            "'score' must be a number",
        ),
        (
            {
                "type": "score",
                "item_id": "i",
                "annotator": "a",
                "timestamp": "t",
                "prompt": "p",
                "completion": "c",
                "score": float("nan"),
            },
            "finite",
        ),
    ],
)
def test_check_record_says_what_is_wrong(record, message):
    with pytest.raises(ValueError, match=message):
        check_record(record)


def test_append_and_read_round_trip(tmp_path):
    path = tmp_path / "feedback.jsonl"
    records = [
        label("i1"),
        make_record("comparison", "i2", "bob", prompt="p", completion_a="x", completion_b="y", choice="b"),
        make_record("score", "i3", "alice", prompt="p", completion="c", score=6.5),
        make_record("skip", "i4", "alice"),
    ]
    for record in records:
        append_record(path, record)
    log = read_feedback(path)
    assert log.problems == []
    assert log.records == records
    assert log.labels("alice") == records[:1] and log.comparisons() == records[1:2] and log.scores() == records[2:3]
    assert log.seen_item_ids("alice") == {"i1", "i3", "i4"} and log.seen_item_ids("bob") == {"i2"}
    with pytest.raises(ValueError):
        append_record(path, {**records[0], "label": 5})
    assert len(path.read_text().splitlines()) == 4
    assert read_feedback(tmp_path / "missing.jsonl").records == []


def test_undo_retracts_this_annotators_latest_record_of_the_item(tmp_path):
    path = tmp_path / "feedback.jsonl"
    for record in [label("i1", value=0), label("i1", value=1), label("i1", "bob"), label("i2")]:
        append_record(path, record)
    append_record(path, make_record("undo", "i1", "alice"))
    log = read_feedback(path)
    assert [(r["item_id"], r["annotator"], r["label"]) for r in log.records] == [
        ("i1", "alice", 0),
        ("i1", "bob", 1),
        ("i2", "alice", 1),
    ]
    append_record(path, make_record("undo", "i1", "alice"))
    assert read_feedback(path).seen_item_ids("alice") == {"i2"}


def test_a_torn_last_line_is_reported_and_the_next_record_starts_a_fresh_line(tmp_path):
    path = tmp_path / "feedback.jsonl"
    append_record(path, label("i1"))
    with open(path, "ab") as f:
        f.write(json.dumps(label("i2")).encode()[:25])  # what a crash mid-write leaves
    assert read_feedback(path).problems == [f"{path}:2: invalid JSON (Unterminated string starting at); line skipped"]
    append_record(path, label("i3"))
    log = read_feedback(path)
    assert [r["item_id"] for r in log.records] == ["i1", "i3"]
    assert len(log.problems) == 1 and log.problems[0].startswith(f"{path}:2: invalid JSON")


def test_unknown_record_types_and_bad_lines_are_reported_with_line_numbers(tmp_path):
    path = tmp_path / "feedback.jsonl"
    lines = [
        json.dumps(label("i1")),
        json.dumps({**label("i2"), "type": "vote"}),
        "",
        "[1, 2]",
        json.dumps({**label("i3"), "score": 1}).replace('"label": 1', '"label": 7'),
        json.dumps(label("i4")),
    ]
    path.write_text("\n".join(lines) + "\n")
    log = read_feedback(path)
    assert [r["item_id"] for r in log.records] == ["i1", "i4"]
    assert [problem.split(": ")[0] for problem in log.problems] == [f"{path}:2", f"{path}:4", f"{path}:5"]
    assert "'type' must be one of" in log.problems[0]


def test_item_ids_are_stable_and_tell_questions_apart():
    assert make_item_id("label", "p", "c") == make_item_id("label", "p", "c")
    assert (
        len(
            {
                make_item_id("label", "p", "c"),
                make_item_id("score", "p", "c"),
                make_item_id("label", "pc", ""),
                make_item_id("compare", "p", "a", "b"),
                make_item_id("compare", "p", "b", "a"),
            }
        )
        == 5
    )
