"""Where TextPPO's metrics go: TensorBoard and/or Weights & Biases, under stable-baselines3's keys.

:class:`TrainingLogger` is also the ``logger`` an SB3 callback sees (``self.logger.record(key, value)``,
``self.logger.dump(step)``), so callbacks written for SB3 can add their own values. Each iteration's
metrics (the dict :meth:`~text_envs_agents.text_ppo.TextPPO.update` returns, plus timing) are written
under the keys of :data:`SB3_KEYS` at step ``num_timesteps`` (generated tokens, SB3's x-axis), and a few
prompt/completion pairs as a markdown table every ``sample_log_interval`` iterations. Both back-ends are
imported only when asked for, with an install hint when they are missing.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPORT_TO = ("tensorboard", "wandb")

SB3_KEYS: dict[str, str] = {
    "episode_return": "rollout/ep_rew_mean",
    "completion_length": "rollout/ep_len_mean",
    "score": "rollout/score_mean",
    "policy_loss": "train/policy_gradient_loss",
    "value_loss": "train/value_loss",
    "entropy": "train/entropy_loss",
    "approx_kl": "train/approx_kl",
    "clip_fraction": "train/clip_fraction",
    "learning_rate": "train/learning_rate",
    "fps": "time/fps",
    "iteration": "time/iterations",
    "num_timesteps": "time/total_timesteps",
    "seconds": "time/iteration_seconds",
    "kl": "rlhf/kl",
    "beta": "rlhf/beta",
}
"""Metric name -> logged key. ``rollout/ep_rew_mean`` is the mean shaped return per completion (reward-model
score, KL penalty and every further shaping term summed over its tokens), ``rollout/score_mean`` the raw
reward-model score, ``rollout/ep_len_mean`` completion tokens; ``train/entropy_loss`` is minus the mean
per-token entropy (nats), as SB3 logs it; ``rlhf/kl`` is nats per sequence and ``rlhf/beta`` the KL
coefficient that shaped the batch."""

_NEGATED = {"entropy"}


def resolve_report_to(
    report_to: str | Sequence[str] | None, tensorboard_log: str | Path | None, wandb_project: str | None
) -> tuple[str, ...]:
    """The back-ends to write to. ``None``: TensorBoard if ``tensorboard_log`` is set, W&B if ``wandb_project`` is."""
    if report_to is None:
        targets = ["tensorboard"] * (tensorboard_log is not None) + ["wandb"] * (wandb_project is not None)
    else:
        targets = [report_to] if isinstance(report_to, str) else list(report_to)
        targets = [t for t in targets if t != "none"]
    unknown = [t for t in targets if t not in REPORT_TO]
    if unknown:
        raise ValueError(f"report_to takes {REPORT_TO} or 'none', got {unknown}")
    if "tensorboard" in targets and tensorboard_log is None:
        raise ValueError("report_to includes 'tensorboard': give the log directory as tensorboard_log=")
    return tuple(dict.fromkeys(targets))


def markdown_table(prompts: Sequence[str], completions: Sequence[str], scores: Sequence[float]) -> str:
    """Prompt / completion / reward-model score rows as a markdown table (TensorBoard's text tab renders it)."""

    def cell(text: str) -> str:
        return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ") or " "

    rows = ["| prompt | completion | score |", "|---|---|---:|"]
    for prompt, completion, score in zip(prompts, completions, scores, strict=True):
        rows.append(f"| {cell(prompt)} | {cell(completion)} | {float(score):.3f} |")
    return "\n".join(rows)


class TrainingLogger:
    """Buffers values with :meth:`record` and writes them with :meth:`dump`, as SB3's ``Logger`` does.

    ``report_to`` names the back-ends (see :func:`resolve_report_to`); ``run_config`` (a dict) becomes the W&B
    run's config. With no back-end every call is a cheap no-op.
    """

    def __init__(
        self,
        tensorboard_log: str | Path | None = None,
        report_to: str | Sequence[str] | None = None,
        wandb_project: str | None = None,
        run_config: dict[str, Any] | None = None,
    ):
        self.report_to = resolve_report_to(report_to, tensorboard_log, wandb_project)
        self.name_to_value: dict[str, float] = {}
        self.writer = None
        self.wandb_run = None
        self._wandb = None
        if "tensorboard" in self.report_to:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as error:
                raise ModuleNotFoundError(
                    "TensorBoard logging (tensorboard_log=...) needs the tensorboard package: "
                    'pip install "text_envs[tensorboard]"'
                ) from error
            self.writer = SummaryWriter(str(tensorboard_log))
        if "wandb" in self.report_to:
            try:
                import wandb
            except ImportError as error:
                raise ModuleNotFoundError(
                    'Weights & Biases logging (report_to="wandb" or wandb_project=...) needs the wandb package: '
                    'pip install "text_envs[wandb]"'
                ) from error
            self._wandb = wandb
            self.wandb_run = wandb.init(project=wandb_project, config=run_config)

    def record(self, key: str, value: Any, exclude: Any = None) -> None:
        """Set ``key`` to ``value`` for the next :meth:`dump` (SB3's ``Logger.record``; ``exclude`` is ignored)."""
        self.name_to_value[key] = value

    def record_mean(self, key: str, value: Any, exclude: Any = None) -> None:
        """SB3's ``Logger.record_mean`` reduced to :meth:`record`: one value per dump here."""
        self.record(key, value, exclude)

    def record_metrics(self, metrics: dict[str, float]) -> None:
        """One iteration's metrics under :data:`SB3_KEYS` (other numeric entries under ``textppo/``)."""
        for name, value in metrics.items():
            key = SB3_KEYS.get(name, f"textppo/{name}")
            self.record(key, -value if name in _NEGATED else value)

    def dump(self, step: int = 0) -> None:
        """Write the recorded values at ``step`` (generated tokens so far) and forget them."""
        values, self.name_to_value = self.name_to_value, {}
        scalars = {k: float(v) for k, v in values.items() if _is_scalar(v)}
        if self.writer is not None:
            for key, value in scalars.items():
                self.writer.add_scalar(key, value, step)
            self.writer.flush()
        if self.wandb_run is not None and scalars:
            self.wandb_run.log(scalars, step=step)

    def log_samples(self, prompts: Sequence[str], completions: Sequence[str], scores: Sequence[float], step: int):
        """A few prompt/completion pairs: markdown text ``samples`` in TensorBoard, a ``samples`` table in W&B."""
        if self.writer is not None:
            self.writer.add_text("samples", markdown_table(prompts, completions, scores), step)
        if self.wandb_run is not None:
            rows = [[p, c, float(s)] for p, c, s in zip(prompts, completions, scores, strict=True)]
            table = self._wandb.Table(columns=["prompt", "completion", "score"], data=rows)
            self.wandb_run.log({"samples": table}, step=step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.wandb_run is not None:
            self.wandb_run.finish()
            self.wandb_run = None


def _is_scalar(value: Any) -> bool:
    """A number SB3's logger would record: Python and numpy numbers, 0-d arrays and tensors (not bools)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Real):
        return True
    return getattr(value, "ndim", None) == 0 and getattr(value, "dtype", None) is not None
