"""The RLHF loop: resuming after a kill mid-round, round separation, earlier rounds never rewritten, per-annotator
training, a person who quits, refused inputs, and the two command lines on tiny settings."""

import dataclasses
import json
from pathlib import Path

import pytest

from text_envs.defaults import DEFAULT_PROMPTS_TEST, DEFAULT_PROMPTS_TRAIN
from text_envs.feedback.annotators import LongReviewAnnotator, ShortReviewAnnotator, TerminalAnnotator
from text_envs.feedback.labelling import DONE_QUESTION, make_item
from text_envs.feedback.records import append_record, make_record, read_feedback, read_judgements
from text_envs.generation.prompts import load_prompts
from text_envs.rewards.training import RewardTrainingConfig
from text_envs_agents.cli import personalise, rlhf_loop
from text_envs_agents.rlhf_loop import (
    LOOP_FILE,
    STAGES,
    RLHFLoop,
    RLHFLoopConfig,
    feedback_files,
    round_dir,
    run_rlhf_loop,
)
from text_envs_agents.text_ppo import TextPPOConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY_FLAGS = [
    "--items-per-round", "6", "--test-items-per-round", "2", "--iterations", "1", "--batch-size", "4",
    "--max-new-tokens", "12", "--reward-training.epochs", "2", "--ppo.minibatch-size", "4", "--ppo.ppo-epochs", "1",
    "--judge-lm", "", "--no-progress-bar", "--device", "cpu",
]  # fmt: skip


@pytest.fixture(scope="module")
def prompt_files(tmp_path_factory):
    """A few of the default training and held-out prompts, so that the evaluation samples 4 prompts, not 64."""
    folder = tmp_path_factory.mktemp("prompts")
    for name, source, count in (("train.jsonl", DEFAULT_PROMPTS_TRAIN, 12), ("test.jsonl", DEFAULT_PROMPTS_TEST, 4)):
        (folder / name).write_text("".join(json.dumps({"prompt": p}) + "\n" for p in load_prompts(source)[:count]))
    return folder / "train.jsonl", folder / "test.jsonl"


@pytest.fixture
def tiny(prompt_files):
    """A loop config that trains in seconds: 6 items a round, one TextPPO iteration of 4 episodes."""

    def make(**overrides) -> RLHFLoopConfig:
        settings = dict(
            rounds=1,
            items_per_round=6,
            test_items_per_round=2,
            prompts=str(prompt_files[0]),
            test_prompts=str(prompt_files[1]),
            max_new_tokens=12,
            iterations=1,
            batch_size=4,
            judge_lm="",
            reward_training=RewardTrainingConfig(epochs=2),
            ppo=TextPPOConfig(minibatch_size=4, ppo_epochs=1),
        )
        return RLHFLoopConfig(**{**settings, **overrides})

    return make


def run(config, annotator, output, **kwargs):
    return run_rlhf_loop(config, annotator, output, device="cpu", log=lambda line: None, **kwargs)


def finished(output: Path) -> dict[str, list[str]]:
    return json.loads((output / LOOP_FILE).read_text())["finished"]


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


class KilledShortReviews(ShortReviewAnnotator):
    """The short-reviews user, killed (an exception) when about to judge its fourth item."""

    def __init__(self) -> None:
        super().__init__()
        self.judged = 0

    def judge(self, item, mode):
        if self.judged == 3:
            raise RuntimeError("killed mid-round")
        self.judged += 1
        return super().judge(item, mode)


def test_a_loop_killed_mid_labelling_resumes_without_losing_or_repeating_a_record(tiny, tmp_path):
    output = tmp_path / "loop"
    config = tiny(mode="label")
    with pytest.raises(RuntimeError, match="killed mid-round"):
        run(config, KilledShortReviews(), output)
    assert finished(output) == {"1": ["sample"]}
    feedback = round_dir(output, 1) / "feedback.jsonl"
    written = feedback.read_bytes()
    assert len(read_feedback(feedback).records) == 3

    result = run(config, ShortReviewAnnotator(), output)
    assert finished(output) == {"1": list(STAGES)} and not result.stopped
    assert feedback.read_bytes().startswith(written)  # the three records of the killed run, untouched
    records = read_feedback(feedback).records
    items = [json.loads(line) for line in (round_dir(output, 1) / "items.jsonl").read_text().splitlines()]
    assert len(records) == len({r["item_id"] for r in records}) == len({(i["prompt"], i["completion"]) for i in items})
    metrics = result.rounds[0]
    assert metrics["records"]["feedback.jsonl"]["label"] == len(records)
    assert metrics["reward_model"]["train_labels"] + metrics["reward_model"]["validation_labels"] == len(records)
    assert set(metrics["policy"]) >= {"score_mean", "kl", "vader_mean", "words_mean", "distinct_2"}


def test_each_round_keeps_its_own_data_and_a_new_round_never_changes_earlier_ones(tiny, tmp_path):
    output = tmp_path / "loop"
    run(tiny(rounds=1), ShortReviewAnnotator(), output)
    round_1 = folder_bytes(round_dir(output, 1))
    assert {"items.jsonl", "feedback.jsonl", "reward_model/reward_model.json", "policy/policy.safetensors"} <= set(
        round_1
    )

    result = run(tiny(rounds=2), ShortReviewAnnotator(), output)  # a rerun with more rounds appends one
    assert folder_bytes(round_dir(output, 1)) == round_1  # byte for byte: records, models and metrics
    assert finished(output) == {"1": list(STAGES), "2": list(STAGES)}
    assert [m["round"] for m in result.rounds] == [1, 2]
    for k in (1, 2):
        for name in ("feedback.jsonl", "feedback_test.jsonl"):
            records = read_feedback(round_dir(output, k) / name).records
            assert records and {(r["round"], r["annotator"], r["simulated"]) for r in records} == {
                (k, "simulated-short-reviews", True)
            }
    # Round 2's reward model learnt from both rounds' training records and was tested on both held-out sets.
    comparisons = [len(read_feedback(round_dir(output, k) / "feedback.jsonl").comparisons()) for k in (1, 2)]
    held_out = [len(read_feedback(round_dir(output, k) / "feedback_test.jsonl").comparisons()) for k in (1, 2)]
    trained = result.rounds[1]["reward_model"]
    assert trained["train_comparisons"] + trained["validation_comparisons"] == sum(comparisons)
    assert trained["test_comparisons"] == sum(held_out)
    # Round 2 continued round 1's policy: its checkpoint counts both rounds' iterations.
    state = json.loads((round_dir(output, 2) / "policy" / "trainer_state.json").read_text())
    assert state["iteration"] == 2

    assert run(tiny(rounds=2), ShortReviewAnnotator(), output).rounds == result.rounds  # nothing left to do
    assert folder_bytes(round_dir(output, 1)) == round_1


def test_per_annotator_training_picks_only_that_annotators_records(tiny, tmp_path):
    base = tmp_path / "base.jsonl"
    item = make_item("compare", "the plot of this book", [" was great.", " was a long and winding read."])
    for annotator, choice in (("alice", "b"), ("simulated-short-reviews", "a"), ("alice", "b")):
        append_record(
            base,
            make_record(
                "comparison",
                f"{item.item_id}-{annotator}-{choice}",
                annotator,
                prompt=item.prompt,
                completion_a=item.completions[0],
                completion_b=item.completions[1],
                choice=choice,
            ),
        )
    output = tmp_path / "loop"
    config = tiny(base_feedback=(str(base),), only_annotator_records=True, iterations=0)
    result = run(config, ShortReviewAnnotator(), output)

    own_round = read_feedback(round_dir(output, 1) / "feedback.jsonl").comparisons()
    labels, comparisons = read_judgements(feedback_files(config, output, 1, test=False), "simulated-short-reviews")
    assert labels == [] and {r["annotator"] for r in comparisons} == {"simulated-short-reviews"}
    assert len(comparisons) == 1 + len(own_round)  # its one base record and its own round's, never alice's
    _, everyone = read_judgements(feedback_files(config, output, 1, test=False), None)
    assert len(everyone) == 3 + len(own_round)
    trained = result.rounds[0]["reward_model"]
    assert trained["train_comparisons"] + trained["validation_comparisons"] == len(comparisons)


class Person:
    """Answers ``a`` to every item, ``q`` after ``quit_after`` answers (None: never), Enter when all are done."""

    def __init__(self, quit_after: int | None = None):
        self.quit_after = quit_after
        self.answered = 0

    def input(self, question: str) -> str:
        if question == DONE_QUESTION:
            return ""
        if self.answered == self.quit_after:
            return "q"
        self.answered += 1
        return "a"


def test_a_person_who_quits_stops_the_loop_and_the_next_run_asks_only_what_is_left(tiny, tmp_path):
    output = tmp_path / "loop"
    config = tiny(items_per_round=3, test_items_per_round=1)
    quitting = Person(quit_after=2)
    result = run(config, TerminalAnnotator("alice", quitting.input, lambda text: None), output)
    assert "round 1 has items left to label" in result.stopped and result.rounds == []
    assert finished(output) == {"1": ["sample"]}
    items = len((round_dir(output, 1) / "items.jsonl").read_text().splitlines())

    resuming = Person()
    result = run(config, TerminalAnnotator("alice", resuming.input, lambda text: None), output)
    assert not result.stopped and finished(output) == {"1": list(STAGES)}
    assert resuming.answered == items - 2 + 1  # the training items left, then the held-out one
    records = read_feedback(round_dir(output, 1) / "feedback.jsonl").records
    assert len(records) == items and {(r["annotator"], r["choice"]) for r in records} == {("alice", "a")}
    assert not any("simulated" in r for r in records)  # a person's records


def test_bad_inputs_are_refused_before_any_work(tiny, tmp_path, prompt_files):
    with pytest.raises(ValueError, match="rounds must be at least 1"):
        tiny(rounds=0)
    with pytest.raises(ValueError, match="judge_lm .* is the policy's reference"):
        tiny(model="smollm2-135m-instruct", judge_lm="smollm2-135m-instruct")
    with pytest.raises(FileNotFoundError, match=r"prompts: prompt file .*missing\.jsonl does not exist"):
        RLHFLoop(tiny(prompts=str(tmp_path / "missing.jsonl")), ShortReviewAnnotator(), tmp_path / "a")
    with pytest.raises(FileNotFoundError, match=r"base_feedback: feedback file .*nope\.jsonl does not exist"):
        RLHFLoop(tiny(base_feedback=(str(tmp_path / "nope.jsonl"),)), ShortReviewAnnotator(), tmp_path / "b")
    crowded = tmp_path / "crowded"
    crowded.mkdir()
    (crowded / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds files but no loop.json"):
        RLHFLoop(tiny(), ShortReviewAnnotator(), crowded)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()

    output = tmp_path / "loop"
    RLHFLoop(tiny(), ShortReviewAnnotator(), output)  # writes loop.json, runs nothing
    with pytest.raises(ValueError, match=r"another config \(differing: items_per_round, ppo\.kl_coef\)"):
        other = tiny(items_per_round=7, ppo=dataclasses.replace(tiny().ppo, kl_coef=0.2))
        RLHFLoop(other, ShortReviewAnnotator(), output)
    with pytest.raises(ValueError, match="annotated by 'simulated-short-reviews', not 'simulated-long-reviews'"):
        RLHFLoop(tiny(), LongReviewAnnotator(), output)
    RLHFLoop(tiny(rounds=4, judge_lm="smollm2-135m-instruct"), ShortReviewAnnotator(), output)  # may change


def test_the_command_line_runs_and_resumes_the_loop(tmp_path, prompt_files, capsys):
    output = tmp_path / "loop"
    prompts = ["--prompts", str(prompt_files[0]), "--test-prompts", str(prompt_files[1])]
    argv = ["--annotator", "long-reviews", "--output-dir", str(output), "--mode", "label", *prompts, *TINY_FLAGS]
    rlhf_loop.main(argv)
    out = capsys.readouterr().out
    assert "round 1: evaluation" in out and "| 1 |" in out
    state = json.loads((output / LOOP_FILE).read_text())
    assert state["annotator"]["id"] == "simulated-long-reviews" and state["annotator"]["simulated"] is True
    assert (state["config"]["ppo"]["kl_coef"], state["config"]["mode"]) == (0.1, "label")  # --beta's default

    rlhf_loop.main(argv)  # resuming a finished loop runs no stage
    assert "round 1:" not in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        rlhf_loop.main([*argv, "--beta", "0.5"])
    assert exit_info.value.code == 2 and "ppo.kl_coef" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        rlhf_loop.main(["--annotator", "short-reviews", "--annotator-id", "bob", "--output-dir", str(tmp_path / "x")])
    assert exit_info.value.code == 2 and "for the terminal annotator" in capsys.readouterr().err


def test_personalise_trains_one_reward_model_and_policy_per_simulated_user(tmp_path, prompt_files, capsys):
    output = tmp_path / "personalise"
    prompts = ["--prompts", str(prompt_files[0]), "--test-prompts", str(prompt_files[1])]
    personalise.main(["--output-dir", str(output), "--rounds", "1", *prompts, *TINY_FLAGS])
    out = capsys.readouterr().out
    users = ("simulated-short-reviews", "simulated-long-reviews")
    for user in users:
        assert json.loads((output / user / LOOP_FILE).read_text())["config"]["only_annotator_records"] is True
        assert {r["annotator"] for r in read_feedback(output / user / "round_1" / "feedback.jsonl").records} == {user}
    results = json.loads((output / "results.json").read_text())
    assert list(results["rows"]) == ["reference", *(f"{user} policy" for user in users)]
    for row in results["rows"].values():
        assert {f"{user}_reward_model_mean" for user in users} <= set(row)
        assert {f"{user}_accepts_mean" for user in users} <= set(row)
        assert {"vader_mean", "distinct_2", "words_mean", "broken_share", "kl"} <= set(row)
    assert results["rows"]["reference"]["kl"] == 0.0
    assert (output / "table.md").read_text().startswith("| model |") and "| reference |" in out
    assert out.count("reward model: ") == 2  # one verdict line per user


def test_a_round_whose_every_item_was_skipped_stops_at_labelling_with_the_reason(tiny, tmp_path):
    answers = iter(["s"] * 20)  # a person who skips every item
    person = TerminalAnnotator("carol", input_fn=lambda question: next(answers), output_fn=lambda line: None)
    with pytest.raises(ValueError, match="every item was skipped"):
        run(tiny(), person, tmp_path / "loop")
    assert finished(tmp_path / "loop") == {"1": ["sample"]}  # labelling is not marked done
    records = read_feedback(round_dir(tmp_path / "loop", 1) / "feedback.jsonl").records
    assert records and {r["type"] for r in records} == {"skip"} and all(r["round"] == 1 for r in records)


def test_a_finished_reward_model_stage_leaves_a_whole_model_and_no_staging_folder(tiny, tmp_path):
    run(tiny(), ShortReviewAnnotator(), tmp_path / "loop")
    folder = round_dir(tmp_path / "loop", 1)
    assert sorted(p.name for p in (folder / "reward_model").iterdir()) == ["head.safetensors", "reward_model.json"]
    assert not (folder / "reward_model.partial").exists()


def test_a_resume_with_another_annotator_preference_is_refused(tiny, tmp_path):
    run(tiny(), ShortReviewAnnotator(12), tmp_path / "loop")
    with pytest.raises(ValueError, match="at most 6 words.*another preference"):
        RLHFLoop(tiny(), ShortReviewAnnotator(6), tmp_path / "loop", device="cpu")


def test_a_judge_lm_that_does_not_load_is_refused_before_any_work(tiny, tmp_path):
    with pytest.raises(ValueError, match="judge_lm: no judge LM"):
        RLHFLoop(tiny(judge_lm=str(tmp_path / "missing")), ShortReviewAnnotator(), tmp_path / "loop", device="cpu")
    assert not (tmp_path / "loop" / "round_1").exists()
