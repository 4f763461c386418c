"""TextPPO: sequence-level PPO for RLHF on TextGeneration-v0 (the algorithm shape of TRL and the RLHF papers).

It also trains on whole multi-turn games of TicTacToeText-v0 (a :class:`~text_envs.TicTacToeTextVectorEnv` with
``context="game"``): an episode is then the game, sampled with one KV cache across its turns, the reward is its
outcome, and only the agent's tokens are trained (the opponent's replies and the boards between them are read,
never given log-probs, KL or advantages); see :mod:`~text_envs_agents.text_ppo.episodes`. Reward shaping beyond
the KL term and checkpoints (``save``/``load``) are for TextGeneration-v0; a game run exports with
``save_pretrained``.

One iteration:

1. **Rollout.** ``batch_size`` prompts from a :class:`~text_envs.TextGenerationVectorEnv`; the policy
   samples one token per env step for all of them at once, feeding only the new token through its
   KV cache. The env keeps the contexts and scores every finished completion in one batched
   reward-model call. Episodes that end early keep the batch in lock-step with filler tokens
   that are ignored (as ``generate`` pads finished rows). The log-probs of the sampled tokens and
   the value estimates are recorded on the way: they are the "old" policy's, since dropout is off
   and the weights do not change until the update (with ``mixed_precision="bf16"`` the log-probs are
   recomputed by one teacher-forced forward, as the cached and teacher-forced bf16 paths differ).
2. **Scoring.** One forward per sequence (prompt + completion, teacher-forced) of the reference model
   gives its log-probs. Per-token rewards are ``-β·kl_t`` on every completion token with
   ``kl_t = kl_estimate(log π, log π_ref)`` (k1 or k3, nats, from :mod:`text_envs.shaping`) plus the
   reward model's score on the last token (Ziegler et al. 2019; Stiennon et al. 2020), then any
   further shaping the caller stacks (``shaping=[LengthTerm(0.01), ReturnStdScaling()]``, the pieces
   of :mod:`text_envs.shaping` that the single env's wrappers hold): one
   :class:`~text_envs.shaping.RewardShaping` shapes the whole batch, as the wrappers would step by step.
3. **Update.** GAE(γ, λ) over completion tokens, whitened advantages, then ``ppo_epochs`` passes of
   shuffled mini-batches of sequences with the clipped policy loss, the clipped value loss and an
   optional entropy bonus, gradient accumulation and gradient clipping. β follows an
   :class:`~text_envs.shaping.AdaptiveKLController` towards ``target_kl`` (nats per sequence) or stays
   fixed.

With ``lora`` (a dict of ``peft.LoraConfig`` arguments) only adapters train and the reference model is
the same network with its adapters disabled: no second copy. Without it the reference is a frozen
copy of the initial policy.

Devices and precision: ``device`` (``"auto"``: CUDA when present) holds the policy, the reference and
the value head, and every tensor of an iteration: rollout batch, sampling (the sampler's
``torch.Generator`` lives there), log-probs, values, GAE and losses. The env boundary is crossed once per
env step for the whole batch (the sampled tokens to numpy, which episodes ended back), and the shaping
pieces, which compute in numpy like the single env's wrappers, get the batch's ids, scores and log-probs
once per iteration and hand the per-token rewards back once. Per-minibatch statistics stay on the device
until the iteration ends. ``mixed_precision="bf16"`` (:class:`TextPPOConfig`) runs the forwards under
bf16 autocast over float32 weights and optimizer state.

Around the algorithm, the stable-baselines3 conventions (and TRL's export):

- ``learn(total_timesteps=..., callback=...)`` counts env steps, i.e. generated completion tokens
  (``self.num_timesteps``); ``learn(iterations=...)`` counts rollout + update rounds instead. It returns
  the trainer; each iteration's metrics are appended to ``self.history`` (a list of dicts). Callbacks are
  SB3 ``BaseCallback`` objects or callables ``(trainer, metrics) -> bool | None`` (False stops): see
  :mod:`text_envs_agents.text_ppo.callbacks`. stable-baselines3 is never imported by this package.
- Metrics go to TensorBoard (``tensorboard_log``) and/or Weights & Biases (``report_to``,
  ``wandb_project``) under SB3's keys (``rollout/ep_rew_mean``, ``train/approx_kl``, ``time/fps``, ...)
  plus ``rollout/score_mean``, ``rlhf/kl`` and ``rlhf/beta``, with sample completions as a markdown
  table: see :mod:`text_envs_agents.text_ppo.logger`.
- :meth:`TextPPO.save` writes a safetensors + JSON checkpoint (no pickle) holding everything the next
  update depends on (weights, optimizer, β, RNG states, env RNG) and what rebuilds the run (base model
  name, :class:`TextPPOConfig` with its LoRA config, the env's arguments); the classmethod
  ``TextPPO.load(path, env=None, **overrides)`` checks it all, rebuilds the trainer and resumes with
  the same next update.
- :meth:`TextPPO.save_pretrained` exports a folder ``AutoModelForCausalLM.from_pretrained`` loads (LoRA
  merged, or as an adapter), with the env's tokenizer and ``value_head.safetensors``;
  :meth:`TextPPO.predict` (SB3's signature: one next token per observation row) and
  :meth:`TextPPO.generate` (prompts to completions) use the trained policy.
"""

from __future__ import annotations

import copy
import json
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn
from tqdm import tqdm
from transformers import PreTrainedModel

from text_envs.generation.vector_env import TextGenerationVectorEnv
from text_envs.lm import (
    accepts_logits_to_keep,
    check_vocabulary,
    load_causal_lm,
    positions_from_mask,
    resolve_device,
    unwrap_peft,
)
from text_envs.rewards.protocol import RewardModel
from text_envs.shaping import (
    AdaptiveKLController,
    FixedKLController,
    KLTerm,
    RewardShaping,
    RewardTransform,
    ShapingTerm,
)
from text_envs.tictactoe.text_env import TicTacToeTextVectorEnv
from text_envs_agents.llm.evaluation import evaluate_lm
from text_envs_agents.llm.gpt2_decoding import fuse_gelu_activations
from text_envs_agents.llm.model import (
    check_mixed_precision,
    checkpointing,
    enable_gradient_checkpointing,
    value_head,
    with_lora,
)
from text_envs_agents.llm.rollout import RolloutBatch, completion_outputs, sequence_logprobs
from text_envs_agents.llm.sampling import next_tokens, sample_completions
from text_envs_agents.text_ppo.callbacks import Callbacks
from text_envs_agents.text_ppo.checkpoint import (
    FORMAT_VERSION,
    Checkpoint,
    build_env,
    model_record,
    read_checkpoint,
    replace_directory,
    save_state,
)
from text_envs_agents.text_ppo.config import TextPPOConfig
from text_envs_agents.text_ppo.episodes import episodes_for
from text_envs_agents.text_ppo.logger import TrainingLogger


class PolicyWithValueHead(nn.Module):
    """A causal LM plus a linear value head on its last hidden states (one value per position)."""

    def __init__(self, model: PreTrainedModel):
        super().__init__()
        self.model = model
        self.value_head = value_head(model.config.hidden_size)

    def forward(self, batch: RolloutBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(batch, length, vocab)`` predicting each completion token and the values before each
        ``(batch, length)``: one teacher-forced forward of prompt + completion."""
        logits, hidden = completion_outputs(self.model, batch, hidden=True)
        return logits, self.value_head(hidden).squeeze(-1)


class _warn_on_instance(classmethod):  # noqa: N801 (used as a decorator, like classmethod)
    """A classmethod that warns when called on an instance: ``trainer.load(path)`` returns a *new* trainer."""

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is not None:
            name = self.__func__.__name__
            warnings.warn(
                f"TextPPO.{name} is a classmethod that returns a new trainer and leaves this one as it was: "
                f"write trainer = TextPPO.{name}(path, env)",
                stacklevel=2,
            )
        return super().__get__(instance, owner)


class TextPPO:
    """Sequence-level PPO on a :class:`~text_envs.TextGenerationVectorEnv` (causal LMs), or on whole games of a
    :class:`~text_envs.TicTacToeTextVectorEnv` with ``context="game"`` (see the module docstring).

    ``env.num_envs`` is the number of episodes per iteration. ``model`` is a Hugging Face causal LM
    object or its name/path (``None``: the embedded default LM); it must share the env's tokenizer.
    Its ``gelu_new`` activations, if any, are swapped in place for the same function as one fused
    kernel (:func:`~text_envs_agents.llm.gpt2_decoding.fuse_gelu_activations`), and a model object is
    moved to ``device`` in place (as stable-baselines3 moves its policy).

    ``device`` (keyword-only): ``"auto"`` (CUDA when present, else the CPU), ``"cpu"``, ``"cuda"``,
    ``"cuda:1"`` or a ``torch.device``; not part of a checkpoint, which loads onto any device.

    Logging (keyword-only): ``tensorboard_log`` a TensorBoard directory; ``report_to`` ``"tensorboard"``,
    ``"wandb"``, both or ``"none"`` (default: TensorBoard if ``tensorboard_log`` is set, W&B if
    ``wandb_project`` is); ``wandb_project`` the W&B project (its run's config is the
    :class:`TextPPOConfig`); ``sample_log_interval`` logs four prompt/completion pairs of the first
    iteration and every N-th after it (``None``: never). Missing packages raise with the extra to install
    (``text_envs[tensorboard]``, ``text_envs[wandb]``).

    Attributes: ``policy`` (:class:`PolicyWithValueHead`), ``reference`` (None with LoRA), ``optimizer``,
    ``kl_controller``, ``iteration`` (updates so far), ``num_timesteps`` (completion tokens generated so
    far), ``history`` (per-iteration metric dicts: ``score`` (mean reward-model score), ``episode_return``
    (mean shaped return per completion), ``kl`` (nats per sequence), ``beta``, ``completion_length``
    (tokens), ``policy_loss``, ``value_loss``, ``entropy`` (nats per token), ``clip_fraction``,
    ``approx_kl``, ``learning_rate``, ``seconds``, ``fps``, ``timesteps``, ``num_timesteps``, ``iteration``),
    ``logger`` (:class:`~text_envs_agents.text_ppo.logger.TrainingLogger`).
    """

    def __init__(
        self,
        env: TextGenerationVectorEnv | TicTacToeTextVectorEnv,
        model: str | Path | PreTrainedModel | None = None,
        config: TextPPOConfig | None = None,
        tensorboard_log: str | Path | None = None,
        *,
        report_to: str | Sequence[str] | None = None,
        wandb_project: str | None = None,
        sample_log_interval: int | None = 10,
        shaping: Sequence[ShapingTerm | RewardTransform] = (),
        device: str | torch.device = "auto",
    ):
        self.episodes = episodes_for(env)
        self.env = env
        self.config = config or TextPPOConfig()
        self.device = resolve_device(device)
        torch.manual_seed(self.config.seed)
        base = model if isinstance(model, PreTrainedModel) else load_causal_lm(model)
        fuse_gelu_activations(base)
        check_vocabulary(base, self.episodes.vocab_size, "the policy model")
        self.episodes.check_model(base)
        check_mixed_precision(base, self.config.mixed_precision, self.device)
        base.to(self.device)
        if self.config.lora is not None:
            base = with_lora(base, self.config.lora)
            self.reference = None
        else:
            self.reference = copy.deepcopy(base).eval().requires_grad_(False)
        # Dropout stays off in rollouts and updates alike, so the PPO ratio moves only with the updates.
        self.policy = PolicyWithValueHead(base).to(self.device).eval()
        self._checkpointed_layers = enable_gradient_checkpointing(base) if self.config.gradient_checkpointing else []
        # fused: one kernel for all parameters (0.7 ms a step for the embedded LM, 2.8 ms for the per-tensor loop)
        trainable = [p for p in self.policy.parameters() if p.requires_grad]
        try:
            self.optimizer = torch.optim.AdamW(trainable, lr=self.config.learning_rate, fused=True)
        except RuntimeError:  # torch < 2.4 has no fused AdamW for CPU tensors
            self.optimizer = torch.optim.AdamW(trainable, lr=self.config.learning_rate)
        kl_controller = (
            AdaptiveKLController(self.config.kl_coef, self.config.target_kl, self.config.kl_horizon)
            if self.config.adaptive_kl
            else FixedKLController(self.config.kl_coef)
        )
        self.kl_term = KLTerm(kl_controller, self.config.kl_estimator)
        if shaping and not self.episodes.shapeable:
            raise ValueError("shaping pieces score completions of TextGeneration-v0; a game's reward is its outcome")
        if any(isinstance(step, KLTerm) for step in shaping):
            raise ValueError(
                "TextPPO builds its KL term from the config (kl_coef, adaptive_kl, ...); leave KLTerm out of shaping"
            )
        self.shaping = RewardShaping([self.kl_term, *shaping])
        self.kl_controller = self.kl_term.kl_controller
        self.sampler = torch.Generator(device=self.device).manual_seed(self.config.seed)
        self.iteration = 0
        self.num_timesteps = 0
        self.history: list[dict[str, float]] = []
        self.env_seed: int | None = self.config.seed
        self.sample_log_interval = sample_log_interval
        self.logger = TrainingLogger(tensorboard_log, report_to, wandb_project, run_config=asdict(self.config))

    @property
    def writer(self):
        """The TensorBoard ``SummaryWriter`` (None without ``tensorboard_log``)."""
        return self.logger.writer

    def get_env(self) -> TextGenerationVectorEnv:
        """The training env (what SB3 callbacks read as ``training_env``)."""
        return self.env

    def autocast(self) -> torch.autocast:
        """The forwards' precision: bf16 autocast on the trainer's device with ``mixed_precision="bf16"``, else off."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.mixed_precision == "bf16")

    # ----------------------------------------------------------------------------------------- rollout
    def rollout(self) -> RolloutBatch:
        """One episode in every training env, sampled by the policy with its KV cache."""
        seed, self.env_seed = self.env_seed, None  # later resets continue the env's own seeded stream
        with self.autocast():
            return self.episodes.sample(
                self.policy.model,
                seed,
                self.sampler,
                temperature=self.config.temperature,
                value_head=self.policy.value_head,
            )

    @torch.no_grad()
    def evaluate(
        self, env: TextGenerationVectorEnv, seed: int = 0, gold: RewardModel | None = None
    ) -> tuple[dict[str, float], RolloutBatch]:
        """:func:`~text_envs_agents.llm.evaluation.evaluate_lm` of the policy against the reference, on ``env``."""
        with self.autocast():
            return evaluate_lm(
                self.policy.model, self._reference_logprobs, env, seed, gold=gold, temperature=self.config.temperature
            )

    # ------------------------------------------------------------------------------------------ update
    def _sequence_outputs(self, batch: RolloutBatch) -> tuple[torch.Tensor, ...]:
        """The policy's log-probs of the completion tokens, values before each, entropies: ``(batch, length)``.

        The entropies carry gradients only when the loss uses them (``entropy_coef`` non-zero).
        """
        layers = self._checkpointed_layers if torch.is_grad_enabled() else []
        with self.autocast(), checkpointing(layers):
            logits, values = self.policy(batch)
        log_probs = torch.log_softmax(logits.float() / self.config.temperature, dim=-1)
        chosen = log_probs.gather(-1, batch.completion_ids.unsqueeze(-1)).squeeze(-1)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.config.entropy_coef != 0):
            entropy = -(log_probs.exp() * log_probs).sum(-1)
        return chosen, values.float(), entropy

    @torch.no_grad()
    def _reference_logprobs(self, batch: RolloutBatch) -> torch.Tensor:
        with self.autocast():
            if self.reference is not None:
                return sequence_logprobs(self.reference, batch, self.config.temperature)
            with self.policy.model.disable_adapter():
                return sequence_logprobs(self.policy.model, batch, self.config.temperature)

    def advantages(self, rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """GAE(γ, λ) over the trained tokens of each row; ``mask`` marks them.

        Tokens the mask leaves out (a game's opponent replies and boards, the padding) are skipped: the
        trained tokens on either side of them are consecutive steps, as they are in the env.
        """
        advantages = torch.zeros_like(rewards)
        running = rewards.new_zeros(rewards.shape[0])
        next_value = rewards.new_zeros(rewards.shape[0])
        for t in range(rewards.shape[1] - 1, -1, -1):
            trained = mask[:, t] > 0
            delta = rewards[:, t] + self.config.gamma * next_value - values[:, t]
            running = torch.where(trained, delta + self.config.gamma * self.config.lam * running, running)
            advantages[:, t] = running * mask[:, t]
            next_value = torch.where(trained, values[:, t], next_value)
        return advantages

    def shaped_rewards(
        self, batch: RolloutBatch, logprobs: torch.Tensor, ref_logprobs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-token rewards ``(batch, length)`` from :attr:`shaping` (the reward model's score on the last
        token, ``-β·kl_t`` on every token, then the user's terms and transforms), and ``kl_t`` (nats).

        One call per rollout batch: it also hands the batch's episode KL to the β controller. The
        shaping pieces compute in numpy (as the single env's wrappers do), so the ids, scores and both
        log-probs cross to the host once here, and the rewards and ``kl_t`` come back once.
        """
        ids = batch.completion_ids.cpu().numpy()
        lengths = np.asarray(batch.completion_lengths)
        # Untrained tokens (a game's board text) get the same log-prob under both, so no KL.
        mask = batch.completion_mask.float()
        policy, reference = torch.stack([logprobs.float() * mask, ref_logprobs.float() * mask]).cpu().numpy()
        stopped = self.episodes.stopped(ids, lengths)
        shaped = self.shaping.shape_completions(
            batch.prompts,
            ids,
            lengths,
            stopped,
            batch.scores.cpu().numpy(),
            self.episodes.completion_text,
            policy_logprobs=policy,
            ref_logprobs=reference,
        )
        rewards = torch.as_tensor(shaped.rewards, dtype=torch.float32, device=self.device)
        return rewards, torch.as_tensor(shaped.records["kl"], dtype=torch.float32, device=self.device)

    def update(self, batch: RolloutBatch) -> dict[str, float]:
        """KL-shaped rewards, GAE and ``ppo_epochs`` of clipped PPO on one rollout batch.

        What does not change between passes is computed once: the reference log-probs, the rewards and
        advantages, and the packing of a minibatch that holds the whole batch (rows are sorted within a
        minibatch, whose loss does not depend on their order, so such a minibatch is the batch itself).
        """
        config = self.config
        mask = batch.completion_mask.float()
        # The log-probs recorded while sampling match a teacher-forced forward to ~1e-5 in float32; under
        # bf16 autocast or in half precision the two paths differ by ~1e-2, so recompute them there.
        recorded = config.mixed_precision == "no" and next(self.policy.model.parameters()).dtype == torch.float32
        if batch.values is None or not recorded:
            with torch.no_grad():
                old_logprobs, old_values, _ = self._sequence_outputs(batch)
        else:  # recorded while sampling, with the same weights: no second forward
            old_logprobs, old_values = batch.logprobs, batch.values
        beta = self.kl_controller.value
        rewards, kl = self.shaped_rewards(batch, old_logprobs, self._reference_logprobs(batch))
        advantages = self.advantages(rewards, old_values, mask)
        returns = advantages + old_values
        if config.whiten_advantages:
            count = mask.sum()
            mean = (advantages * mask).sum() / count
            std = (((advantages - mean) ** 2 * mask).sum() / (count - 1)).sqrt()  # unbiased, as Tensor.std
            advantages = (advantages - mean) / (std + 1e-8) * mask

        n = len(batch.prompts)
        statistics: dict[str, list[torch.Tensor]] = {
            "policy_loss": [],
            "value_loss": [],
            "entropy": [],
            "clip_fraction": [],
            "approx_kl": [],
        }
        order_rng = torch.Generator().manual_seed(config.seed * 1_000_003 + self.iteration)
        for _ in range(config.ppo_epochs):
            order = torch.randperm(n, generator=order_rng)
            minibatches = [
                order[i : i + config.minibatch_size].sort().values for i in range(0, n, config.minibatch_size)
            ]
            for index, rows in enumerate(minibatches):
                sub = batch if len(rows) == n else batch.select(rows)
                rows = rows.to(self.device)
                logprobs, values, entropy = self._sequence_outputs(sub)
                m = mask[rows]
                tokens = m.sum().clamp(min=1.0)
                ratio = torch.exp(logprobs - old_logprobs[rows])
                surrogate = torch.max(
                    -advantages[rows] * ratio,
                    -advantages[rows] * ratio.clamp(1 - config.clip_range, 1 + config.clip_range),
                )
                policy_loss = (surrogate * m).sum() / tokens
                clipped_values = old_values[rows] + (values - old_values[rows]).clamp(
                    -config.clip_range_value, config.clip_range_value
                )
                value_loss = (
                    0.5
                    * (torch.max((values - returns[rows]) ** 2, (clipped_values - returns[rows]) ** 2) * m).sum()
                    / tokens
                )
                entropy_mean = (entropy * m).sum() / tokens
                loss = policy_loss + config.value_coef * value_loss - config.entropy_coef * entropy_mean
                (loss / config.gradient_accumulation_steps).backward()
                if (index + 1) % config.gradient_accumulation_steps == 0 or index == len(minibatches) - 1:
                    nn.utils.clip_grad_norm_(self.policy.parameters(), config.max_grad_norm)
                    self.optimizer.step()
                    self.optimizer.zero_grad()
                with torch.no_grad():  # kept on the device, read once after the last pass
                    statistics["policy_loss"].append(policy_loss.detach())
                    statistics["value_loss"].append(value_loss.detach())
                    statistics["entropy"].append(entropy_mean.detach())
                    statistics["clip_fraction"].append(
                        (((ratio - 1).abs() > config.clip_range).float() * m).sum() / tokens
                    )
                    statistics["approx_kl"].append((((ratio - 1) - torch.log(ratio)) * m).sum() / tokens)
        episode_kl = kl.sum(1)
        self.iteration += 1
        means = torch.stack([torch.stack(values).mean() for values in statistics.values()]).tolist()
        return {
            "score": float(batch.scores.mean()),
            "episode_return": float(rewards.sum(1).mean()),
            "kl": float(episode_kl.mean()),
            "beta": beta,
            "completion_length": float(np.mean(batch.completion_lengths)),
            **dict(zip(statistics, means, strict=True)),
        }

    # ----------------------------------------------------------------------------------------- training
    def learn(
        self,
        total_timesteps: int | None = None,
        callback: Any = None,
        iterations: int | None = None,
        progress_bar: bool = False,
    ) -> TextPPO:
        """Train for ``total_timesteps`` generated tokens or for ``iterations`` rollout + update rounds (one of them).

        A timestep is one env step, i.e. one generated completion token (stable-baselines3's unit): each
        iteration adds its batch's real completion tokens (stop tokens included, filler excluded) to
        ``self.num_timesteps``, and training stops after the iteration that reaches ``total_timesteps``
        more than at the call (the count carries on across calls and checkpoints, like SB3's
        ``reset_num_timesteps=False``). ``callback``: see :mod:`text_envs_agents.text_ppo.callbacks` (SB3
        ``BaseCallback`` objects, callables ``(trainer, metrics) -> bool | None``, or a list of both); False
        from either stops training. Each iteration's metrics are appended to ``self.history`` and logged.
        Returns ``self``, as SB3's ``learn`` does.
        """
        if (total_timesteps is None) == (iterations is None):
            raise ValueError(
                "give exactly one of total_timesteps (generated tokens) and iterations (rollout + update rounds), "
                f"got total_timesteps={total_timesteps}, iterations={iterations}"
            )
        budget = total_timesteps if iterations is None else iterations
        if budget < 0:
            raise ValueError(f"total_timesteps and iterations must be non-negative, got {budget}")
        by_tokens = iterations is None
        if by_tokens and 0 < budget < self.env.num_envs:
            # learn(n) meant n iterations before learn counted timesteps; every batch generates at least
            # one token per env, so a budget below that is almost surely an old call.
            warnings.warn(
                f"total_timesteps={budget} counts generated tokens, fewer than one iteration's batch of "
                f"{self.env.num_envs} episodes generates: one iteration will run (for rounds, pass iterations=)",
                stacklevel=2,
            )
        callbacks = Callbacks(callback, self)
        start_timesteps, start_time, done = self.num_timesteps, time.perf_counter(), 0
        # What SB3 callbacks read as self.locals (the same dict, updated in place as SB3 does).
        learn_locals: dict[str, Any] = {
            # absolute, as SB3's ProgressBarCallback reads it (an estimate of the tokens when counting iterations)
            "total_timesteps": start_timesteps
            + (budget if by_tokens else budget * self.env.num_envs * self.episodes.max_episode_tokens),
            "dones": np.ones(self.env.num_envs, dtype=bool),  # every episode of a batch ends in its iteration
            "infos": [{} for _ in range(self.env.num_envs)],
            "iterations": iterations,
            "batch": None,
            "new_timesteps": 0,
            "metrics": None,
            "history": self.history,
        }
        callbacks.training_start(learn_locals, globals())
        with tqdm(total=budget, disable=not progress_bar, unit="token" if by_tokens else "it") as bar:
            while (self.num_timesteps - start_timesteps if by_tokens else done) < budget:
                start = time.perf_counter()
                callbacks.rollout_start()
                batch = self.rollout()
                new_timesteps = int(batch.completion_mask.sum())
                self.num_timesteps += new_timesteps
                learn_locals.update(batch=batch, new_timesteps=new_timesteps)
                callbacks.rollout_end(learn_locals)
                metrics = self.update(batch)
                now = time.perf_counter()
                metrics.update(
                    seconds=now - start,
                    timesteps=float(new_timesteps),
                    num_timesteps=float(self.num_timesteps),
                    iteration=float(self.iteration),
                    fps=(self.num_timesteps - start_timesteps) / max(now - start_time, 1e-9),
                    learning_rate=float(self.optimizer.param_groups[0]["lr"]),
                )
                self.history.append(metrics)
                self._record(metrics, batch)
                learn_locals["metrics"] = metrics
                done += 1
                bar.set_postfix(score=f"{metrics['score']:.2f}", kl=f"{metrics['kl']:.2f}")
                bar.update(new_timesteps if by_tokens else 1)
                # SB3's on_step once per iteration, after its update: a checkpoint it saves is consistent, and
                # False wastes no sampled batch. Then the plain callables; values callbacks record go out too.
                keep_going = callbacks.step(learn_locals)
                keep_going = callbacks.iteration_end(metrics) and keep_going
                self.logger.dump(self.num_timesteps)
                if not keep_going:
                    break
        callbacks.training_end()
        return self

    def _record(self, metrics: dict[str, float], batch: RolloutBatch, samples: int = 4) -> None:
        """Hand one iteration's metrics (and, every ``sample_log_interval`` iterations, samples) to the logger."""
        self.logger.record_metrics(metrics)
        interval = self.sample_log_interval
        if interval and (self.iteration - 1) % interval == 0:
            k = min(samples, len(batch.prompts))
            scores = batch.scores[:k].tolist()
            self.logger.log_samples(batch.prompts[:k], batch.completions[:k], scores, self.num_timesteps)

    # --------------------------------------------------------------------------------------- inference
    @torch.no_grad()
    def predict(
        self,
        observation: dict[str, np.ndarray],
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, None]:
        """The policy's next token for each row of a ``Dict(input_ids, attention_mask)`` observation (SB3's API).

        Rows are left-padded contexts, ``(n, length)`` (or one context, ``(length,)``, giving one action).
        Sampled at the config's temperature from torch's global RNG (the training streams are left alone), or
        the most likely token with ``deterministic=True``. Returns ``(actions, None)``: the policy keeps no
        recurrent state, and ``state`` / ``episode_start`` are ignored.
        """
        if not isinstance(observation, dict) or not {"input_ids", "attention_mask"} <= set(observation):
            raise ValueError(
                "predict takes the env's Dict(input_ids, attention_mask) observations (observation_mode='tokens'), "
                f"got {type(observation).__name__}"
            )
        input_ids = torch.as_tensor(np.asarray(observation["input_ids"]), dtype=torch.long, device=self.device)
        attention_mask = torch.as_tensor(
            np.asarray(observation["attention_mask"]), dtype=torch.long, device=self.device
        )
        single = input_ids.ndim == 1
        if single:
            input_ids, attention_mask = input_ids[None], attention_mask[None]
        model = self.policy.model
        extra = {"logits_to_keep": 1} if accepts_logits_to_keep(model) else {}
        positions = positions_from_mask(attention_mask)
        with self.autocast():
            output = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, **extra)
        logits = output.logits[:, -1, : self.episodes.vocab_size]
        actions, _ = next_tokens(logits, self.config.temperature, greedy=deterministic)
        actions = actions.cpu().numpy().astype(np.int64)
        return (actions[0] if single else actions), None

    def generate(
        self,
        prompts: str | Sequence[str],
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        seed: int = 0,
        batch_size: int = 16,
    ) -> list[str]:
        """One sampled completion per prompt from the trained policy, decoded without special tokens.

        :func:`~text_envs_agents.llm.sampling.sample_completions` with the env's tokenizer: ancestral
        sampling at ``temperature`` (default: the config's, as in rollouts), up to ``max_new_tokens``
        (default: the env's) tokens, stopping at EOS (the env's other stop tokens do not end it here),
        prompts as given (the env cuts them to ``max_prompt_tokens``). ``seed`` makes it repeatable; torch's
        global RNG is restored afterwards, so generating does not change training.
        """
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []), self.autocast():
            pairs = sample_completions(
                prompts,
                unwrap_peft(self.policy.model),
                max_new_tokens=max_new_tokens or self.episodes.max_episode_tokens,
                temperature=self.config.temperature if temperature is None else temperature,
                seed=seed,
                batch_size=batch_size,
                tokenizer=copy.deepcopy(self.env.tokenizer),  # sample_completions sets padding on it
            )
        return [completion for _, completion in pairs]

    def save_pretrained(self, directory: str | Path, merge_lora: bool = True) -> Path:
        """Export the policy as a folder ``AutoModelForCausalLM.from_pretrained(directory)`` loads.

        Writes the LM (safetensors; with LoRA the adapters merged into a copy of the base via peft's
        ``merge_and_unload``, or, with ``merge_lora=False``, the adapters alone with their
        ``adapter_config.json``, which transformers loads onto the base when peft is installed), the env's
        tokenizer, and the value head as ``value_head.safetensors`` (``weight`` ``(1, hidden)``, ``bias``).
        The trainer is not changed. Returns the directory.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        model = self.policy.model
        if merge_lora and hasattr(model, "merge_and_unload"):
            model = copy.deepcopy(model).merge_and_unload()
        model.save_pretrained(str(directory))
        self.env.tokenizer.save_pretrained(str(directory))
        head = self.policy.value_head
        save_file(
            {"weight": head.weight.detach().cpu().contiguous(), "bias": head.bias.detach().cpu().contiguous()},
            str(directory / "value_head.safetensors"),
            metadata={"hidden_size": str(head.in_features)},
        )
        return directory

    # ------------------------------------------------------------------------------------- checkpoints
    def save(self, directory: str | Path) -> None:
        """A checkpoint :meth:`load` resumes from: safetensors + JSON, no pickle, replaced as a whole.

        ``policy.safetensors`` (trainable weights: the adapters and value head with LoRA),
        ``optimizer.safetensors``, ``rng.safetensors`` (sampler and torch RNG states, and the sampler's
        device type) and
        ``trainer_state.json``: iteration, ``num_timesteps``, β, the env's RNG state, the
        :class:`TextPPOConfig` (its ``lora`` included), the base model's name or path (``null``: the
        embedded default LM), the env's arguments where they can be written down (see
        :func:`~text_envs_agents.text_ppo.checkpoint.env_record`) and the metrics history.

        The files are written into a new folder beside ``directory`` and swapped in
        (:func:`~text_envs_agents.text_ppo.checkpoint.replace_directory`), so a crash leaves the previous
        checkpoint or this one, never a mix; ``directory`` must be missing, empty or a checkpoint.
        """
        if not self.episodes.checkpointable:
            raise ValueError(
                "TextPPO.save checkpoints TextGeneration-v0 runs; a game env's RNG streams live in its sub-envs: "
                "export the trained policy with save_pretrained"
            )
        trainable = {name: p.detach() for name, p in self.policy.named_parameters() if p.requires_grad}
        rng = {"sampler": self.sampler.get_state(), "sampler_device": self.device.type, "torch": torch.get_rng_state()}
        state = {
            "format": FORMAT_VERSION,
            "iteration": self.iteration,
            "num_timesteps": self.num_timesteps,
            "kl_beta": self.kl_controller.value,
            "env_seed": self.env_seed,
            "env_rng": self.env.np_random.bit_generator.state,
            "config": asdict(self.config),
            "model": model_record(unwrap_peft(self.policy.model)),
            "env": self.episodes.record(),
            "shaping": _extra_shaping(self),
            "history": self.history,
        }

        def write(folder: Path) -> None:
            save_state(folder / "policy.safetensors", trainable)
            save_state(folder / "optimizer.safetensors", self.optimizer.state_dict())
            save_state(folder / "rng.safetensors", rng)
            (folder / "trainer_state.json").write_text(json.dumps(state, indent=2) + "\n")

        replace_directory(directory, write)

    @_warn_on_instance
    def load(cls, path: str | Path, env: TextGenerationVectorEnv | None = None, **kwargs: Any) -> TextPPO:
        """A trainer rebuilt from a :meth:`save` checkpoint, ready to resume (a classmethod, as in SB3).

        The whole checkpoint is read and checked first (every file present, the JSON parsed and typed,
        the safetensors files read); then the env (``env``, or rebuilt from the recorded arguments) and the
        trainer (the recorded base model, LoRA config and :class:`TextPPOConfig`; its loggers only once
        the checkpoint fits) are built, and the saved tensors' names and shapes and the RNG states are
        checked against the rebuilt policy, optimizer, sampler and env before any state is copied in. A
        refused load leaves the given env and torch's RNG as they were and opens no log; errors name the
        file and the problem. The next update is the one the saved run would have made. A ``path`` whose
        save was interrupted between its renames loads from ``<path>.old`` (see
        :mod:`~text_envs_agents.text_ppo.checkpoint`).

        - ``env``: overrides the recorded env; required when the checkpoint could not record it (a
          reward model or tokenizer given as an object).
        - ``model=``: overrides the recorded base model (a name, path or object with the same parameters).
        - :class:`TextPPOConfig` fields as keywords (``learning_rate=1e-5``) override the saved config, as
          stable-baselines3's ``load`` kwargs do; ``learning_rate`` also resets the restored optimizer's rate,
          and a KL field (``kl_coef``, ``adaptive_kl``, ``target_kl``, ``kl_horizon``) starts β afresh
          instead of restoring it. ``lora`` cannot change (it decides which parameters were saved).
        - ``config=``: accepted only when equal to the saved one; a different config is refused (name the
          fields to change instead), so a stale config cannot silently replace the checkpoint's.
        - other keywords (``tensorboard_log``, ``report_to``, ``wandb_project``, ``sample_log_interval``,
          ``shaping``, ``device``) go to the constructor; the tensors load onto its ``device`` whatever
          device saved them (a sampler state from another device type cannot continue: the sampling
          stream restarts from the seed and the iteration, with a warning); ``shaping`` is required when
          the saved run had shaping steps beside the KL term (recorded by class name only; any running
          statistics they keep start afresh).
        """
        checkpoint = read_checkpoint(path)
        state, state_path = checkpoint.state, checkpoint.state_path
        saved = _config_from_json(state["config"], state_path)
        names = {f.name for f in fields(TextPPOConfig)}
        overrides = {name: kwargs.pop(name) for name in list(kwargs) if name in names}
        given = kwargs.pop("config", None)
        if given is not None:
            differing = sorted(n for n in names if _jsonable(getattr(given, n)) != _jsonable(getattr(saved, n)))
            if differing:
                raise ValueError(
                    f"config differs from the checkpoint's ({state_path}) in {differing}: pass no config, and the "
                    "fields to change as keywords (TextPPO.load(path, learning_rate=...))"
                )
        if "lora" in overrides and _jsonable(overrides["lora"]) != _jsonable(saved.lora):
            raise ValueError(f"lora cannot change on load: it decides which parameters {checkpoint.policy.path} holds")
        config = replace(saved, **overrides)
        model = kwargs.pop("model", None)
        if model is None:
            record = state.get("model")
            if not isinstance(record, dict):
                raise ValueError(f"{state_path} records no base model (an older checkpoint): pass model= to load")
            if "unrecorded" in record:
                raise ValueError(f"{state_path} could not record the base model ({record['unrecorded']}): pass model=")
            model = record.get("name_or_path")
        if env is None:
            env = build_env(state.get("env"), state_path)
        given = [type(step).__name__ for step in kwargs.get("shaping", ())]
        if state.get("shaping", []) != given:
            raise ValueError(
                f"{state_path}: the saved run shaped rewards with {state.get('shaping', [])} beside the KL term, "
                f"given {given}; a checkpoint does not hold the pieces: pass them again as shaping= to load"
            )
        logging = {name: kwargs.pop(name) for name in _LOGGING_ARGUMENTS if name in kwargs}
        torch_rng = torch.get_rng_state()
        try:
            trainer = cls(env, model, config, **kwargs)
            trainer._check_checkpoint(checkpoint)
            if logging:  # opened only now, so a refused load leaves no TensorBoard folder or W&B run behind
                trainer.logger = TrainingLogger(**logging, run_config=asdict(trainer.config))
        except BaseException:
            torch.set_rng_state(torch_rng)  # the constructor seeds torch; a refused load leaves no trace
            raise
        trainer._restore(checkpoint, overrides)
        return trainer

    def _check_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Refuse saved tensors whose names or shapes do not fit this trainer's policy and optimizer."""
        expected = {name: tuple(p.shape) for name, p in self.policy.named_parameters() if p.requires_grad}
        saved, path = checkpoint.policy.tree(), checkpoint.policy.path
        missing, unexpected = sorted(set(expected) - set(saved)), sorted(set(saved) - set(expected))
        if missing or unexpected:
            raise ValueError(
                f"{path} does not fit the rebuilt policy's trainable parameters (another base model or lora "
                f"config?): missing {missing[:5]}, unexpected {unexpected[:5]}"
            )
        wrong = [f"{name} {saved[name]} vs {shape}" for name, shape in expected.items() if saved[name] != shape]
        if wrong:
            raise ValueError(f"{path}: tensor shapes differ from the rebuilt policy's (saved vs rebuilt): {wrong[:5]}")
        optimizer, path = checkpoint.optimizer.tree(), checkpoint.optimizer.path
        groups, current = optimizer["param_groups"], self.optimizer.param_groups
        try:
            indices = [list(group["params"]) for group in groups]
        except (TypeError, KeyError) as error:
            raise ValueError(f"{path}: malformed param_groups ({error!r})") from error
        if [len(i) for i in indices] != [len(group["params"]) for group in current]:
            raise ValueError(
                f"{path}: parameter groups of sizes {[len(i) for i in indices]}, the rebuilt optimizer's "
                f"{[len(group['params']) for group in current]}"
            )
        parameters = {
            i: p for ids, group in zip(indices, current, strict=True) for i, p in zip(ids, group["params"], strict=True)
        }
        for index, values in optimizer["state"].items():
            if index not in parameters or not isinstance(values, dict):
                raise ValueError(f"{path}: state for an unknown parameter {index!r}")
            for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
                if key in values and values[key] != tuple(parameters[index].shape):
                    raise ValueError(
                        f"{path}: {key} of parameter {index} has shape {values[key]}, "
                        f"the parameter {tuple(parameters[index].shape)}"
                    )
        env_rng = checkpoint.state["env_rng"]
        generator = type(self.env.np_random.bit_generator)
        if env_rng.get("bit_generator") != generator.__name__:
            raise ValueError(
                f"{checkpoint.state_path}: env_rng is a {env_rng.get('bit_generator')!r} state, "
                f"the env draws with {generator.__name__}"
            )
        try:
            generator().state = env_rng  # a throwaway generator: the env's own changes only in _restore
        except (ValueError, TypeError, KeyError) as error:
            raise ValueError(
                f"{checkpoint.state_path}: env_rng is not a valid {generator.__name__} state ({error})"
            ) from error
        sampler = checkpoint.rng.tree()["sampler"]
        if checkpoint.rng_state.get("sampler_device", "cpu") == self.device.type and sampler != tuple(
            self.sampler.get_state().shape
        ):
            raise ValueError(f"{checkpoint.rng.path}: the sampler state has shape {sampler}, not a generator's")

    def _restore(self, checkpoint: Checkpoint, overrides: dict[str, Any]) -> None:
        """Copy a checked checkpoint's state into this trainer (and its env's RNG)."""
        parameters = dict(self.policy.named_parameters())
        with torch.no_grad():
            for name, value in checkpoint.weights.items():
                parameters[name].copy_(value)
        self.optimizer.load_state_dict(checkpoint.optimizer_state)
        if "learning_rate" in overrides:
            for group in self.optimizer.param_groups:
                group["lr"] = self.config.learning_rate
        rng = checkpoint.rng_state
        saved_device = rng.get("sampler_device", "cpu")  # checkpoints before devices sampled on the CPU
        if saved_device == self.device.type:
            self.sampler.set_state(rng["sampler"])
        else:  # a CPU generator's state does not fit a CUDA one, nor the other way round
            warnings.warn(
                f"{checkpoint.rng.path}: the run sampled on {saved_device}, this trainer on {self.device.type}; "
                "the sampling stream restarts (seeded from the config's seed and the iteration)",
                stacklevel=3,
            )
            # Salted apart from the minibatch order's seed (seed * 1_000_003 + iteration), so the streams differ.
            self.sampler.manual_seed(self.config.seed * 1_000_003 + checkpoint.state["iteration"] + 500_009)
        torch.set_rng_state(rng["torch"])
        state = checkpoint.state
        self.iteration, self.env_seed = state["iteration"], state.get("env_seed")
        self.num_timesteps = int(state.get("num_timesteps", 0))
        self.history = list(state.get("history", []))
        if not any(name in overrides for name in _KL_FIELDS):
            self.kl_controller.value = state["kl_beta"]
        self.env.np_random.bit_generator.state = state["env_rng"]

    def close(self) -> None:
        """Flush and close the loggers (TensorBoard writer, W&B run)."""
        self.logger.close()


_KL_FIELDS = ("kl_coef", "adaptive_kl", "target_kl", "kl_horizon")
_LOGGING_ARGUMENTS = ("tensorboard_log", "report_to", "wandb_project")


def _extra_shaping(trainer: TextPPO) -> list[str]:
    """The class names of the shaping steps besides the KL term (objects a checkpoint cannot hold)."""
    return [type(step).__name__ for step in trainer.shaping.steps[1:]]


def _jsonable(value: Any) -> Any:
    """``value`` as JSON gives it back (tuples become lists), so saved and given configs compare fairly."""
    return json.loads(json.dumps(value))


def _config_from_json(values: dict[str, Any], path: Path) -> TextPPOConfig:
    if "length_penalty" in values:
        raise ValueError(
            f"{path}: a checkpoint from before shaping pieces; its length_penalty={values['length_penalty']} is now "
            "shaping=[LengthTerm(coef)]: delete the field from the file and pass that to load"
        )
    try:
        return TextPPOConfig(**values)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: its config does not fit TextPPOConfig ({error})") from error
