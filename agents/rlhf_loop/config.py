"""The RLHF loop's settings, apart from the loop (its trainers, judges and sampling), for the command lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from text_envs.defaults import DEFAULT_PROMPTS_TEST, DEFAULT_PROMPTS_TRAIN
from text_envs.feedback.labelling import MODES
from text_envs.judges import DEFAULT_JUDGE_LM
from text_envs.rewards.training import RewardTrainingConfig
from text_envs_agents.text_ppo.config import TextPPOConfig


@dataclass
class RLHFLoopConfig:
    """What :func:`run_rlhf_loop` does each round; ``loop.json`` keeps it, and a resumed loop must match it."""

    rounds: int = 3
    """K: rounds of sample -> label -> reward model -> RL (a rerun with more appends rounds)"""
    mode: Literal["label", "compare"] = "compare"
    """label: 0/1 per completion; compare: a/b per pair of completions of one prompt"""
    items_per_round: int = 100
    """items the annotator judges per round, from the training prompts (compare: pairs)"""
    test_items_per_round: int = 20
    """held-out items per round, from the test prompts: the reward model's test set, never trained on"""
    model: str = ""
    """policy and reference LM: registered name, Hub name or local folder (empty: the embedded LM)"""
    prompts: str = str(DEFAULT_PROMPTS_TRAIN)
    """training prompts (items and RL): a .txt/.jsonl file or a Hugging Face dataset"""
    test_prompts: str = str(DEFAULT_PROMPTS_TEST)
    """held-out prompts (held-out items and the evaluation)"""
    max_new_tokens: int = 40
    """most tokens per completion, in the items, RL and the evaluation"""
    base_feedback: tuple[str, ...] = ()
    """feedback files whose records train every round's reward model too (e.g. earlier data)"""
    base_test_feedback: tuple[str, ...] = ()
    """feedback files whose records join every round's reward-model test set"""
    only_annotator_records: bool = False
    """train and test the reward model on this annotator's records only (base files may hold others')"""
    iterations: int = 30
    """TextPPO iterations per round"""
    batch_size: int = 32
    """episodes per TextPPO iteration"""
    evaluation_samples_per_prompt: int = 1
    """completions per held-out prompt in the evaluation"""
    judge_lm: str = DEFAULT_JUDGE_LM
    """LM judging the held-out completions' perplexity; not the policy's reference (empty: no perplexity)"""
    seed: int = 0
    """seeds the prompt draws and the sampling of each round's items and the evaluation"""
    reward_training: RewardTrainingConfig = field(default_factory=RewardTrainingConfig)
    """reward-model training settings (every round the same)"""
    ppo: TextPPOConfig = field(default_factory=TextPPOConfig)
    """TextPPO settings (round 1's trainer; later rounds continue its checkpoint)"""

    def __post_init__(self) -> None:
        """Refuse settings no loop could mean, naming the field."""
        if self.rounds < 1:
            raise ValueError(f"rounds must be at least 1, got {self.rounds}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        for name in ("items_per_round", "test_items_per_round", "max_new_tokens", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.iterations < 0 or self.evaluation_samples_per_prompt < 1:
            raise ValueError(
                "iterations must be at least 0 and evaluation_samples_per_prompt at least 1, got "
                f"{self.iterations}, {self.evaluation_samples_per_prompt}"
            )
        if self.judge_lm and self.judge_lm == self.model:
            raise ValueError(f"judge_lm {self.judge_lm!r} is the policy's reference: judge with another LM")
