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


TORN_WRITE_CHILD = """
import os, signal, sys

from text_envs import durable
from text_envs.feedback.labelling import label_items, make_item

path, tear_at = sys.argv[1], int(sys.argv[2])
real_open, line_writes = open, []


class TornFile:
    # The real file, except that the write of record line number tear_at (0-based) stops halfway: the bytes
    # reach the disk, then the process is killed inside append_line, before the rest of the line.
    def __init__(self, file):
        self._file = file

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._file.__exit__(*exc)

    def __getattr__(self, name):
        return getattr(self._file, name)

    def write(self, data):
        if data.endswith(b"\\n") and len(data) > 1:
            if len(line_writes) == tear_at:
                self._file.write(data[: len(data) // 2])
                self._file.flush()
                os.fsync(self._file.fileno())
                os.kill(os.getpid(), signal.SIGKILL)
            line_writes.append(data)
        return self._file.write(data)


durable.open = lambda *args, **kwargs: TornFile(real_open(*args, **kwargs))
items = [make_item("label", "the food was", [f" dish {i}"]) for i in range(5)]
label_items(items, path, "alice", "label", input_fn=lambda question: "1", output_fn=lambda text: None)
"""


@pytest.mark.parametrize("tear_at", [0, 2, 4])
def test_a_record_torn_by_sigkill_inside_its_write_costs_only_that_record(tmp_path, tear_at):
    """A child labeller killed by SIGKILL halfway through writing a record line (deterministic fault injection in
    append_line's own write); reading keeps every complete record, and a resumed session asks only the rest."""
    import signal
    import subprocess
    import sys

    from text_envs.feedback.labelling import label_items, make_item

    path = tmp_path / "feedback.jsonl"
    child = subprocess.run(
        [sys.executable, "-c", TORN_WRITE_CHILD, str(path), str(tear_at)], capture_output=True, timeout=120
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    raw = path.read_bytes()
    assert raw.count(b"\n") == tear_at and not raw.endswith(b"\n")  # the kill landed inside the line
    log = read_feedback(path)
    items = [make_item("label", "the food was", [f" dish {i}"]) for i in range(5)]
    assert [r["item_id"] for r in log.records] == [item.item_id for item in items[:tear_at]]
    assert len(log.problems) == 1 and log.problems[0].startswith(f"{path}:{tear_at + 1}: invalid JSON")

    shown = []
    summary = label_items(items, path, "alice", "label", input_fn=lambda question: "0", output_fn=shown.append)
    assert summary.judged == 5 - tear_at and summary.remaining == 0
    assert shown[0] == f"warning: {log.problems[0]}"
    resumed = read_feedback(path)
    assert sorted(r["item_id"] for r in resumed.labels("alice")) == sorted(item.item_id for item in items)
    assert [r["label"] for r in resumed.records] == [1] * tear_at + [0] * (5 - tear_at)
    assert len(resumed.problems) == 1  # the torn line stays where it was, and nothing was glued onto it
    assert resumed.problems[0].startswith(f"{path}:{tear_at + 1}: invalid JSON")
