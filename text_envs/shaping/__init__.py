"""Reward shaping for TextGeneration-v0: wrappers composable in any order, KL estimators and β controllers.

## The ``reward_components`` convention
Every reward wrapper here puts ``info["reward_components"]`` in the info of every ``step`` (not ``reset``): a
dict of Python floats that explains the reward.

- ``"score"``: the env's per-sequence score, ``info["score"]`` on the final step and 0.0 before.
- One additive term per shaping wrapper, under its name: ``"kl_penalty"`` (:class:`KLPenalty`),
  ``"length_penalty"`` (:class:`LengthPenalty`), ``"missing_eos_penalty"`` (:class:`MissingEOSPenalty`),
  ``"dense"`` (:class:`DenseReward`), ``"potential"`` (:class:`PotentialShaping`). A shaping wrapper
  returns the reward it received plus its term, so the reward equals the sum of these entries. The
  same term added twice (two :class:`DenseReward` wrappers) is summed into one entry.
- What the transforms did: ``"clipped_by"`` (:class:`ClipReward`: reward returned minus reward
  received, so it also adds up) and ``"normalised_reward"`` (:class:`NormalizeReward`: the reward it
  returned; not a term, so leave it out of sums).

Rewards stay Python floats; ``terminated`` and ``truncated`` pass through unchanged. Put the transforms
outermost: they act on the total of everything below them::

    env = TextGenerationEnv(...)
    env = KLPenalty(env, beta=AdaptiveKLController())
    env = MissingEOSPenalty(env, penalty=1.0)
    env = NormalizeReward(env)

:func:`kl_estimate` and the β controllers are plain objects, for agents that shape rewards themselves.
"""

from text_envs.shaping.clip_reward import ClipReward
from text_envs.shaping.dense_reward import DenseReward, TokenScorer
from text_envs.shaping.kl_controller import AdaptiveKLController, FixedKLController, KLController
from text_envs.shaping.kl_penalty import KL_ESTIMATORS, MISSING_POLICY_LOGPROB, KLPenalty, kl_estimate
from text_envs.shaping.length_penalty import LengthPenalty
from text_envs.shaping.missing_eos_penalty import MissingEOSPenalty
from text_envs.shaping.normalize_reward import NormalizeReward
from text_envs.shaping.potential_shaping import Potential, PotentialShaping

__all__ = [
    "KL_ESTIMATORS",
    "MISSING_POLICY_LOGPROB",
    "AdaptiveKLController",
    "ClipReward",
    "DenseReward",
    "FixedKLController",
    "KLController",
    "KLPenalty",
    "LengthPenalty",
    "MissingEOSPenalty",
    "NormalizeReward",
    "Potential",
    "PotentialShaping",
    "TokenScorer",
    "kl_estimate",
]
