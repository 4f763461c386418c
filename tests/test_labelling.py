"""The labeller: its key loop driven through an input function, resuming, bad input files, and a SIGKILL mid-session."""

import io
import json
import os
import runpy
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from text_envs.feedback.labelling import items_from_samples, label_items, make_item, read_completions
from text_envs.feedback.records import read_feedback
from text_envs_agents import sample_completions

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "label_feedback.py"
ITEMS = [make_item("label", f"prompt {i}", [f" completion {i}"]) for i in range(3)]


class Person:
    """Types the given answers in turn (then end of input, like Ctrl-D); remembers what it was shown."""

    def __init__(self, *answers: str):
        self.answers = list(answers)
        self.shown: list[str] = []

    def input(self, question: str) -> str:
        if not self.answers:
            raise EOFError
        return self.answers.pop(0)

    def print(self, text: str) -> None:
        self.shown.append(text)

    def progress(self) -> list[str]:
        return [line.split("\n")[0] for line in self.shown if line.startswith("[")]


def session(path, *answers, items=ITEMS, mode="label", annotator="alice"):
    person = Person(*answers)
    summary = label_items(items, path, annotator, mode, input_fn=person.input, output_fn=person.print)
    assert person.answers == []
    return summary, person


def test_judgements_are_appended_with_the_annotator_id(tmp_path):
    path = tmp_path / "feedback.jsonl"
    summary, person = session(path, "1", "maybe", "0", "1", "")
    assert (summary.judged, summary.skipped, summary.remaining) == (3, 0, 0)
    assert person.progress() == ["[1/3]", "[2/3]", "[2/3]", "[3/3]"]
    assert any("'maybe' is not a key" in line for line in person.shown)
    log = read_feedback(path)
    assert [(r["item_id"], r["annotator"], r["completion"], r["label"]) for r in log.records] == [
        (item.item_id, "alice", item.completions[0], label) for item, label in zip(ITEMS, [1, 0, 1], strict=True)
    ]


def test_skip_undo_and_quit(tmp_path):
    path = tmp_path / "feedback.jsonl"
    summary, person = session(path, "u", "s", "1", "u", "u", "0", "q")
    assert "nothing to undo in this session" in person.shown
    assert person.progress() == ["[1/3]", "[1/3]", "[2/3]", "[3/3]", "[2/3]", "[1/3]", "[2/3]"]
    assert (summary.judged, summary.skipped, summary.undone, summary.remaining) == (2, 1, 2, 2)
    assert [r["type"] for r in map(json.loads, path.read_text().splitlines())] == [
        "skip",
        "label",
        "undo",
        "undo",
        "label",
    ]
    log = read_feedback(path)
    assert [(r["item_id"], r["label"]) for r in log.records] == [(ITEMS[0].item_id, 0)]


def test_the_last_answer_can_be_undone_before_the_session_ends(tmp_path):
    path = tmp_path / "feedback.jsonl"
    session(path, "1", "1", "1", "u", "0")  # then end of input at "all items done"
    assert [r["label"] for r in read_feedback(path).labels()] == [1, 1, 0]


def test_a_second_session_resumes_with_the_items_not_yet_judged(tmp_path):
    path = tmp_path / "feedback.jsonl"
    session(path, "1", "s", "q")
    summary, person = session(path, "0")
    assert "3 items, 2 already judged or skipped by alice, 1 to go" in person.shown
    assert person.progress() == ["[3/3]"] and summary.remaining == 0
    _, bob = session(path, "q", annotator="bob")
    assert bob.progress() == ["[1/3]"]
    _, again = session(path)
    assert again.progress() == []
    assert read_feedback(path).seen_item_ids("alice") == {item.item_id for item in ITEMS}


def test_a_corrupt_line_in_the_output_file_is_reported_and_skipped(tmp_path):
    path = tmp_path / "feedback.jsonl"
    session(path, "1", "0", "q")
    lines = path.read_text().splitlines()
    path.write_text(lines[0] + "\n" + lines[1][:30] + "\n")  # the second judgement is torn
    summary, person = session(path, "1", "0")
    assert person.shown[0].startswith(f"warning: {path}:2: invalid JSON")
    assert person.progress() == ["[2/3]", "[3/3]"]
    log = read_feedback(path)
    assert [r["item_id"] for r in log.records] == [item.item_id for item in ITEMS] and len(log.problems) == 1


def test_compare_mode_records_preferences(tmp_path):
    path = tmp_path / "feedback.jsonl"
    items = [make_item("compare", "p", [" good", " bad"]), make_item("compare", "q", [" x", " y"])]
    summary, person = session(path, "1", "b", "A", items=items, mode="compare")
    assert "a: " + " good" in person.shown[1]
    log = read_feedback(path)
    assert [(r["completion_a"], r["completion_b"], r["choice"]) for r in log.comparisons("alice")] == [
        (" good", " bad", "b"),
        (" x", " y", "a"),
    ]


def test_completions_file_reports_malformed_lines_by_number(tmp_path):
    path = tmp_path / "completions.jsonl"
    path.write_text(
        '{"prompt": "p1", "completion": " c1"}\n'
        "{oops\n"
        "\n"
        '{"prompt": "p2"}\n'
        '["p3", " c3"]\n'
        '{"prompt": "p4", "completion": "\\ud800"}\n'
        '{"prompt": "p5", "completion": " c5", "source": "policy-7"}\n'
    )
    items, problems = read_completions(path, "label")
    assert [(item.prompt, item.completions) for item in items] == [("p1", (" c1",)), ("p5", (" c5",))]
    assert [problem.split(": ")[0] for problem in problems] == [f"{path}:{n}" for n in (2, 4, 5, 6)]
    assert "'completion' must be a string" in problems[1] and problems[0].endswith("line skipped")
    items, problems = read_completions(path, "compare")
    assert items == [] and len(problems) == 6


def test_sampled_completions_make_reproducible_items():
    samples = sample_completions(
        ["the pool of this inn", "my review of this novel: the"], num_samples=2, max_new_tokens=5, seed=3
    )
    assert [prompt for prompt, _ in samples] == ["the pool of this inn"] * 2 + ["my review of this novel: the"] * 2
    assert all(isinstance(completion, str) for _, completion in samples)
    assert (
        sample_completions(
            ["the pool of this inn", "my review of this novel: the"], num_samples=2, max_new_tokens=5, seed=3
        )
        == samples
    )
    pairs = items_from_samples(samples, "compare")
    assert [item.completions for item in pairs] == [(samples[0][1], samples[1][1]), (samples[2][1], samples[3][1])]
    with pytest.raises(ValueError, match="two completions per prompt"):
        items_from_samples(samples[1:3], "compare")


def test_records_survive_sigkill_and_a_resumed_run_finishes_the_rest(tmp_path, capsys, monkeypatch):
    total, answered, kill_at = 200, 60, 50
    completions, output = tmp_path / "completions.jsonl", tmp_path / "feedback.jsonl"
    completions.write_text(
        "".join(json.dumps({"prompt": f"p{i}", "completion": f" c{i}"}) + "\n" for i in range(total))
    )
    args = ["--completions", str(completions), "--feedback-file", str(output), "--annotator", "alice"]
    shown = []
    with subprocess.Popen(
        [sys.executable, str(SCRIPT), *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        watchdog = threading.Timer(60, process.kill)
        watchdog.start()
        process.stdin.write("1\n0\n" * (answered // 2))  # stdin stays open: the script then waits for more
        process.stdin.flush()
        for line in process.stdout:
            shown.append(line)
            if f"[{kill_at}/{total}]" in line:
                os.kill(process.pid, signal.SIGKILL)  # answers are still streaming in: kill mid-session
                break
        process.wait()
        watchdog.cancel()
    assert f"[{kill_at}/{total}]" in shown[-1] and process.returncode == -signal.SIGKILL, "".join(shown[-20:])

    log = read_feedback(output)
    written = len(output.read_bytes().splitlines())
    assert len(log.problems) <= 1 and all(p.startswith(f"{output}:{written}: ") for p in log.problems)  # last line
    records = log.labels("alice")
    assert kill_at - 1 <= len(records) <= answered  # every answer the script had moved past is on disk
    expected = [(f"p{i}", 1 - i % 2) for i in range(len(records))]
    assert [(r["prompt"], r["label"]) for r in records] == expected

    monkeypatch.setattr(sys, "stdin", io.StringIO("1\n" * total))
    runpy.run_path(str(SCRIPT), run_name="label_feedback")["main"](args)
    resumed = capsys.readouterr().out
    assert f"{total} items, {len(records)} already judged or skipped by alice, {total - len(records)} to go" in resumed
    assert f"[{len(records) + 1}/{total}]" in resumed and f"[{len(records)}/{total}]" not in resumed
    log = read_feedback(output)
    assert log.seen_item_ids("alice") == {make_item("label", f"p{i}", [f" c{i}"]).item_id for i in range(total)}
    assert len(log.labels()) == total
