"""One shaping mechanism: a batch of completions shaped at once gets the rewards the per-step wrappers give,
and TextPPO's rewards come from the same pieces."""

import numpy as np
import pytest
import torch

from text_envs import TextGenerationEnv, TextGenerationVectorEnv
from text_envs.shaping import (
    AdaptiveKLController,
    ClipReward,
    ClipTransform,
    CommonNgramPenalty,
    CommonNgramTerm,
    DenseReward,
    DenseTerm,
    FixedKLController,
    KLPenalty,
    KLTerm,
    LengthPenalty,
    LengthTerm,
    MissingEOSPenalty,
    MissingEOSTerm,
    PotentialShaping,
    PotentialTerm,
    ReturnStdScaling,
    RewardShaping,
    ScaleRewardByReturnStd,
    ShapingTerm,
    ShapingWrapper,
    parse_shaping,
)
from text_envs.shaping.terms import Transitions
from text_envs_agents.llm.rollout import sample_episodes
from text_envs_agents.text_ppo import TextPPO, TextPPOConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")
PROMPT = "the food was"


def dense_scorer(prompt, completion):
    return completion.count("great") * 0.3


def potential(prompt, completion):
    return len(completion) / 10


@pytest.fixture(scope="module")
def completions(tokenizer):
    great, and_, fun = tokenizer.encode(" great and fun", add_special_tokens=False)
    eos = tokenizer.eos_token_id
    return [[great, and_, fun, eos], [great, and_, fun, great], [eos], [fun, great, great, great]]


def wrapped_env(tokenizer, reference_model, scale: bool):
    env = TextGenerationEnv(
        tokenizer=tokenizer, prompts=[PROMPT], reward_model=lambda p, c: [2.0] * len(c), max_new_tokens=4
    )
    env = KLPenalty(env, reference_model=reference_model, beta=0.2, estimator="k3")
    env = LengthPenalty(env, coef=0.1, target_length=2)
    env = MissingEOSPenalty(env, penalty=1.0)
    env = DenseReward(env, dense_scorer, difference=True)
    env = PotentialShaping(env, potential, gamma=0.9)
    env = ClipReward(env, min_reward=-1.5, max_reward=1.5)
    return ScaleRewardByReturnStd(env) if scale else env


def pieces(scale: bool):
    stack = [
        KLTerm(0.2, "k3"),
        LengthTerm(0.1, target_length=2),
        MissingEOSTerm(1.0),
        DenseTerm(dense_scorer, difference=True),
        PotentialTerm(potential, gamma=0.9),
        ClipTransform(-1.5, 1.5),
    ]
    return RewardShaping(stack + [ReturnStdScaling()] if scale else stack)


def step_through(env, completions):
    """Per-token rewards of each completion through the wrappers, the log-probs the agent reported, the infos."""
    rewards, policy, reference, ends = [], [], [], []
    for index, ids in enumerate(completions):
        env.reset(seed=0)
        row_rewards, row_policy, row_reference = [], [], []
        for t, action in enumerate(ids):
            logprob = np.nan
            if (t + index) % 2 == 0:  # the agent reports its log-prob on every other step: both KL paths
                logprob = -1.0 - 0.1 * t
                env.get_wrapper_attr("set_policy_logprob")(logprob)
            _, reward, terminated, truncated, info = env.step(action)
            row_rewards.append(reward)
            row_policy.append(logprob)
            row_reference.append(info["ref_logprob"])
        assert terminated or truncated
        ends.append(terminated)
        rewards.append(row_rewards)
        policy.append(row_policy)
        reference.append(row_reference)
    return rewards, policy, reference, ends


def padded(rows, fill=0.0):
    out = np.full((len(rows), max(map(len, rows))), fill, dtype=np.float64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def shape(shaping, task, completions, policy, reference, ends, rows):
    lengths = np.array([len(completions[i]) for i in rows])
    return shaping.shape_completions(
        [PROMPT] * len(rows),
        padded([completions[i] for i in rows]).astype(np.int64),
        lengths,
        np.array([ends[i] for i in rows]),
        np.full(len(rows), 2.0),
        task.completion_text,
        policy_logprobs=padded([policy[i] for i in rows], np.nan),
        ref_logprobs=padded([reference[i] for i in rows]),
    )


def test_a_batch_gets_the_rewards_of_the_wrappers_token_by_token(tokenizer, reference_model, completions):
    env = wrapped_env(tokenizer, reference_model, scale=False)
    rewards, policy, reference, ends = step_through(env, completions)
    assert ends == [True, False, True, False]
    shaped = shape(pieces(scale=False), env.unwrapped.task, completions, policy, reference, ends, range(4))
    for i, row in enumerate(rewards):
        assert shaped.rewards[i, : len(row)] == pytest.approx(row, abs=1e-9)
        assert (shaped.rewards[i, len(row) :] == 0).all()
    assert set(shaped.components) == {
        "score",
        "kl_penalty",
        "length_penalty",
        "missing_eos_penalty",
        "dense",
        "potential",
        "clipped_by",
    }
    additive = sum(shaped.components.values())
    np.testing.assert_allclose(additive, shaped.rewards, atol=1e-12)


def test_return_scaling_matches_when_each_batch_holds_one_episode(tokenizer, reference_model, completions):
    # An episode is scaled by the divisor it started with; episodes of one batch start together.
    env = wrapped_env(tokenizer, reference_model, scale=True)
    rewards, policy, reference, ends = step_through(env, completions)
    shaping = pieces(scale=True)
    for i, row in enumerate(rewards):
        shaped = shape(shaping, env.unwrapped.task, completions, policy, reference, ends, [i])
        assert shaped.rewards[0, : len(row)] == pytest.approx(row, abs=1e-9)
    assert shaping.find(ReturnStdScaling)[0].return_count == env.return_count == 4


def test_the_kl_controller_adapts_between_batches_only():
    term = KLTerm(AdaptiveKLController(0.1, target=1.0, horizon=10))
    shaping = RewardShaping([term])
    shaped = shaping.shape_completions(
        ["p", "p"],
        np.zeros((2, 3), dtype=np.int64),
        np.array([3, 2]),
        np.array([False, False]),
        np.zeros(2),
        lambda ids, stopped: "",
        policy_logprobs=np.full((2, 3), -1.0),
        ref_logprobs=np.full((2, 3), -2.0),
    )
    assert (shaped.records["kl_beta"][shaped.records["kl"] != 0] == 0.1).all()  # one β for the whole batch
    np.testing.assert_allclose(shaped.records["episode_kl"].sum(1), [3.0, 2.0])
    # then one update with the batch's mean episode KL (2.5 nats, error clipped to 0.2) over 2 episodes
    assert term.kl_controller.value == pytest.approx(0.1 * (1 + 0.2 * 2 / 10))


def test_text_ppo_shapes_with_the_same_pieces(tokenizer):
    env = TextGenerationVectorEnv(4, reward_model=lambda p, c: [1.0] * len(c), max_new_tokens=6)
    terms = [LengthTerm(0.05), MissingEOSTerm(0.5), ClipTransform(-2.0, 2.0)]
    ppo = TextPPO(env, config=TextPPOConfig(kl_coef=0.3, kl_estimator="k3"), shaping=terms)
    batch = sample_episodes(ppo.policy.model, env, 0, torch.Generator().manual_seed(0))
    logprobs = batch.logprobs
    ref_logprobs = logprobs - 0.25 * batch.completion_mask  # a reference that disagrees by a known amount
    rewards, kl = ppo.shaped_rewards(batch, logprobs, ref_logprobs)

    lengths = batch.completion_mask.sum(1).numpy()
    ids = batch.completion_ids.numpy()
    stopped = np.isin(ids[np.arange(4), lengths - 1], list(env.task.stop_token_ids))
    expected = RewardShaping([KLTerm(0.3, "k3"), LengthTerm(0.05), MissingEOSTerm(0.5), ClipTransform(-2.0, 2.0)])
    want = expected.shape_completions(
        batch.prompts,
        ids,
        lengths,
        stopped,
        batch.scores.double().numpy(),
        env.task.completion_text,
        policy_logprobs=logprobs.double().numpy(),
        ref_logprobs=ref_logprobs.double().numpy(),
    )
    torch.testing.assert_close(rewards, torch.as_tensor(want.rewards, dtype=torch.float32))
    k3 = np.expm1(-0.25) + 0.25
    torch.testing.assert_close(kl, torch.as_tensor(k3 * batch.completion_mask.numpy(), dtype=torch.float32))


class CountsTokens(ShapingTerm):
    """A user's own term: +1 per token."""

    name = "tokens"

    def __call__(self, step):
        return np.ones(len(step.episodes)), {}


def test_a_term_of_ones_own_serves_the_wrapper_and_the_batch(tokenizer, completions):
    env = ShapingWrapper(
        TextGenerationEnv(tokenizer=tokenizer, prompts=[PROMPT], reward_model=lambda p, c: [0.0] * len(c)),
        CountsTokens(),
    )
    env.reset(seed=0)
    _, reward, _, _, info = env.step(completions[0][0])
    assert reward == 1.0 and info["reward_components"] == {"score": 0.0, "tokens": 1.0}
    shaped = RewardShaping([CountsTokens()]).shape_completions(
        [PROMPT], np.array([completions[0]]), np.array([4]), np.array([True]), np.zeros(1), lambda i, s: ""
    )
    assert shaped.rewards.tolist() == [[1.0, 1.0, 1.0, 1.0]]


NAN = float("nan")


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: KLTerm(NAN), "beta must be a finite number"),
        (lambda: KLTerm(float("inf")), "beta must be a finite number"),
        (lambda: KLTerm(-0.1), "beta must be >= 0"),
        (lambda: KLTerm("0.1"), "beta must be a number or a KL controller"),
        (lambda: KLTerm(True), "beta must be a number"),
        (lambda: FixedKLController(NAN), "beta must be a finite number"),
        (lambda: AdaptiveKLController(initial_beta=NAN), "initial_beta must be a finite number"),
        (lambda: AdaptiveKLController(initial_beta=0.0), "initial_beta must be positive"),
        (lambda: AdaptiveKLController(target=NAN), "target must be a finite number"),
        (lambda: AdaptiveKLController(target=-6.0), "target must be positive"),
        (lambda: AdaptiveKLController(horizon=NAN), "horizon must be a finite number"),
        (lambda: AdaptiveKLController(horizon=0), "horizon must be positive"),
        (lambda: LengthTerm(NAN), "coef must be a finite number"),
        (lambda: LengthTerm(-0.1), "coef must be >= 0"),
        (lambda: LengthTerm(0.1, target_length=True), "target_length"),
        (lambda: MissingEOSTerm(NAN), "penalty must be a finite number"),
        (lambda: MissingEOSTerm(-1.0), "penalty must be >= 0"),
        (lambda: DenseTerm(dense_scorer, coef=NAN), "coef must be a finite number"),
        (lambda: PotentialTerm(potential, gamma=NAN), "gamma must be a finite number"),
        (lambda: ReturnStdScaling(epsilon=NAN), "epsilon must be a finite number"),
        (lambda: ReturnStdScaling(epsilon=0.0), "epsilon must be positive"),
        (lambda: ReturnStdScaling(gamma=NAN), "gamma must be a finite number"),
        (lambda: ClipTransform(), "min_reward, max_reward"),
        (lambda: ClipTransform(NAN, 1.0), "min_reward must be a finite number"),
        (lambda: ClipTransform(-1.0, NAN), "max_reward must be a finite number"),
        (lambda: ClipTransform(2.0, 1.0), "min_reward must not exceed max_reward"),
        (lambda: RewardShaping([object()]), "ShapingTerm or RewardTransform"),
    ],
)
def test_nonsense_settings_are_refused_with_their_name(build, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build()


def shape_one_step(shaping, scores, ref_logprobs=None):
    """``shaping`` over ``len(scores)`` one-token completions that stopped, with these scores."""
    n = len(scores)
    return shaping.shape_completions(
        ["p"] * n,
        np.zeros((n, 1), dtype=np.int64),
        np.ones(n, dtype=np.int64),
        np.ones(n, dtype=bool),
        np.asarray(scores, dtype=np.float64),
        lambda ids, stopped: "",
        policy_logprobs=None if ref_logprobs is None else np.full((n, 1), -1.0),
        ref_logprobs=None if ref_logprobs is None else np.asarray(ref_logprobs, dtype=np.float64)[:, None],
    )


def test_a_nan_kl_never_reaches_the_adaptive_beta():
    controller = AdaptiveKLController(0.1, target=1.0, horizon=10)
    with pytest.raises(ValueError, match="kl must be a finite number"):
        controller.update(NAN, 1)
    with pytest.raises(ValueError, match="n_steps"):
        controller.update(1.0, -1)
    assert controller.value == 0.1
    term = KLTerm(controller)
    with pytest.raises(ValueError, match="non-finite reward .* from the shaping term KLTerm"):
        shape_one_step(RewardShaping([term]), [0.0, 0.0], ref_logprobs=[-2.0, NAN])
    assert controller.value == 0.1 and np.isfinite(controller.value)


class NaNOnEpisodeOne(ShapingTerm):
    name = "broken"

    def __call__(self, step):
        return np.where(step.episodes == 1, np.nan, 0.0), {}


@pytest.mark.parametrize("transform", [ClipTransform(-1.0, 1.0), ReturnStdScaling()], ids=["clip", "scale"])
def test_transforms_refuse_a_nan_reward_naming_where_it_came_from(transform):
    name = type(transform).__name__
    with pytest.raises(ValueError, match=f"non-finite reward \\(nan\\) for episode 1 from the reward that {name}"):
        shape_one_step(RewardShaping([transform]), [0.5, NAN])
    with pytest.raises(ValueError, match="for episode 1 from the shaping term NaNOnEpisodeOne"):
        shape_one_step(RewardShaping([NaNOnEpisodeOne(), transform]), [0.5, 0.5])


def test_a_refused_nan_leaves_the_return_statistics_as_they_were():
    scaling = ReturnStdScaling()
    shaping = RewardShaping([scaling])
    shape_one_step(shaping, [1.0, 3.0])
    before = (scaling.return_count, scaling.return_mean, scaling.return_std)
    assert before == (2, 2.0, pytest.approx(1.0))
    for scores in ([5.0, NAN], [NAN, 5.0], [float("inf"), 5.0]):
        with pytest.raises(ValueError, match="non-finite reward"):
            shape_one_step(shaping, scores)
        assert (scaling.return_count, scaling.return_mean, scaling.return_std) == before
    shaped = shape_one_step(shaping, [2.0, 2.0])
    np.testing.assert_allclose(shaped.rewards, 2.0 / before[2])  # the divisor from before the refusals
    assert scaling.return_count == 4 and np.isfinite(scaling.return_std)


def test_pieces_from_text():
    from text_envs.shaping import parse_shaping

    length, eos, clip, dense = parse_shaping(
        "LengthTerm(coef=0.1, target_length=8); MissingEOSTerm(1.0); ClipTransform(None, 5); "
        "DenseTerm(token_scorer='operator:contains', coef=0.5)"
    )
    assert (length.coef, length.target_length, eos.penalty, clip.max_reward) == (0.1, 8, 1.0, 5.0)
    assert dense.token_scorer("a great film", "great") and dense.coef == 0.5  # imported: operator.contains
    assert parse_shaping("") == []
    for spec, match in [
        ("LengthTerm(coef=__import__('os'))", "literals"),
        ("KLTerm(0.1)", "unknown piece 'KLTerm'"),
        ("LengthTerm(0.1", "not a call"),
        ("LengthTerm(colour=1)", "unexpected keyword"),
        ("DenseTerm(token_scorer='no_such_module:f')", "cannot import"),
        ("LengthTerm(coef=float('nan'))", "literals"),
    ]:
        with pytest.raises(ValueError, match=match):
            parse_shaping(spec)


def ngram_step(texts):
    """Every row of ``texts`` finishing in one step (each row's ids index its text)."""
    rows = np.arange(len(texts))
    return Transitions(
        episodes=rows,
        prompts=[PROMPT] * len(texts),
        completion_ids=[np.array([i]) for i in rows],
        terminated=np.ones(len(texts), dtype=bool),
        truncated=np.zeros(len(texts), dtype=bool),
        decode=lambda ids, stopped: texts[int(ids[0])],
    )


def test_common_ngram_term_charges_the_share_of_recent_completions_using_each_bigram():
    term = parse_shaping("CommonNgramTerm(coef=2.0, n=2, window=3)")[0]
    assert isinstance(term, CommonNgramTerm)
    same, other = " was great. i loved it.", " The music was superb"
    first, _ = term(ngram_step([same, same, other]))
    np.testing.assert_array_equal(first, 0.0)  # an empty window: nothing is common yet
    term.end_batch()
    # `same`'s 4 bigrams are in 2 of the 3 window completions; `other`'s 3 in 1 (case ignored); "fresh" has
    # one word, so no bigram; "was great. fresh" shares one of its 2 bigrams with 2 of 3
    second, _ = term(ngram_step([same, other.lower(), " fresh", " was great. fresh"]))
    np.testing.assert_allclose(second, [-2.0 * 2 / 3, -2.0 / 3, 0.0, -2.0 * (2 / 3 + 0) / 2])
    term.end_batch()  # the window keeps the last 3 of the 7 finished completions
    third, _ = term(ngram_step([same]))
    # only the last one, "was great. fresh", holds one of `same`'s 4 bigrams
    np.testing.assert_allclose(third, [-2.0 * (1 / 3) / 4])


def test_common_ngram_penalty_wrapper_charges_an_episode_that_repeats_the_last_one(tokenizer):
    env = TextGenerationEnv(tokenizer=tokenizer, prompts=[PROMPT], reward_model=lambda p, c: [0.0] * len(c))
    env = CommonNgramPenalty(env, coef=1.0, window=1)
    ids = tokenizer.encode(" great and fun", add_special_tokens=False) + [tokenizer.eos_token_id]
    totals = []
    for _ in range(2):
        env.reset(seed=0)
        for action in ids:
            _, reward, *_, info = env.step(action)
        totals.append((reward, info["reward_components"]["common_ngram_penalty"]))
    assert totals == [(0.0, 0.0), (-1.0, -1.0)]  # every bigram of the second is in the one recent completion


@pytest.mark.parametrize(
    "spec, match",
    [
        ("CommonNgramTerm(coef=-1.0)", "coef must be >= 0"),
        ("CommonNgramTerm(coef=1.0, n=0)", "n must be a positive integer"),
        ("CommonNgramTerm(coef=1.0, window=2.5)", "window must be a positive integer"),
    ],
)
def test_common_ngram_term_refuses_bad_arguments(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_shaping(spec)
