"""HumanReward driven through its input function: both scales, re-asking on bad answers, feedback records."""

import numpy as np
import pytest

from text_envs.feedback.records import make_item_id, read_feedback
from text_envs.rewards.human import HumanReward

PROMPTS = ["the pool of this inn", "i have to say the ending"]
COMPLETIONS = [" was lovely.", " was awful."]


class Person:
    """Types the given answers in turn; remembers what it was shown and asked."""

    def __init__(self, *answers: str):
        self.answers = list(answers)
        self.shown: list[str] = []
        self.questions: list[str] = []

    def input(self, question: str) -> str:
        self.questions.append(question)
        if not self.answers:
            raise EOFError
        return self.answers.pop(0)

    def print(self, text: str) -> None:
        self.shown.append(text)


def test_binary_scale_re_asks_until_0_or_1_and_records_labels(tmp_path):
    person = Person("yes", "", "1", " 0 ")
    path = tmp_path / "feedback.jsonl"
    reward_model = HumanReward(input_fn=person.input, output_fn=person.print, feedback_path=path, annotator="alice")
    scores = reward_model(PROMPTS, COMPLETIONS)
    assert scores.dtype == np.float32 and scores.tolist() == [1.0, 0.0]
    assert person.answers == [] and len(person.questions) == 4
    assert any("type 0 or 1, not 'yes'" in line for line in person.shown)
    assert person.shown[0].startswith("[1/2]") and COMPLETIONS[0] in person.shown[0]
    log = read_feedback(path)
    assert log.problems == []
    assert [(r["annotator"], r["prompt"], r["completion"], r["label"]) for r in log.labels()] == [
        ("alice", PROMPTS[0], COMPLETIONS[0], 1),
        ("alice", PROMPTS[1], COMPLETIONS[1], 0),
    ]
    assert log.records[0]["item_id"] == make_item_id("label", PROMPTS[0], COMPLETIONS[0])


def test_number_scale_refuses_nan_inf_text_and_out_of_bounds(tmp_path):
    person = Person("nan", "inf", "great", "8", "-0.5", "6.5", "1e0")
    path = tmp_path / "feedback.jsonl"
    reward_model = HumanReward(
        scale="number",
        low=1,
        high=7,
        input_fn=person.input,
        output_fn=person.print,
        feedback_path=path,
        annotator="bob",
    )
    scores = reward_model(PROMPTS, COMPLETIONS)
    assert scores.tolist() == [6.5, 1.0] and person.answers == []
    complaints = [line for line in person.shown if line.endswith("try again")]
    assert len(complaints) == 5 and "not a finite number" in complaints[0] and "outside [1, 7]" in complaints[3]
    assert "[1, 7]" in person.questions[0]
    log = read_feedback(path)
    assert [(r["type"], r["score"], r["annotator"]) for r in log.records] == [
        ("score", 6.5, "bob"),
        ("score", 1.0, "bob"),
    ]


def test_number_scale_without_bounds_and_without_a_feedback_file():
    person = Person("-1000", "3.25")
    reward_model = HumanReward(scale="number", input_fn=person.input, output_fn=person.print)
    assert reward_model(PROMPTS, COMPLETIONS).tolist() == [-1000.0, 3.25]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(scale="stars"), "scale must be one of"),
        (dict(low=0), "bound the number scale"),
        (dict(scale="number", low=5, high=1), "low must be below high"),
        (dict(scale="number", high=float("nan")), "finite"),
        (dict(feedback_path="f.jsonl"), "together"),
    ],
)
def test_bad_arguments_say_what_to_do(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HumanReward(**kwargs)


def test_mismatched_lengths_and_end_of_input_raise():
    person = Person()
    reward_model = HumanReward(input_fn=person.input, output_fn=person.print)
    with pytest.raises(ValueError, match="2 prompts but 1 completions"):
        reward_model(PROMPTS, COMPLETIONS[:1])
    with pytest.raises(EOFError):
        reward_model(PROMPTS, COMPLETIONS)
