"""Per-step reward-shaping wrappers for the single TextGeneration env: each holds one term or transform of
:mod:`text_envs.shaping.terms` and calls it with a batch of one, so a stack of wrappers gives the rewards
that :class:`~text_envs.shaping.terms.RewardShaping` of the same terms gives a batched trainer.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from text_envs.lm import check_vocabulary, forward_with_cache, load_causal_lm
from text_envs.shaping.kl import KLController
from text_envs.shaping.reward_components import NOT_ADDITIVE, reward_components
from text_envs.shaping.terms import (
    ClipTransform,
    CommonNgramTerm,
    DenseTerm,
    KLTerm,
    LengthTerm,
    MissingEOSTerm,
    Potential,
    PotentialTerm,
    ReturnStdScaling,
    RewardTransform,
    ShapingTerm,
    TokenScorer,
    Transitions,
    term_rewards,
)


class ShapingWrapper(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Apply one shaping term or transform to a single TextGeneration-v0 env (possibly wrapped).

    ## Rewards
    A term: the reward received plus the term. A transform: the transform of the reward received
    (the total of everything below it). Rewards stay Python floats.

    ## Information
    Every step: ``reward_components`` gains the piece's entry under its ``name`` (see
    :mod:`text_envs.shaping`), and what the piece reports beside it (e.g. ``kl``) as Python floats.

    ## Arguments
    - ``env``: a TextGeneration-v0 env, possibly wrapped.
    - ``shaping``: a :class:`~text_envs.shaping.terms.ShapingTerm` or
      :class:`~text_envs.shaping.terms.RewardTransform`, e.g. a term of your own.
    """

    def __init__(self, env: gym.Env, shaping: ShapingTerm | RewardTransform, **constructor_args: Any):
        if not isinstance(shaping, (ShapingTerm, RewardTransform)):
            raise TypeError(f"shaping must be a ShapingTerm or RewardTransform, got {shaping!r}")
        gym.utils.RecordConstructorArgs.__init__(self, **(constructor_args or {"shaping": shaping}))
        gym.Wrapper.__init__(self, env)
        self.shaping = shaping
        self._task = env.unwrapped.task
        self._prompt = ""
        self._completion_ids: list[int] = []

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        observation, info = self.env.reset(seed=seed, options=options)
        self._prompt = info["prompt"]
        self._completion_ids = []
        self.shaping.start(np.zeros(1, dtype=np.int64), [self._prompt])
        return observation, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        self._completion_ids.append(int(action))
        step = Transitions(
            episodes=np.zeros(1, dtype=np.int64),
            prompts=[self._prompt],
            completion_ids=[np.array(self._completion_ids, dtype=np.int64)],
            terminated=np.array([terminated]),
            truncated=np.array([truncated]),
            decode=self._task.completion_text,
            **self._logprobs(int(action)),
        )
        received = np.array([float(reward)])
        if isinstance(self.shaping, RewardTransform):
            shaped, records = self.shaping(step, received)
        else:
            values, records = term_rewards(self.shaping, step)
            shaped = received + values
            records = {self.shaping.name: values, **records}
        components = reward_components(info)
        info = dict(info)
        for key, values in records.items():
            value = float(values[0])
            if key == self.shaping.name:
                components[key] = value if key in NOT_ADDITIVE else components.get(key, 0.0) + value
            else:
                info[key] = value
        info["reward_components"] = components
        if terminated or truncated:
            self.shaping.end_batch()
            self._after_episode()
        else:
            self._after_step(int(action))
        return observation, float(shaped[0]), terminated, truncated, info

    def _logprobs(self, action: int) -> dict[str, np.ndarray]:
        """``policy_logprobs`` and ``ref_logprobs`` of this step's action, for terms that read them."""
        return {}

    def _after_step(self, action: int) -> None:
        """The episode goes on after ``action``."""

    def _after_episode(self) -> None:
        """The episode ended."""


class KLPenalty(ShapingWrapper):
    """Penalise every token by β times its KL(π‖π_ref) estimate against a frozen reference LM (:class:`KLTerm`).

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
    ``kl_t`` the per-token estimate in nats from :func:`~text_envs.shaping.kl.kl_estimate` and β the
    current ``kl_controller.value`` (per token, in reward units per nat).

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
    - ``beta``: a fixed β (0.05), or a controller such as :class:`~text_envs.shaping.AdaptiveKLController`.
    - ``estimator``: ``"k1"`` or ``"k3"`` (see :func:`~text_envs.shaping.kl.kl_estimate`).
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
        term = KLTerm(beta, estimator, missing_policy_logprob)
        super().__init__(
            env,
            term,
            reference_model=reference_model,
            beta=beta,
            estimator=estimator,
            missing_policy_logprob=missing_policy_logprob,
        )
        if self._task.architecture != "causal":
            raise ValueError("KLPenalty supports causal envs only (architecture='causal')")
        if not isinstance(reference_model, torch.nn.Module):
            reference_model = load_causal_lm(reference_model)
        self.reference_model = reference_model.eval()
        check_vocabulary(self.reference_model, self._task.vocab_size, "the reference model")
        self.kl_controller = term.kl_controller
        self.estimator = estimator
        self.missing_policy_logprob = missing_policy_logprob
        self._device = next(self.reference_model.parameters()).device
        self._kv_cache: Any = None
        self._next_logprobs: torch.Tensor | None = None
        self._policy_logprob: float | None = None
        self._step_policy_logprob: float | None = None

    def set_policy_logprob(self, logprob: float) -> None:
        """Give ``log π(a_t|s_t)`` (nats) of the action the agent passes to the next ``step``."""
        value = float(logprob)
        if not math.isfinite(value):
            raise ValueError(f"the policy log-prob must be finite, got {value}")
        self._policy_logprob = value

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        observation, info = super().reset(seed=seed, options=options)
        if isinstance(observation, dict):
            prompt_ids = observation["input_ids"][observation["attention_mask"] == 1]
        else:
            prompt_ids = self._task.encode_prompt(info["prompt"])
        self._kv_cache = None
        self._advance(prompt_ids)
        self._policy_logprob = None
        return observation, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        if self._policy_logprob is None and self.missing_policy_logprob == "error":
            raise RuntimeError(
                "no policy log-prob for this step: call env.get_wrapper_attr('set_policy_logprob')(logprob) "
                "before each step, or choose missing_policy_logprob='cross_entropy' or 'zero'"
            )
        self._step_policy_logprob, self._policy_logprob = self._policy_logprob, None
        observation, reward, terminated, truncated, info = super().step(action)
        info["policy_logprob_supplied"] = self._step_policy_logprob is not None
        if self._step_policy_logprob is not None:
            info["policy_logprob"] = self._step_policy_logprob
        return observation, reward, terminated, truncated, info

    def _logprobs(self, action: int) -> dict[str, np.ndarray]:
        supplied = self._step_policy_logprob
        return {
            "policy_logprobs": np.array([np.nan if supplied is None else supplied]),
            "ref_logprobs": np.array([float(self._next_logprobs[action])]),
        }

    def _after_step(self, action: int) -> None:
        self._advance([action])

    def _after_episode(self) -> None:
        self._kv_cache = self._next_logprobs = None

    @torch.no_grad()
    def _advance(self, token_ids: Any) -> None:
        """Feed ``token_ids`` to the reference model after the cached context; keep log π_ref of the next token."""
        input_ids = torch.as_tensor(np.asarray(token_ids, dtype=np.int64), device=self._device)[None]
        logits, self._kv_cache = forward_with_cache(self.reference_model, input_ids, self._kv_cache)
        self._next_logprobs = torch.log_softmax(logits[0, -1].float(), dim=-1)


class LengthPenalty(ShapingWrapper):
    """Penalise completions longer than ``target_length`` tokens, linearly in the excess (:class:`LengthTerm`).

    ## Description
    Reward models often prefer longer answers; this term counters that bias (or, with
    ``target_length``, only the part of it beyond a budget).

    ## Rewards
    On the last step, ``−coef·max(0, n − target_length)`` with ``n`` the number of generated tokens,
    the stop token that ended the completion included; 0.0 before. ``coef`` is in reward units per
    token over the target; the term is per sequence.

    ## Information
    Every step: ``reward_components["length_penalty"]``.

    ## Arguments
    - ``env``: a TextGeneration-v0 env, possibly wrapped.
    - ``coef``: the penalty per token over ``target_length`` (finite, >= 0).
    - ``target_length``: tokens allowed without penalty (0: every token counts).
    """

    def __init__(self, env: gym.Env, coef: float, target_length: int = 0):
        super().__init__(env, LengthTerm(coef, target_length), coef=coef, target_length=target_length)


class CommonNgramPenalty(ShapingWrapper):
    """Penalise a completion by how common its word n-grams are among recent completions (:class:`CommonNgramTerm`).

    ## Description
    A diversity term: RL against a reward model collapses onto a few high-scoring phrasings; here a phrasing
    costs what share of the last ``window`` completions already use it, so the policy pays for repeating
    itself across episodes. The window starts empty and holds this env's own finished episodes.

    ## Rewards
    On the last step, ``−coef·m`` with ``m`` the mean, over the completion's distinct word ``n``-grams
    (lower-cased, split on whitespace), of the share of the last ``window`` completions holding that n-gram;
    0.0 before, and for a completion of fewer than ``n`` words. Per sequence, in reward units.

    ## Information
    Every step: ``reward_components["common_ngram_penalty"]``.

    ## Arguments
    - ``env``: a TextGeneration-v0 env, possibly wrapped.
    - ``coef``: the penalty for a completion whose every n-gram is in every recent completion (finite, >= 0).
    - ``n``: the n-gram length in words (>= 1).
    - ``window``: how many recent completions count (>= 1).
    """

    def __init__(self, env: gym.Env, coef: float, n: int = 2, window: int = 256):
        super().__init__(env, CommonNgramTerm(coef, n, window), coef=coef, n=n, window=window)


class MissingEOSPenalty(ShapingWrapper):
    """Penalise completions that never ended themselves (truncated by ``max_new_tokens`` or a full context).

    ## Description
    A reward model scores a cut-off completion as if it were finished; this constant penalty teaches
    the policy to end its answers (as TRL's ``missing_eos_penalty`` does). :class:`MissingEOSTerm`.

    ## Rewards
    ``−penalty`` on a final step that was truncated, i.e. no EOS or stop token was emitted; 0.0 on
    every other step (per sequence, in reward units).

    ## Information
    Every step: ``reward_components["missing_eos_penalty"]``.

    ## Arguments
    - ``env``: a TextGeneration-v0 env, possibly wrapped.
    - ``penalty``: the amount subtracted from a truncated completion's reward (finite, >= 0).
    """

    def __init__(self, env: gym.Env, penalty: float):
        super().__init__(env, MissingEOSTerm(penalty), penalty=penalty)


class DenseReward(ShapingWrapper):
    """Add ``coef`` times a scorer's value of the completion so far at every token (:class:`DenseTerm`).

    ## Description
    Gives the policy feedback before the end of the episode. After each step every generated id so
    far is decoded as one sequence with the env's tokenizer (byte-level tokens would garble piecewise
    decoding), exactly as the env decodes its final completion (special tokens skipped; on the last
    step without the stop token that ended it), and ``token_scorer(prompt, completion)`` is called.

    ## Rewards
    Per token, in ``coef`` times the scorer's units: ``coef·v_t`` with ``v_t`` the score after token t;
    or, with ``difference=True``, ``coef·(v_t − v_{t−1})`` with ``v_{−1} = token_scorer(prompt, "")``,
    so the episode's sum telescopes to ``coef·(v_T − v_{−1})`` whatever the length.

    ## Information
    Every step: ``reward_components["dense"]`` (the term added) and ``token_score`` (``v_t``).

    ## Arguments
    - ``env``: a TextGeneration-v0 env, possibly wrapped.
    - ``token_scorer``: ``(prompt: str, completion_so_far: str) -> float``, called once per step (and
      once per ``reset`` with ``difference=True``).
    - ``coef``: weight of the term (1.0).
    - ``difference``: reward the change in score instead of the score (False).
    """

    def __init__(self, env: gym.Env, token_scorer: TokenScorer, coef: float = 1.0, difference: bool = False):
        term = DenseTerm(token_scorer, coef, difference)
        super().__init__(env, term, token_scorer=token_scorer, coef=coef, difference=difference)


class PotentialShaping(ShapingWrapper):
    """Add ``F = γ·Φ(s') − Φ(s)`` at every token, for a potential Φ of the prompt and completion so far.

    ## Description
    Ng et al. (1999) show that adding ``γ·Φ(s') − Φ(s)`` to every transition does not change which
    policies are optimal, whatever Φ is, provided Φ is 0 at the end of the episode: a heuristic
    (a partial-completion scorer, a value estimate) can guide exploration without being exploitable.
    Here Φ(s') := 0 on the last step, whether terminated or truncated (the token budget is part of
    the task). The state's completion is every generated id so far decoded as one sequence with the
    env's tokenizer (special tokens skipped). :class:`PotentialTerm`.

    ## Rewards
    Per token, in Φ's units: ``γ·Φ(s_{t+1}) − Φ(s_t)``, with ``Φ(s_0) = potential(prompt, "")`` and
    ``Φ(s_T) = 0``. With ``γ = 1`` an episode's terms sum to ``−Φ(s_0)``, whatever the policy does.

    ## Information
    Every step: ``reward_components["potential"]`` (the shaping term F).

    ## Arguments
    - ``env``: a TextGeneration-v0 env, possibly wrapped.
    - ``potential``: ``(prompt: str, completion_so_far: str) -> float``, called once per ``reset`` and
      once per non-final step.
    - ``gamma``: the agent's discount factor (1.0); the guarantee holds only if they match.
    """

    def __init__(self, env: gym.Env, potential: Potential, gamma: float = 1.0):
        super().__init__(env, PotentialTerm(potential, gamma), potential=potential, gamma=gamma)


class ClipReward(ShapingWrapper):
    """Clip every reward to ``[min_reward, max_reward]``, as Gymnasium's ``ClipReward`` (:class:`ClipTransform`).

    ## Description
    Bounds the total reward (score plus shaping terms) so that an outlier, such as a reward model's
    extreme score or a large KL term, cannot dominate an update.

    ## Rewards
    ``min(max(r_t, min_reward), max_reward)`` for each incoming reward ``r_t`` (per token, in its units).

    ## Information
    Every step: ``reward_components["clipped_by"]``, the reward returned minus the reward received
    (0.0 when nothing was clipped; negative when clipped from above), so the components below it plus
    this one still sum to the reward returned.

    ## Arguments
    - ``env``: a TextGeneration-v0 env, possibly wrapped; put this wrapper outside the shaping wrappers.
    - ``min_reward``, ``max_reward``: the bounds (``None`` leaves a side open; at least one is given).
    """

    def __init__(self, env: gym.Env, min_reward: float | None = None, max_reward: float | None = None):
        transform = ClipTransform(min_reward, max_reward)
        super().__init__(env, transform, min_reward=min_reward, max_reward=max_reward)


class ScaleRewardByReturnStd(ShapingWrapper):
    """Divide every reward by the running standard deviation of the episode return (:class:`ReturnStdScaling`).

    ## Description
    Keeps the scale of the total reward (score plus shaping terms) near 1 whatever the reward model's
    units, so that learning rates and value losses transfer between reward models. Not Gymnasium's
    ``NormalizeReward``, hence the name: the statistics are the returns ``G = Σ_t γ^t r_t`` of whole
    episodes (updated once per episode, at its end), each episode is scaled by one divisor
    throughout, and γ defaults to 1 (RLHF's undiscounted return). The divisor is 1 until two episodes
    have ended.

    ## Rewards
    ``r_t / sqrt(var(G) + epsilon)`` for each incoming reward ``r_t`` (per token, in units of the
    return's standard deviation).

    ## Information
    Every step: ``reward_components["normalised_reward"]`` (the reward returned; the additive terms below
    it still sum to the reward before scaling) and ``reward_std`` (the divisor).

    ## Arguments
    - ``env``: a TextGeneration-v0 env, possibly wrapped; put this wrapper outside the shaping wrappers.
    - ``gamma``: discount of the episode return (1.0).
    - ``epsilon``: added to the variance before the square root (1e-8).
    - ``update_statistics``: update the running statistics at the end of each episode (True); set the
      attribute of the same name to False to freeze them for evaluation.
    """

    def __init__(self, env: gym.Env, gamma: float = 1.0, epsilon: float = 1e-8, update_statistics: bool = True):
        transform = ReturnStdScaling(gamma, epsilon, update_statistics)
        super().__init__(env, transform, gamma=gamma, epsilon=epsilon, update_statistics=update_statistics)

    @property
    def update_statistics(self) -> bool:
        return self.shaping.update_statistics

    @update_statistics.setter
    def update_statistics(self, value: bool) -> None:
        self.shaping.update_statistics = bool(value)

    @property
    def return_count(self) -> int:
        return self.shaping.return_count

    @property
    def return_mean(self) -> float:
        return self.shaping.return_mean

    @property
    def return_std(self) -> float:
        return self.shaping.return_std
