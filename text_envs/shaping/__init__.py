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
| :class:`CommonNgramPenalty` | :class:`CommonNgramTerm` | ``"common_ngram_penalty"`` (common recent n-grams) |
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
Gymnasium's ``NormalizeReward`` (see its docstring), hence its own name. The pieces need only numpy;
the wrappers (and ``KLPenalty``'s reference LM) load torch, on first use.
"""

from text_envs.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "KL_ESTIMATORS": "text_envs.shaping.kl",
        "AdaptiveKLController": "text_envs.shaping.kl",
        "FixedKLController": "text_envs.shaping.kl",
        "KLController": "text_envs.shaping.kl",
        "kl_estimate": "text_envs.shaping.kl",
        "parse_piece": "text_envs.shaping.spec",
        "parse_shaping": "text_envs.shaping.spec",
        "MISSING_POLICY_LOGPROB": "text_envs.shaping.terms",
        "ClipTransform": "text_envs.shaping.terms",
        "CommonNgramTerm": "text_envs.shaping.terms",
        "DenseTerm": "text_envs.shaping.terms",
        "KLTerm": "text_envs.shaping.terms",
        "LengthTerm": "text_envs.shaping.terms",
        "MissingEOSTerm": "text_envs.shaping.terms",
        "Potential": "text_envs.shaping.terms",
        "PotentialTerm": "text_envs.shaping.terms",
        "ReturnStdScaling": "text_envs.shaping.terms",
        "RewardShaping": "text_envs.shaping.terms",
        "RewardTransform": "text_envs.shaping.terms",
        "ShapedRewards": "text_envs.shaping.terms",
        "ShapingTerm": "text_envs.shaping.terms",
        "TokenScorer": "text_envs.shaping.terms",
        "Transitions": "text_envs.shaping.terms",
        "ClipReward": "text_envs.shaping.wrappers",
        "DenseReward": "text_envs.shaping.wrappers",
        "KLPenalty": "text_envs.shaping.wrappers",
        "LengthPenalty": "text_envs.shaping.wrappers",
        "CommonNgramPenalty": "text_envs.shaping.wrappers",
        "MissingEOSPenalty": "text_envs.shaping.wrappers",
        "PotentialShaping": "text_envs.shaping.wrappers",
        "ScaleRewardByReturnStd": "text_envs.shaping.wrappers",
        "ShapingWrapper": "text_envs.shaping.wrappers",
    },
)
