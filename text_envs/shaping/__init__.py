"""Reward shaping for TextGeneration-v0: one mechanism for single envs and batched trainers.

## One mechanism
Every piece of shaping is a **term** (adds to the reward) or a **transform** (maps the running total)
of :mod:`text_envs.shaping.terms`, computed over a batch of transitions. The per-step wrappers hold
one piece each and call it with a batch of one; :class:`RewardShaping` stacks pieces and shapes a
whole batch of completions at once (what :class:`text_envs_agents.text_ppo.TextPPO` calls, with one
teacher-forced reference pass per batch). The same pieces in the same order give the same rewards:

| wrapper (single env) | piece (``RewardShaping``) | ``reward_components`` entry |
|---|---|---|
| :class:`KLPenalty` | :class:`KLTerm` | ``"kl_penalty"`` (``−β·kl_t`` per token) |
| :class:`LengthPenalty` | :class:`LengthTerm` | ``"length_penalty"`` (per token over a target, per sequence) |
| :class:`MissingEOSPenalty` | :class:`MissingEOSTerm` | ``"missing_eos_penalty"`` |
| :class:`DenseReward` | :class:`DenseTerm` | ``"dense"`` |
| :class:`PotentialShaping` | :class:`PotentialTerm` | ``"potential"`` |
| :class:`ClipReward` | :class:`ClipTransform` | ``"clipped_by"`` (returned minus received) |
| :class:`ScaleRewardByReturnStd` | :class:`ReturnStdScaling` | ``"normalised_reward"`` (not a term) |
| :class:`ShapingWrapper` | your own :class:`ShapingTerm` / :class:`RewardTransform` | its ``name`` |

## The ``reward_components`` convention
Every wrapper here puts ``info["reward_components"]`` in the info of every ``step`` (not ``reset``): a
dict of Python floats that explains the reward. ``"score"`` is the env's per-sequence score
(``info["score"]`` on the final step, 0.0 before); each term adds its entry, so the reward equals the
sum of the entries (the same term twice is summed into one entry), except ``"normalised_reward"``,
which records a transform's result. Rewards stay Python floats; ``terminated`` and ``truncated`` pass
through unchanged. Put the transforms outermost: they act on the total of everything below them::

    env = TextGenerationEnv(...)
    env = KLPenalty(env, beta=AdaptiveKLController())
    env = MissingEOSPenalty(env, penalty=1.0)
    env = ScaleRewardByReturnStd(env)

    # the same shaping for a batched trainer (TextPPO builds its KLTerm from its config):
    shaping = [MissingEOSTerm(1.0), ReturnStdScaling()]

Pieces also come from text (command lines, sweep grids): ``parse_shaping("LengthTerm(coef=0.1);
ClipTransform(-5, 5)")`` (:mod:`text_envs.shaping.spec`).

Two names differ from Gymnasium's wrappers on purpose: :class:`ClipReward` takes Gymnasium's arguments
(``min_reward``, ``max_reward``) and behaves as Gymnasium's; :class:`ScaleRewardByReturnStd` is not
Gymnasium's ``NormalizeReward`` (see its docstring), hence its own name.
"""

from text_envs.shaping.kl import KL_ESTIMATORS, AdaptiveKLController, FixedKLController, KLController, kl_estimate
from text_envs.shaping.spec import parse_piece, parse_shaping
from text_envs.shaping.terms import (
    MISSING_POLICY_LOGPROB,
    ClipTransform,
    DenseTerm,
    KLTerm,
    LengthTerm,
    MissingEOSTerm,
    Potential,
    PotentialTerm,
    ReturnStdScaling,
    RewardShaping,
    RewardTransform,
    ShapedRewards,
    ShapingTerm,
    TokenScorer,
    Transitions,
)
from text_envs.shaping.wrappers import (
    ClipReward,
    DenseReward,
    KLPenalty,
    LengthPenalty,
    MissingEOSPenalty,
    PotentialShaping,
    ScaleRewardByReturnStd,
    ShapingWrapper,
)

__all__ = [
    "KL_ESTIMATORS",
    "MISSING_POLICY_LOGPROB",
    "AdaptiveKLController",
    "ClipReward",
    "ClipTransform",
    "DenseReward",
    "DenseTerm",
    "FixedKLController",
    "KLController",
    "KLPenalty",
    "KLTerm",
    "LengthPenalty",
    "LengthTerm",
    "MissingEOSPenalty",
    "MissingEOSTerm",
    "Potential",
    "PotentialShaping",
    "PotentialTerm",
    "ReturnStdScaling",
    "RewardShaping",
    "RewardTransform",
    "ScaleRewardByReturnStd",
    "ShapedRewards",
    "ShapingTerm",
    "ShapingWrapper",
    "TokenScorer",
    "Transitions",
    "kl_estimate",
    "parse_piece",
    "parse_shaping",
]
