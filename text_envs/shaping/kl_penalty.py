"""Per-token KL penalty against a frozen reference model (Ziegler et al. 2019; Stiennon et al. 2020)."""

from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from text_envs.lm import check_vocabulary, forward_with_cache, load_causal_lm
from text_envs.shaping.kl_controller import FixedKLController, KLController
from text_envs.shaping.reward_components import add_reward_term

KL_ESTIMATORS = ("k1", "k3")
MISSING_POLICY_LOGPROB = ("cross_entropy", "zero", "error")


def kl_estimate(
    policy_logprob: float | np.ndarray, ref_logprob: float | np.ndarray, estimator: str = "k1"
) -> float | np.ndarray:
    """Per-token estimate of KL(π‖π_ref) in nats from the log-probs of the sampled tokens (floats or arrays).

    ``"k1"``: ``log π − log π_ref``; unbiased, but negative for some tokens. ``"k3"``: with
    ``r = log π_ref − log π``, ``(exp(r) − 1) − r``; unbiased, never negative, lower variance
    (Schulman 2020, "Approximating KL divergence"). Both are unbiased only for tokens sampled from π.
    A float in gives a float out.
    """
    if estimator not in KL_ESTIMATORS:
        raise ValueError(f"estimator must be one of {KL_ESTIMATORS}, got {estimator!r}")
    log_ratio = np.subtract(policy_logprob, ref_logprob)
    kl = log_ratio if estimator == "k1" else np.expm1(-log_ratio) + log_ratio
    return float(kl) if np.ndim(kl) == 0 else kl


class KLPenalty(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Penalise every token by β times its KL(π‖π_ref) estimate against a frozen reference LM.

    ## Description
    RLHF's KL penalty (Ziegler et al. 2019; Stiennon et al. 2020): the policy π is rewarded for the
    reward model's score but pays, token by token, for drifting from a reference model π_ref (usually
    the LM it started from), which keeps it fluent and stops it from exploiting the reward model.

    The wrapper owns π_ref and computes ``log π_ref(a_t|s_t)`` itself: it feeds the prompt's real
    (unpadded) tokens to the reference model on ``reset`` and then each action, reusing the KV cache
    within the episode, so a step costs one token's forward pass. Only causal envs are supported.

    **How log π(a_t|s_t) reaches the wrapper.** The agent samples a_t, so only it knows its log-prob.
    Before each ``step`` it calls ``set_policy_logprob(logprob)`` on this wrapper (from outside a stack
    of wrappers: ``env.get_wrapper_attr("set_policy_logprob")(logprob)``), and that ``step`` consumes
    the value; ``reset`` drops a value that was never consumed. A step without one follows
    ``missing_policy_logprob``, so agents that cannot report log-probs (stock SB3 PPO) still train:

    - ``"cross_entropy"`` (default): ``kl_t := −log π_ref(a_t|s_t)``, i.e. ``r_t = β·log π_ref(a_t|s_t)``.
      Under a_t ~ π its expectation is ``−β·(KL(π‖π_ref) + H(π))``: the KL penalty plus an entropy
      penalty of the same weight, which an agent can offset with an entropy bonus.
    - ``"zero"``: no penalty that step (``kl_t := 0``).
    - ``"error"``: raise ``RuntimeError`` before the env steps.

    ## Rewards
    The incoming reward (the env's score on the last token) plus ``−β·kl_t`` on every token, with
    ``kl_t`` the per-token estimate in nats from :func:`kl_estimate` and β the current
    ``kl_controller.value`` (per token, in reward units per nat).

    ## Information
    Every step: ``reward_components["kl_penalty"]`` (``−β·kl_t``), ``kl`` (``kl_t``, nats),
    ``ref_logprob`` (``log π_ref(a_t|s_t)``, nats), ``kl_beta`` (the β used) and
    ``policy_logprob_supplied`` (bool); ``policy_logprob`` (the value the agent set) when it was
    supplied. The last step adds ``episode_kl``: the sum of ``kl_t`` over the episode (nats per
    sequence), which then updates the β controller (``update(episode_kl, 1)``). With
    ``"cross_entropy"`` steps in it, ``episode_kl`` overstates the KL by the policy's entropy.

    ## Arguments
    - ``env``: a causal TextGeneration-v0 env (any observation mode), possibly wrapped.
    - ``reference_model``: a Hugging Face causal LM object, or its Hub name or local path; ``None`` the
      embedded default LM. It is put in eval mode and run without gradients.
    - ``beta``: a fixed β (0.05), or a controller such as :class:`AdaptiveKLController`.
    - ``estimator``: ``"k1"`` or ``"k3"`` (see :func:`kl_estimate`).
    - ``missing_policy_logprob``: ``"cross_entropy"``, ``"zero"`` or ``"error"`` (see Description).
    """

    def __init__(
        self,
        env: gym.Env,
        reference_model: str | Path | torch.nn.Module | None = None,
        beta: float | KLController = 0.05,
        estimator: str = "k1",
        missing_policy_logprob: str = "cross_entropy",
    ):
        if estimator not in KL_ESTIMATORS:
            raise ValueError(f"estimator must be one of {KL_ESTIMATORS}, got {estimator!r}")
        if missing_policy_logprob not in MISSING_POLICY_LOGPROB:
            raise ValueError(
                f"missing_policy_logprob must be one of {MISSING_POLICY_LOGPROB}, got {missing_policy_logprob!r}"
            )
        gym.utils.RecordConstructorArgs.__init__(
            self,
            reference_model=reference_model,
            beta=beta,
            estimator=estimator,
            missing_policy_logprob=missing_policy_logprob,
        )
        gym.Wrapper.__init__(self, env)
        self._task = env.unwrapped.task
        if self._task.architecture != "causal":
            raise ValueError("KLPenalty supports causal envs only (architecture='causal')")
        if not isinstance(reference_model, torch.nn.Module):
            reference_model = load_causal_lm(reference_model)
        self.reference_model = reference_model.eval()
        check_vocabulary(self.reference_model, self._task.vocab_size, "the reference model")
        self.kl_controller: KLController = FixedKLController(beta) if isinstance(beta, numbers.Real) else beta
        self.estimator = estimator
        self.missing_policy_logprob = missing_policy_logprob
        self._device = next(self.reference_model.parameters()).device
        self._kv_cache: Any = None
        self._next_logprobs: torch.Tensor | None = None
        self._policy_logprob: float | None = None
        self._episode_kl = 0.0

    def set_policy_logprob(self, logprob: float) -> None:
        """Give ``log π(a_t|s_t)`` (nats) of the action the agent passes to the next ``step``."""
        value = float(logprob)
        if not math.isfinite(value):
            raise ValueError(f"the policy log-prob must be finite, got {value}")
        self._policy_logprob = value

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        observation, info = self.env.reset(seed=seed, options=options)
        if isinstance(observation, dict):
            prompt_ids = observation["input_ids"][observation["attention_mask"] == 1]
        else:
            prompt_ids = self._task.encode_prompt(info["prompt"])
        self._kv_cache = None
        self._advance(prompt_ids)
        self._policy_logprob = None
        self._episode_kl = 0.0
        return observation, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        policy_logprob, self._policy_logprob = self._policy_logprob, None
        if policy_logprob is None and self.missing_policy_logprob == "error":
            raise RuntimeError(
                "no policy log-prob for this step: call env.get_wrapper_attr('set_policy_logprob')(logprob) "
                "before each step, or choose missing_policy_logprob='cross_entropy' or 'zero'"
            )
        observation, reward, terminated, truncated, info = self.env.step(action)
        ref_logprob = float(self._next_logprobs[int(action)])
        if policy_logprob is not None:
            kl = kl_estimate(policy_logprob, ref_logprob, self.estimator)
        elif self.missing_policy_logprob == "cross_entropy":
            kl = -ref_logprob
        else:
            kl = 0.0
        beta = self.kl_controller.value
        penalty = -beta * kl
        self._episode_kl += kl
        info = add_reward_term(info, "kl_penalty", penalty)
        info.update(kl=kl, ref_logprob=ref_logprob, kl_beta=beta, policy_logprob_supplied=policy_logprob is not None)
        if policy_logprob is not None:
            info["policy_logprob"] = policy_logprob
        if terminated or truncated:
            info["episode_kl"] = self._episode_kl
            self.kl_controller.update(self._episode_kl, 1)
            self._kv_cache = self._next_logprobs = None
        else:
            self._advance([int(action)])
        return observation, float(reward) + penalty, terminated, truncated, info

    @torch.no_grad()
    def _advance(self, token_ids: Any) -> None:
        """Feed ``token_ids`` to the reference model after the cached context; keep log π_ref of the next token."""
        input_ids = torch.as_tensor(np.asarray(token_ids, dtype=np.int64), device=self._device)[None]
        logits, self._kv_cache = forward_with_cache(self.reference_model, input_ids, self._kv_cache)
        self._next_logprobs = torch.log_softmax(logits[0, -1].float(), dim=-1)
