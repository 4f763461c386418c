"""The loop of :mod:`text_envs_agents.rlhf_loop`: its rounds and stages, ``loop.json``, and each round's models.

The package docstring describes the stages, the files of each ``round_k/`` folder and how a rerun resumes.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from text_envs.durable import fsync_path, write_atomic
from text_envs.feedback.annotators import Annotator
from text_envs.feedback.labelling import COMPLETION_KEYS, items_from_samples, read_completions
from text_envs.feedback.records import read_feedback, read_judgements
from text_envs.generation.prompts import load_prompts
from text_envs.generation.vector_env import TextGenerationVectorEnv
from text_envs.judges import PerplexityJudge, load_perplexity_judge
from text_envs.lm import load_causal_lm, resolve_device, unwrap_peft
from text_envs.rewards.trained import CONFIG_FILE, TrainedRewardModel, load_reward_model, saved_backbone
from text_envs.rewards.training import train_reward_model
from text_envs_agents.llm.evaluation import TextPolicyEvaluation, evaluate_text_policy
from text_envs_agents.llm.rollout import RolloutBatch, sequence_logprobs
from text_envs_agents.llm.sampling import sample_completions
from text_envs_agents.rlhf_loop.config import RLHFLoopConfig
from text_envs_agents.text_ppo import TextPPO

LOOP_FILE = "loop.json"
FORMAT = "text_envs.RLHFLoop/1"
STAGES = ("sample", "label", "reward_model", "policy", "evaluation")
"""A round's stages, in order; ``loop.json`` lists the ones each round finished."""
ITEMS, TEST_ITEMS = "items.jsonl", "items_test.jsonl"
FEEDBACK, TEST_FEEDBACK = "feedback.jsonl", "feedback_test.jsonl"
REWARD_MODEL, POLICY = "reward_model", "policy"
METRICS, SAMPLES = "metrics.json", "samples.jsonl"
FREE_ON_RESUME = ("rounds", "judge_lm", "evaluation_samples_per_prompt")
"""Config fields a rerun may change: how many rounds, and how they are judged (never their data or models)."""
EVALUATION_ENVS = 64
"""Held-out prompts sampled at once in the evaluation."""


@dataclass
class RLHFLoopResult:
    """The ``metrics.json`` of every finished round, in order, and why the loop stopped early (if it did)."""

    rounds: list[dict[str, Any]]
    stopped: str = ""
    """empty when all the config's rounds are done; else what is left (a person quit labelling)"""


def round_dir(output_dir: str | Path, round_number: int) -> Path:
    """The folder of one round: ``round_k`` under the loop's output dir."""
    return Path(output_dir) / f"round_{round_number}"


def feedback_files(config: RLHFLoopConfig, output_dir: str | Path, round_number: int, test: bool) -> list[Path]:
    """The feedback files round ``round_number``'s reward model reads: the base files, then rounds 1..k's own."""
    base = config.base_test_feedback if test else config.base_feedback
    name = TEST_FEEDBACK if test else FEEDBACK
    return [Path(path) for path in base] + [round_dir(output_dir, k) / name for k in range(1, round_number + 1)]


def run_rlhf_loop(
    config: RLHFLoopConfig,
    annotator: Annotator,
    output_dir: str | Path,
    *,
    device: str | torch.device = "auto",
    progress_bar: bool = False,
    log: Callable[[str], None] = print,
) -> RLHFLoopResult:
    """Run (or resume) the loop of ``config`` with ``annotator`` in ``output_dir``: ``RLHFLoop(...).run()``."""
    return RLHFLoop(config, annotator, output_dir, device=device, progress_bar=progress_bar, log=log).run()


class RLHFLoop:
    """The loop of ``config`` with ``annotator`` in ``output_dir`` (see the package docstring), and its models.

    Construction checks the inputs and opens ``loop.json`` before any work, refusing a missing prompt or
    base feedback file (named with its field) and an output dir holding another loop or other files.
    :meth:`run` runs the unfinished stages; :meth:`reward_model` and :meth:`policy` give a finished round's
    models (kept from this run, or loaded from its folder). ``device`` (``"auto"``: CUDA when present)
    holds the LMs, the reward models and the judge; ``log`` receives one line per stage.
    """

    def __init__(
        self,
        config: RLHFLoopConfig,
        annotator: Annotator,
        output_dir: str | Path,
        *,
        device: str | torch.device = "auto",
        progress_bar: bool = False,
        log: Callable[[str], None] = print,
    ) -> None:
        self.config = config
        self.annotator = annotator
        self.output_dir = Path(output_dir)
        self.device = resolve_device(device)
        self.progress_bar = progress_bar
        self.log = log
        self.train_prompts = _prompts("prompts", config.prompts)
        self.test_prompts = _prompts("test_prompts", config.test_prompts)
        for name in ("base_feedback", "base_test_feedback"):
            missing = [path for path in getattr(config, name) if not Path(path).is_file()]
            if missing:
                raise FileNotFoundError(f"{name}: feedback file {missing[0]} does not exist")
        if not annotator.annotator_id:
            raise ValueError("the annotator has an empty annotator_id: every record must say who judged it")
        self.perplexity_judge: PerplexityJudge | None = None
        if config.judge_lm:  # loaded before any work, so a bad name fails at once
            self.perplexity_judge, why_not = load_perplexity_judge(config.judge_lm, str(self.device))
            if self.perplexity_judge is None:
                raise ValueError(f"judge_lm: {why_not}")
        self.state = self._open_state()
        self._reward_models: dict[int, TrainedRewardModel] = {}
        self._trainer: tuple[int, TextPPO] | None = None

    def run(self) -> RLHFLoopResult:
        """Rounds 1..K, each stage that is not finished yet; stops early if a person leaves items unlabelled."""
        for round_number in range(1, self.config.rounds + 1):
            if not self.run_round(round_number):
                left = f"round {round_number} has items left to label"
                return RLHFLoopResult(self.finished_metrics(), f"{left}: run the loop again to resume")
        return RLHFLoopResult(self.finished_metrics())

    # ------------------------------------------------------------------------------------------ state
    def _identity(self) -> dict[str, Any]:
        saved = json.loads(json.dumps(asdict(self.config)))  # as loop.json gives it back: tuples become lists
        config = {key: value for key, value in saved.items() if key not in FREE_ON_RESUME}
        return {
            "config": config,
            "annotator": {
                "id": self.annotator.annotator_id,
                "simulated": bool(self.annotator.simulated),
                "preference": getattr(self.annotator, "preference", ""),
            },
        }

    def _open_state(self) -> dict[str, Any]:
        """``loop.json``'s content, checked against this run (or a new one written to a missing or empty dir)."""
        path = self.output_dir / LOOP_FILE
        identity = self._identity()
        if not path.is_file():
            if self.output_dir.exists() and any(self.output_dir.iterdir()):
                raise ValueError(
                    f"output dir {self.output_dir} holds files but no {LOOP_FILE}: give the loop a folder of its own"
                )
            self.output_dir.mkdir(parents=True, exist_ok=True)
            state = {"format": FORMAT, **identity, "finished": {}}
            write_atomic(path, json.dumps(state, indent=2) + "\n")
            return state
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path}: not a loop state ({error})") from None
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise ValueError(f"{path}: not a loop state of format {FORMAT!r}")
        if state["annotator"] != identity["annotator"]:
            saved, given = state["annotator"], identity["annotator"]
            raise ValueError(
                f"{path}: the loop in {self.output_dir} is annotated by {saved['id']!r}, not {given['id']!r} "
                f"(saved: {saved}; given: {given}): give another annotator (or another preference) its own --output-dir"
            )
        differing = _differing(state["config"], identity["config"])
        if differing:
            raise ValueError(
                f"{path}: the loop in {self.output_dir} has another config (differing: {', '.join(differing)}): "
                "rerun it with its own settings, or give this one another --output-dir"
            )
        return state

    def finished(self, round_number: int) -> list[str]:
        return self.state["finished"].get(str(round_number), [])

    def _finish(self, round_number: int, stage: str) -> None:
        self.state["finished"][str(round_number)] = [*self.finished(round_number), stage]
        write_atomic(self.output_dir / LOOP_FILE, json.dumps(self.state, indent=2) + "\n")

    def finished_metrics(self) -> list[dict[str, Any]]:
        rounds = sorted(int(k) for k, stages in self.state["finished"].items() if "evaluation" in stages)
        return [json.loads((round_dir(self.output_dir, k) / METRICS).read_text()) for k in rounds]

    # ------------------------------------------------------------------------------------------ rounds
    def run_round(self, round_number: int) -> bool:
        """Run the round's unfinished stages; False when labelling is left for a later run."""
        stages: dict[str, Callable[[int], bool | None]] = {
            "sample": self._sample,
            "label": self._label,
            "reward_model": self._train_reward_model,
            "policy": self._train_policy,
            "evaluation": self._evaluate,
        }
        for stage, run in stages.items():
            if stage in self.finished(round_number):
                continue
            self.log(f"round {round_number}: {stage}")
            if run(round_number) is False:
                return False
            self._finish(round_number, stage)
        return True

    def _sample(self, round_number: int) -> None:
        folder = round_dir(self.output_dir, round_number)
        folder.mkdir(parents=True, exist_ok=True)
        model = self.reference if round_number == 1 else self.policy(round_number - 1).policy.model
        completions = 1 if self.config.mode == "label" else 2
        for test, prompts, count, name in (
            (False, self.train_prompts, self.config.items_per_round, ITEMS),
            (True, self.test_prompts, self.config.test_items_per_round, TEST_ITEMS),
        ):
            seeds = np.random.SeedSequence([self.config.seed, round_number, int(test)])
            rng = np.random.default_rng(seeds)
            chosen = [prompts[i] for i in rng.choice(len(prompts), size=count, replace=count > len(prompts))]
            samples = sample_completions(
                chosen,
                unwrap_peft(model),
                num_samples=completions,
                max_new_tokens=self.config.max_new_tokens,
                seed=int(seeds.generate_state(1)[0]),
                tokenizer=self.config.model or None,
            )
            keys = ("prompt", *COMPLETION_KEYS[self.config.mode])
            lines = [
                json.dumps(dict(zip(keys, (item.prompt, *item.completions), strict=True)), ensure_ascii=False) + "\n"
                for item in items_from_samples(samples, self.config.mode)
            ]
            write_atomic(folder / name, "".join(lines))

    def _label(self, round_number: int) -> bool:
        folder = round_dir(self.output_dir, round_number)
        for items_name, feedback_name in ((ITEMS, FEEDBACK), (TEST_ITEMS, TEST_FEEDBACK)):
            items, problems = read_completions(folder / items_name, self.config.mode)
            if problems:
                raise ValueError(f"{folder / items_name} was written by the loop but does not read back: {problems[0]}")
            summary = self.annotator.annotate(items, self.config.mode, folder / feedback_name, round_number)
            if summary.remaining:
                return False
        annotator = self.annotator.annotator_id if self.config.only_annotator_records else None
        train_files = feedback_files(self.config, self.output_dir, round_number, test=False)
        if not any(read_judgements(train_files, annotator, self.log)):
            raise ValueError(
                f"round {round_number}: every item was skipped and no earlier round or base feedback file holds a "
                "judgement, so no reward model can be trained: start the loop again in a new --output-dir with "
                "more items (--items-per-round) or --base-feedback"
            )
        return True

    def _train_reward_model(self, round_number: int) -> None:
        annotator = self.annotator.annotator_id if self.config.only_annotator_records else None
        train_files = feedback_files(self.config, self.output_dir, round_number, test=False)
        labels, comparisons = read_judgements(train_files, annotator, self.log)
        test_labels, test_comparisons = read_judgements(
            feedback_files(self.config, self.output_dir, round_number, test=True), annotator, self.log
        )
        if not labels and not comparisons:
            raise ValueError(
                f"round {round_number}: no label or comparison records to train on in {[str(p) for p in train_files]}"
                + (f" by {annotator!r}" if annotator else "")
            )
        self.log(
            f"round {round_number}: reward model on {len(labels)} labels and {len(comparisons)} comparisons "
            f"(test: {len(test_labels)} labels, {len(test_comparisons)} comparisons)"
        )
        model = train_reward_model(
            labels, comparisons, self.config.reward_training, test_labels, test_comparisons, device=self.device
        )
        _save_whole(model, round_dir(self.output_dir, round_number) / REWARD_MODEL)
        self._reward_models[round_number] = model

    def _train_policy(self, round_number: int) -> None:
        env = self._training_env(round_number)
        if round_number == 1:
            trainer = TextPPO(env, self.config.model or None, self.config.ppo, device=self.device)
        else:
            trainer = TextPPO.load(round_dir(self.output_dir, round_number - 1) / POLICY, env=env, device=self.device)
        trainer.learn(iterations=self.config.iterations, progress_bar=self.progress_bar)
        trainer.save(round_dir(self.output_dir, round_number) / POLICY)
        trainer.close()
        self._trainer = (round_number, trainer)

    def _evaluate(self, round_number: int) -> None:
        folder = round_dir(self.output_dir, round_number)
        reward_model = self.reward_model(round_number)
        env = TextGenerationVectorEnv(
            min(EVALUATION_ENVS, len(self.test_prompts)),
            tokenizer=self.config.model or None,
            prompts=self.test_prompts,
            reward_model=reward_model,
            max_new_tokens=self.config.max_new_tokens,
        )
        evaluations = {
            name: evaluate_text_policy(
                model,
                self.reference_logprobs,
                env,
                seed=self.config.seed,
                samples_per_prompt=self.config.evaluation_samples_per_prompt,
                perplexity_judge=self.perplexity_judge,
            )
            for name, model in (("policy", self.policy(round_number).policy.model), ("reference", self.reference))
        }
        metrics = {
            "round": round_number,
            "annotator": self._identity()["annotator"],
            "judge_lm": self.perplexity_judge.name if self.perplexity_judge else None,
            "records": {name: _record_counts(folder / name) for name in (FEEDBACK, TEST_FEEDBACK)},
            "reward_model": {**reward_model.config.metrics, **_training_counts(reward_model)},
            **{name: evaluation.metrics for name, evaluation in evaluations.items()},
        }
        write_atomic(folder / SAMPLES, _samples_text(evaluations))
        write_atomic(folder / METRICS, json.dumps(metrics, indent=2) + "\n")
        self.log(
            f"round {round_number}: held-out reward-model score {evaluations['reference'].metrics['score_mean']:.3f} "
            f"(reference) -> {evaluations['policy'].metrics['score_mean']:.3f} (policy), "
            f"KL {evaluations['policy'].metrics['kl']:.2f} nats"
        )

    # ------------------------------------------------------------------------------------------ models
    @cached_property
    def reference(self) -> torch.nn.Module:
        """The initial LM, frozen: round 1's sampler, the KL reference of the evaluation and its baseline row."""
        return load_causal_lm(self.config.model or None).to(self.device).requires_grad_(False)

    def reference_logprobs(self, batch: RolloutBatch) -> torch.Tensor:
        return sequence_logprobs(self.reference, batch)

    def reward_model(self, round_number: int) -> TrainedRewardModel:
        """Round ``round_number``'s reward model: the one trained in this run, or the one it saved."""
        if round_number not in self._reward_models:
            folder = round_dir(self.output_dir, round_number) / REWARD_MODEL
            named = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8")).get("backbone")
            expected = saved_backbone(self.config.reward_training.backbone)
            if named != expected:
                raise ValueError(f"{folder / CONFIG_FILE} names the backbone {named!r}, the loop's config {expected!r}")
            # The loop trained this folder on the backbone its own config names, which the user chose: trusted.
            self._reward_models[round_number] = load_reward_model(
                folder, device=self.device, allow_external_backbone=True
            )
        return self._reward_models[round_number]

    def policy(self, round_number: int) -> TextPPO:
        """Round ``round_number``'s trained policy: the trainer of this run, or its checkpoint reloaded."""
        if self._trainer is None or self._trainer[0] != round_number:
            checkpoint = round_dir(self.output_dir, round_number) / POLICY
            trainer = TextPPO.load(checkpoint, env=self._training_env(round_number), device=self.device)
            self._trainer = (round_number, trainer)
        return self._trainer[1]

    def _training_env(self, round_number: int) -> TextGenerationVectorEnv:
        return TextGenerationVectorEnv(
            self.config.batch_size,
            tokenizer=self.config.model or None,
            prompts=self.train_prompts,
            reward_model=self.reward_model(round_number),
            max_new_tokens=self.config.max_new_tokens,
        )


def _prompts(name: str, source: str) -> list[str]:
    """The prompts of the config field ``name``; a missing or malformed source is refused naming the field."""
    try:
        return load_prompts(source)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{name}: {error}") from error
    except (OSError, ValueError) as error:
        raise ValueError(f"{name}: {error}") from error


def _differing(saved: dict[str, Any], given: dict[str, Any], prefix: str = "") -> list[str]:
    """The dotted names of the fields whose values differ between two JSON objects."""
    names = []
    for key in sorted(set(saved) | set(given)):
        a, b = saved.get(key), given.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            names += _differing(a, b, f"{prefix}{key}.")
        elif a != b:
            names.append(f"{prefix}{key}")
    return names


def _record_counts(path: Path) -> dict[str, int]:
    """How many records of each type a feedback file holds after undos."""
    return dict(Counter(record["type"] for record in read_feedback(path).records))


def _training_counts(model: TrainedRewardModel) -> dict[str, int]:
    """The reward model's example counts per split and kind (``train_labels``, ``test_comparisons``, ...)."""
    return {key: value for key, value in model.config.training.items() if key.endswith(("_labels", "_comparisons"))}


def _samples_text(evaluations: dict[str, TextPolicyEvaluation]) -> str:
    """One JSON line per held-out completion: the prompt, then each evaluated model's completion and score."""
    first = next(iter(evaluations.values()))
    lines = []
    for i, prompt in enumerate(first.prompts):
        line: dict[str, Any] = {"prompt": prompt}
        for name, evaluation in evaluations.items():
            line[name] = evaluation.completions[i]
            line[f"{name}_score"] = float(evaluation.scores[i])
        lines.append(json.dumps(line, ensure_ascii=False) + "\n")
    return "".join(lines)


def _save_whole(model: TrainedRewardModel, directory: Path) -> None:
    """Save ``model`` so that ``directory`` holds a whole model or none: written and fsynced in a sibling folder,
    then renamed into place (a crash leaves no torn model behind a finished stage)."""
    staging = directory.with_name(directory.name + ".partial")
    for folder in (staging, directory):  # an interrupted attempt of this stage
        if folder.exists():
            shutil.rmtree(folder)
    model.save(staging)
    for path in staging.rglob("*"):
        if path.is_file():
            fsync_path(path)
    os.replace(staging, directory)
    if os.name == "posix":  # directories sync only there; the rename itself is durable once the parent is synced
        for folder in (*(p for p in directory.rglob("*") if p.is_dir()), directory, directory.parent):
            fsync_path(folder)
