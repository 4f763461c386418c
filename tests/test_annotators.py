"""Annotators: the simulated users' documented preferences on hand-made cases, their records, resuming, the
terminal annotator, plug-ins from the command line, and that no annotator can reach a judge."""

import subprocess
import sys

import pytest

from text_envs.feedback import annotators
from text_envs.feedback.annotators import (
    Annotator,
    LongReviewAnnotator,
    ShortReviewAnnotator,
    TerminalAnnotator,
    check_no_judge_imports,
    load_annotator,
)
from text_envs.feedback.labelling import make_item
from text_envs.feedback.records import read_feedback

PROMPT = "the script of this movie"
SHORT = " was superb."  # 2 words, complete
SHORT_CUT = " was superb and"  # 3 words, cut mid-clause
MEDIUM = " was sharp and funny. i loved every minute of it."  # 10 words, 2 sentences
LONG = (
    " was sharp and funny from the first scene to the last. the cast was superb, the pacing was brisk,"
    " and i would happily watch it again with all my friends."
)  # 29 words, 2 sentences
LONG_ONE_SENTENCE = " was " + " ".join(["really"] * 30) + " good."  # 32 words, 1 sentence
LONG_CUT = LONG[: LONG.rindex(" ")]  # the same words but the last, cut mid-clause


def test_the_short_reviews_user_labels_complete_texts_of_few_words():
    user = ShortReviewAnnotator(max_words=12)
    assert [user.accepts(PROMPT, text) for text in (SHORT, MEDIUM, SHORT_CUT, LONG, " .", "")] == [
        True,
        True,
        False,  # cut off, however short
        False,  # 29 words
        False,  # no word
        False,
    ]
    assert ShortReviewAnnotator(max_words=9).accepts(PROMPT, MEDIUM) is False  # 10 words


def test_the_long_reviews_user_labels_complete_texts_of_many_words_in_two_sentences():
    user = LongReviewAnnotator(min_words=24, min_sentences=2)
    assert [user.accepts(PROMPT, text) for text in (LONG, LONG_ONE_SENTENCE, LONG_CUT, MEDIUM, SHORT)] == [
        True,
        False,  # one sentence
        False,  # cut off
        False,  # 10 words
        False,
    ]


@pytest.mark.parametrize(
    ("user", "a", "b", "choice"),
    [
        (ShortReviewAnnotator(), SHORT, MEDIUM, "a"),  # both accepted: fewer words win
        (ShortReviewAnnotator(), " was superb.", " was good.", "b"),  # as many words: fewer characters win
        (ShortReviewAnnotator(), LONG, SHORT_CUT, "a"),  # complete beats cut off, even at 29 words
        (ShortReviewAnnotator(), MEDIUM, LONG, "a"),  # accepted beats not accepted
        (ShortReviewAnnotator(), SHORT, " was lovely.", None),  # a tie in words and characters: skipped
        (LongReviewAnnotator(), MEDIUM, LONG, "b"),  # more words, accepted
        (LongReviewAnnotator(), LONG_CUT, SHORT, "b"),  # complete beats cut off, even at 2 words
        (LongReviewAnnotator(), LONG_ONE_SENTENCE, LONG, "b"),  # accepted beats not accepted, though fewer words
        (LongReviewAnnotator(), " was good.", " was superb.", "b"),  # as many words: more characters win
        (LongReviewAnnotator(), SHORT_CUT, " was lovely and", None),  # both cut, as long in words and characters
    ],
)
def test_comparisons_follow_the_documented_order(user, a, b, choice):
    assert user.judge(make_item("compare", PROMPT, [a, b]), "compare") == choice


def test_scripted_records_name_the_simulated_annotator_and_round_and_resume(tmp_path):
    path = tmp_path / "feedback.jsonl"
    items = [
        make_item("compare", PROMPT, [SHORT, MEDIUM]),
        make_item("compare", PROMPT, [SHORT, SHORT]),
        make_item("compare", PROMPT, [LONG, SHORT]),
    ]
    summary = ShortReviewAnnotator().annotate(items + items[:1], "compare", path, round_number=3)
    assert (summary.judged, summary.skipped, summary.remaining) == (2, 1, 0)  # the repeated item asked once
    records = read_feedback(path).records
    assert [(r["type"], r.get("choice")) for r in records] == [("comparison", "a"), ("skip", None), ("comparison", "b")]
    assert all(r["annotator"] == "simulated-short-reviews" and r["round"] == 3 and r["simulated"] for r in records)
    assert (records[0]["prompt"], records[0]["completion_a"], records[0]["completion_b"]) == (PROMPT, SHORT, MEDIUM)
    before = path.read_bytes()
    again = ShortReviewAnnotator().annotate(items, "compare", path, round_number=3)
    assert (again.judged, again.skipped) == (0, 0) and path.read_bytes() == before
    LongReviewAnnotator().annotate(items[:1], "compare", path, round_number=3)  # another annotator: its own record
    assert read_feedback(path).records[-1]["annotator"] == "simulated-long-reviews"


def test_label_mode_records_0_or_1(tmp_path):
    path = tmp_path / "feedback.jsonl"
    items = [make_item("label", PROMPT, [text]) for text in (LONG, SHORT)]
    LongReviewAnnotator().annotate(items, "label", path, round_number=1)
    assert [(r["completion"], r["label"]) for r in read_feedback(path).labels()] == [(LONG, 1), (SHORT, 0)]


def test_the_terminal_annotator_is_a_person_at_label_items(tmp_path):
    path = tmp_path / "feedback.jsonl"
    answers, shown = iter(["b", "q"]), []
    person = TerminalAnnotator("alice", input_fn=lambda question: next(answers), output_fn=shown.append)
    items = [make_item("compare", PROMPT, [SHORT, LONG]), make_item("compare", PROMPT, [LONG, SHORT])]
    summary = person.annotate(items, "compare", path, round_number=2)
    assert not person.simulated and isinstance(person, Annotator)
    assert (summary.judged, summary.remaining) == (1, 1)
    records = read_feedback(path).records
    assert [(r["annotator"], r["choice"], r["round"]) for r in records] == [("alice", "b", 2)]
    assert "simulated" not in records[0]
    assert shown[0] == f"round 2: compare 2 item(s) into {path}"


def test_built_in_annotators_by_name():
    assert load_annotator("short-reviews").annotator_id == "simulated-short-reviews"
    assert load_annotator("long-reviews").simulated is True
    person = load_annotator("terminal", "bob")
    assert (type(person), person.annotator_id, person.simulated) == (TerminalAnnotator, "bob", False)
    with pytest.raises(ValueError, match="for the terminal annotator"):
        load_annotator("short-reviews", "bob")
    with pytest.raises(ValueError, match="expected terminal"):
        load_annotator("nobody")


PLUG_IN = """
from text_envs.feedback.annotators import ScriptedAnnotator


class Exclaiming(ScriptedAnnotator):
    annotator_id = "simulated-exclaiming"
    preference = "reviews that end with an exclamation mark"

    def accepts(self, prompt, completion):
        return completion.endswith("!")

    def rank(self, prompt, completion):
        return (completion.endswith("!"),)


def make_exclaiming():
    return Exclaiming()


NOT_AN_ANNOTATOR = 3
"""


def test_a_plug_in_class_or_factory_loads_from_a_file_or_a_module(tmp_path, monkeypatch):
    (tmp_path / "my_annotators.py").write_text(PLUG_IN)
    for spec in (f"{tmp_path / 'my_annotators.py'}:Exclaiming", f"{tmp_path / 'my_annotators.py'}:make_exclaiming"):
        annotator = load_annotator(spec)
        assert annotator.annotator_id == "simulated-exclaiming"
        assert annotator.judge(make_item("compare", PROMPT, [" was good.", " was good!"]), "compare") == "b"
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_annotator("my_annotators:Exclaiming").simulated is True
    with pytest.raises(TypeError, match="not an Annotator"):
        load_annotator("my_annotators:NOT_AN_ANNOTATOR")
    with pytest.raises(ValueError, match="has no 'Missing'"):
        load_annotator("my_annotators:Missing")


@pytest.mark.parametrize(
    "line",
    [
        "from text_envs.judges import vader_sentiment",
        "from text_envs import judges",
        "import text_envs.rewards.lexicon",
        "from text_envs.rewards.trained import default_reward_model",
        "from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer",
        "from text_envs_agents import evaluate_lm",
        "from text_envs.lm import load_causal_lm",
    ],
)
def test_a_plug_in_that_imports_a_judge_is_refused_before_it_runs(tmp_path, line):
    path = tmp_path / "cheat.py"
    path.write_text(f"{PLUG_IN}\n\ndef judged():\n    {line}\n    raise SystemExit('the plug-in ran')\n")
    with pytest.raises(ValueError, match=r"cheat\.py:\d+ imports .*must not consult a judge"):
        load_annotator(f"{path}:Exclaiming")


@pytest.mark.parametrize("line", ["importlib.import_module('text_envs.judges')", "__import__('text_envs.judges')"])
def test_a_plug_in_that_imports_by_a_computed_name_is_refused(tmp_path, line):
    path = tmp_path / "cheat.py"
    path.write_text(f"import importlib\n{PLUG_IN}\n\ndef judged():\n    {line}\n")
    with pytest.raises(ValueError, match=r"cheat\.py:\d+ calls .*plain imports"):
        load_annotator(f"{path}:Exclaiming")


def test_a_plug_in_file_defining_a_dataclass_loads(tmp_path):
    source = PLUG_IN.replace(
        "class Exclaiming(", "from dataclasses import dataclass\n\n\n@dataclass\nclass Exclaiming("
    )
    (tmp_path / "dataclass_annotator.py").write_text(source)
    assert load_annotator(f"{tmp_path / 'dataclass_annotator.py'}:Exclaiming").annotator_id == "simulated-exclaiming"


def test_the_built_in_annotators_never_load_a_judge():
    check_no_judge_imports(annotators.__file__, allow_dynamic_imports=True)  # its loader imports plug-ins by name
    code = (
        "import sys\n"
        "from text_envs.feedback.annotators import load_annotator\n"
        "from text_envs.feedback.labelling import make_item\n"
        "for name in ('short-reviews', 'long-reviews'):\n"
        "    user = load_annotator(name)\n"
        "    user.judge(make_item('compare', 'p', [' a b.', ' a b c.']), 'compare')\n"
        "loaded = [m for m in sys.modules if m.startswith(('text_envs.judges', 'text_envs.rewards', 'vaderSentiment',"
        " 'torch', 'transformers'))]\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
