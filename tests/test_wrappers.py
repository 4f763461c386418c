"""Reward-shaping wrappers: each term by hand, the KL reference's cache, composition, and both env checkers;
the action mask moved into observations."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from text_envs import TextGenerationEnv
from text_envs.action_mask_observation import ActionMaskObservation
from text_envs.shaping import (
    AdaptiveKLController,
    ClipReward,
    DenseReward,
    FixedKLController,
    KLPenalty,
    LengthPenalty,
    MissingEOSPenalty,
    PotentialShaping,
    ScaleRewardByReturnStd,
    kl_estimate,
)

PROMPT = "the food was"
TRANSFORM_RECORDS = {"normalised_reward"}  # the one entry of reward_components that is not an additive term


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def great_and_fun(tokenizer):
    ids = tokenizer.encode(" great and fun", add_special_tokens=False)
    assert len(ids) == 3  # " great", " and", " fun": the hand-computed values below count on it
    return ids


def score_two(prompts, completions):
    return [2.0] * len(completions)


def make_env(tokenizer, score=2.0, **kwargs):
    """One prompt and a constant reward model, so that every reward is known in advance."""
    kwargs.setdefault("max_new_tokens", 6)
    return TextGenerationEnv(
        tokenizer=tokenizer, prompts=[PROMPT], reward_model=lambda p, c: [score] * len(c), **kwargs
    )


def play(env, actions, before_step=None):
    """Reset, then step ``actions``; ``before_step(observation, action)`` runs before each step."""
    observation, _ = env.reset(seed=0)
    steps = []
    for action in actions:
        if before_step is not None:
            before_step(observation, action)
        observation, reward, terminated, truncated, info = env.step(action)
        steps.append((reward, terminated, truncated, info))
    assert steps[-1][1] or steps[-1][2], "the actions should finish the episode"
    return steps


@torch.no_grad()
def full_forward_logprob(model, observation, action):
    """log p(action | observation) from one uncached forward over the left-padded observation."""
    ids = torch.as_tensor(observation["input_ids"])[None]
    mask = torch.as_tensor(observation["attention_mask"])[None]
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding: positions count real tokens only
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits[0, -1]
    return float(torch.log_softmax(logits.float(), dim=-1)[action])


def additive_sum(components):
    return sum(value for name, value in components.items() if name not in TRANSFORM_RECORDS)


# ---------------------------------------------------------------- KL penalty


def test_kl_estimates_on_hand_values():
    assert kl_estimate(-1.0, -1.5, "k1") == pytest.approx(0.5)
    assert kl_estimate(-1.5, -1.0, "k1") == pytest.approx(-0.5)  # k1 is negative for some tokens
    # k3, r = log π_ref − log π = -0.5: (e^-0.5 − 1) + 0.5
    assert kl_estimate(-1.0, -1.5, "k3") == pytest.approx(0.10653065971263342)
    assert kl_estimate(-1.5, -1.0, "k3") == pytest.approx(0.14872127070012819)  # e^0.5 − 1 − 0.5
    assert type(kl_estimate(-1.0, -1.5, "k3")) is float
    policy, ref = np.array([-1.0, -2.0, -0.1]), np.array([-1.5, -2.0, -3.0])
    np.testing.assert_allclose(kl_estimate(policy, ref, "k1"), [0.5, 0.0, 2.9])
    np.testing.assert_allclose(kl_estimate(policy, ref, "k3"), np.expm1(ref - policy) - (ref - policy))
    assert (kl_estimate(ref, policy, "k3") >= 0).all()
    with pytest.raises(ValueError, match="estimator"):
        kl_estimate(-1.0, -1.0, "k2")


@pytest.mark.parametrize("estimator", ["k1", "k3"])
def test_kl_is_zero_when_the_policy_is_the_reference(tokenizer, reference_model, great_and_fun, estimator):
    env = KLPenalty(make_env(tokenizer), reference_model=reference_model, estimator=estimator)
    supplied = []

    def report_reference_logprob(observation, action):
        supplied.append(full_forward_logprob(reference_model, observation, action))
        env.set_policy_logprob(supplied[-1])

    steps = play(env, great_and_fun + [tokenizer.eos_token_id], report_reference_logprob)
    for (reward, _, _, info), logprob in zip(steps, supplied, strict=True):
        assert info["policy_logprob"] == logprob
        assert reward == pytest.approx(info["reward_components"]["score"], abs=1e-6)
        assert info["kl"] == pytest.approx(0.0, abs=1e-5)
        assert info["reward_components"]["kl_penalty"] == pytest.approx(0.0, abs=1e-6)
    assert steps[-1][0] == pytest.approx(2.0) and steps[-1][3]["episode_kl"] == pytest.approx(0.0, abs=1e-4)


def test_reference_logprob_matches_an_uncached_forward_at_every_step(tokenizer, reference_model, great_and_fun):
    env = KLPenalty(make_env(tokenizer, max_new_tokens=4), reference_model=reference_model, beta=0.1)
    for prompt, actions in [
        (PROMPT, great_and_fun + [tokenizer.eos_token_id]),  # terminated
        ("we tried this cafe for lunch.", [5, 300, 5, 7]),  # truncated, and the cache starts again on reset
    ]:
        observation, _ = env.reset(options={"prompt": prompt})
        ref_logprobs = []
        for action in actions:
            expected = full_forward_logprob(reference_model, observation, action)
            observation, reward, terminated, truncated, info = env.step(action)
            assert info["ref_logprob"] == pytest.approx(expected, abs=1e-5)
            # missing_policy_logprob="cross_entropy": kl_t := −log π_ref, so r_t = β·log π_ref
            assert not info["policy_logprob_supplied"] and "policy_logprob" not in info
            assert info["kl"] == -info["ref_logprob"]
            assert info["reward_components"]["kl_penalty"] == pytest.approx(0.1 * info["ref_logprob"])
            assert info["kl_beta"] == 0.1 and type(reward) is float
            ref_logprobs.append(info["ref_logprob"])
        assert terminated or truncated
        assert info["episode_kl"] == pytest.approx(-sum(ref_logprobs))
        assert reward == pytest.approx(2.0 + 0.1 * ref_logprobs[-1])


def test_text_observations_give_the_same_reference_logprobs(tokenizer, reference_model, great_and_fun):
    actions = great_and_fun + [tokenizer.eos_token_id]
    tokens = play(KLPenalty(make_env(tokenizer), reference_model=reference_model), actions)
    text = play(KLPenalty(make_env(tokenizer, observation_mode="text"), reference_model=reference_model), actions)
    assert [s[3]["ref_logprob"] for s in text] == pytest.approx([s[3]["ref_logprob"] for s in tokens], abs=1e-6)
    with pytest.raises(ValueError, match="causal"):
        KLPenalty(make_env(tokenizer, architecture="encoder_decoder"), reference_model=reference_model)


def test_missing_policy_logprob_modes(tokenizer, reference_model, great_and_fun):
    great = great_and_fun[0]
    zero = KLPenalty(make_env(tokenizer), reference_model=reference_model, missing_policy_logprob="zero")
    zero.reset(seed=0)
    _, reward, _, _, info = zero.step(great)
    assert reward == 0.0 and info["kl"] == 0.0 and info["reward_components"]["kl_penalty"] == 0.0
    assert not info["policy_logprob_supplied"]

    strict = KLPenalty(make_env(tokenizer), reference_model=reference_model, missing_policy_logprob="error")
    strict.reset(seed=0)
    with pytest.raises(RuntimeError, match="set_policy_logprob"):
        strict.step(great)
    strict.set_policy_logprob(-2.0)
    _, _, _, _, info = strict.step(great)  # the failed step did not advance the env
    assert info["kl"] == pytest.approx(-2.0 - info["ref_logprob"])
    with pytest.raises(RuntimeError, match="set_policy_logprob"):
        strict.step(great)  # the value was consumed by the previous step
    strict.set_policy_logprob(-2.0)
    strict.reset(seed=0)  # reset drops a value no step consumed
    with pytest.raises(RuntimeError, match="set_policy_logprob"):
        strict.step(great)
    with pytest.raises(ValueError, match="finite"):
        strict.set_policy_logprob(float("nan"))
    with pytest.raises(ValueError, match="missing_policy_logprob"):
        KLPenalty(make_env(tokenizer), reference_model=reference_model, missing_policy_logprob="skip")


def test_set_policy_logprob_reaches_the_kl_wrapper_through_outer_wrappers(tokenizer, reference_model, great_and_fun):
    inner = KLPenalty(make_env(tokenizer), reference_model=reference_model, beta=0.5, estimator="k1")
    env = ClipReward(LengthPenalty(inner, coef=0.0), min_reward=-100.0, max_reward=100.0)
    env.reset(seed=0)
    env.get_wrapper_attr("set_policy_logprob")(-1.25)
    _, reward, _, _, info = env.step(great_and_fun[0])
    assert info["policy_logprob"] == -1.25
    assert info["kl"] == pytest.approx(-1.25 - info["ref_logprob"])
    assert reward == pytest.approx(-0.5 * info["kl"])


def test_adaptive_kl_controller_follows_its_formula():
    controller = AdaptiveKLController(initial_beta=0.1, target=6.0, horizon=100)
    controller.update(9.0, n_steps=1)  # KL above target: error 0.5, clipped to 0.2
    assert controller.value == pytest.approx(0.1 * (1 + 0.2 * 1 / 100))
    beta = controller.value
    controller.update(6.6, n_steps=10)  # inside the clip: error 0.1
    assert controller.value == pytest.approx(beta * (1 + 0.1 * 10 / 100))
    beta = controller.value
    controller.update(3.0, n_steps=10)  # KL below target: error -0.5, clipped to -0.2
    assert controller.value == pytest.approx(beta * (1 - 0.2 * 10 / 100)) and controller.value < beta
    fixed = FixedKLController(0.05)
    fixed.update(100.0, n_steps=1)
    assert fixed.value == 0.05
    with pytest.raises(ValueError, match="positive"):
        AdaptiveKLController(target=0.0)


@pytest.mark.parametrize("target, moves", [(1.0, "up"), (1e6, "down")])
def test_kl_penalty_updates_an_adaptive_beta_once_per_episode(tokenizer, reference_model, great_and_fun, target, moves):
    controller = AdaptiveKLController(initial_beta=0.1, target=target, horizon=10)
    env = KLPenalty(make_env(tokenizer), reference_model=reference_model, beta=controller)
    steps = play(env, great_and_fun + [tokenizer.eos_token_id])
    assert [info["kl_beta"] for *_, info in steps] == [0.1] * len(steps)
    episode_kl = steps[-1][3]["episode_kl"]
    error = min(max(episode_kl / target - 1, -0.2), 0.2)
    assert controller.value == pytest.approx(0.1 * (1 + error / 10))
    assert (controller.value > 0.1) if moves == "up" else (controller.value < 0.1)
    beta = controller.value
    assert play(env, [tokenizer.eos_token_id])[0][3]["kl_beta"] == beta  # the next episode uses the new β


# ---------------------------------------------------------------- length, EOS, dense, potential


def test_length_penalty_counts_generated_tokens_over_the_target(tokenizer, great_and_fun):
    actions = great_and_fun + [tokenizer.eos_token_id]  # 4 generated tokens, the EOS included
    steps = play(LengthPenalty(make_env(tokenizer), coef=0.5, target_length=2), actions)
    assert [s[0] for s in steps] == [0.0, 0.0, 0.0, 2.0 - 0.5 * (4 - 2)]
    assert [s[3]["reward_components"]["length_penalty"] for s in steps] == [0.0, 0.0, 0.0, -1.0]
    assert play(LengthPenalty(make_env(tokenizer), coef=0.5, target_length=4), actions)[-1][0] == 2.0
    assert play(LengthPenalty(make_env(tokenizer), coef=0.25), actions)[-1][0] == 2.0 - 0.25 * 4


def test_missing_eos_penalty_only_for_truncated_completions(tokenizer, great_and_fun):
    env = MissingEOSPenalty(make_env(tokenizer, max_new_tokens=3), penalty=1.5)
    truncated = play(env, great_and_fun)
    assert truncated[-1][2] and truncated[-1][0] == 2.0 - 1.5
    assert [s[3]["reward_components"]["missing_eos_penalty"] for s in truncated] == [0.0, 0.0, -1.5]
    ended = play(env, great_and_fun[:2] + [tokenizer.eos_token_id])
    assert ended[-1][1] and ended[-1][0] == 2.0
    assert ended[-1][3]["reward_components"] == {"score": 2.0, "missing_eos_penalty": 0.0}


def test_dense_reward_scores_the_completion_so_far(tokenizer, great_and_fun):
    def characters(prompt, completion):
        assert prompt == PROMPT
        return float(len(completion))

    actions = great_and_fun + [tokenizer.eos_token_id]  # " great", " great and", " great and fun", then EOS
    steps = play(DenseReward(make_env(tokenizer), characters, coef=0.5), actions)
    assert [s[3]["token_score"] for s in steps] == [6.0, 10.0, 14.0, 14.0]  # the EOS adds no text
    assert [s[0] for s in steps] == [3.0, 5.0, 7.0, 2.0 + 7.0]

    steps = play(DenseReward(make_env(tokenizer), characters, coef=0.5, difference=True), actions)
    assert [s[3]["reward_components"]["dense"] for s in steps] == [3.0, 2.0, 2.0, 0.0]
    assert sum(s[0] for s in steps) == 2.0 + 0.5 * 14  # telescopes to coef·(v_T − v(""))


def test_dense_reward_decodes_the_whole_sequence(tokenizer):
    ids = tokenizer.encode(" café ☕", add_special_tokens=False)
    seen = []
    env = DenseReward(make_env(tokenizer, max_new_tokens=len(ids)), lambda p, c: seen.append(c) or 0.0)
    play(env, ids)
    assert seen == [tokenizer.decode(ids[: k + 1]) for k in range(len(ids))] and seen[-1] == " café ☕"


def test_potential_shaping_by_hand_and_telescoping(tokenizer, great_and_fun):
    def potential(prompt, completion):
        return float(len(completion)) + 1.0  # Φ(s_0) = 1

    actions = great_and_fun + [tokenizer.eos_token_id]
    steps = play(PotentialShaping(make_env(tokenizer), potential, gamma=0.5), actions)
    # Φ: 1 (prompt), 7 (" great"), 11 (" great and"), 15 (" great and fun"), 0 at the end
    expected = [0.5 * 7 - 1, 0.5 * 11 - 7, 0.5 * 15 - 11, 0 - 15]
    assert [s[3]["reward_components"]["potential"] for s in steps] == pytest.approx(expected)
    assert steps[-1][0] == pytest.approx(2.0 - 15)

    for actions in (great_and_fun + [tokenizer.eos_token_id], great_and_fun[:1] * 6):  # ended, truncated
        steps = play(PotentialShaping(make_env(tokenizer), potential), actions)
        assert sum(s[3]["reward_components"]["potential"] for s in steps) == pytest.approx(-1.0)  # −Φ(s_0)


# ---------------------------------------------------------------- normalise, clip


def test_normalize_reward_divides_by_the_std_of_episode_returns(tokenizer, great_and_fun):
    scores = iter([1.0, 5.0, 6.0, 6.0])
    env = TextGenerationEnv(
        tokenizer=tokenizer, prompts=[PROMPT], max_new_tokens=2, reward_model=lambda p, c: [next(scores)]
    )
    env = ScaleRewardByReturnStd(env)
    two_tokens = great_and_fun[:2]
    assert [s[0] for s in play(env, two_tokens)] == [0.0, 1.0]  # fewer than 2 returns seen: divisor 1
    assert [s[0] for s in play(env, two_tokens)] == [0.0, 5.0]
    assert env.return_mean == 3.0  # returns 1 and 5: variance 4
    steps = play(env, two_tokens)
    assert steps[-1][0] == pytest.approx(6.0 / 2.0)
    info = steps[-1][3]
    assert info["reward_std"] == pytest.approx(2.0) and info["reward_components"]["normalised_reward"] == steps[-1][0]
    assert info["reward_components"]["score"] == 6.0
    env.update_statistics = False
    play(env, two_tokens)
    assert env.return_count == 3


def test_clip_reward_records_how_much_it_clipped(tokenizer):
    for score, reward, clipped_by in [(2.0, 1.0, -1.0), (-3.0, -1.0, 2.0), (0.5, 0.5, 0.0)]:
        env = ClipReward(make_env(tokenizer, score=score), min_reward=-1.0, max_reward=1.0)
        (final_reward, _, _, info), *_ = play(env, [tokenizer.eos_token_id])
        assert final_reward == reward and type(final_reward) is float
        assert info["reward_components"] == {"score": score, "clipped_by": clipped_by}
    with pytest.raises(ValueError, match="min_reward must not exceed max_reward"):
        ClipReward(make_env(tokenizer), min_reward=1.0, max_reward=-1.0)


NAN = float("nan")


@pytest.mark.parametrize(
    "wrap, match",
    [
        (lambda env: KLPenalty(env, beta=NAN), "beta must be a finite number"),
        (lambda env: KLPenalty(env, beta=-0.1), "beta must be >= 0"),
        (lambda env: LengthPenalty(env, coef=NAN), "coef must be a finite number"),
        (lambda env: LengthPenalty(env, coef=-1.0), "coef must be >= 0"),
        (lambda env: MissingEOSPenalty(env, penalty=NAN), "penalty must be a finite number"),
        (lambda env: MissingEOSPenalty(env, penalty=-1.0), "penalty must be >= 0"),
        (lambda env: DenseReward(env, lambda p, c: 0.0, coef=NAN), "coef must be a finite number"),
        (lambda env: PotentialShaping(env, lambda p, c: 0.0, gamma=NAN), "gamma must be a finite number"),
        (lambda env: ScaleRewardByReturnStd(env, epsilon=NAN), "epsilon must be a finite number"),
        (lambda env: ScaleRewardByReturnStd(env, epsilon=-1.0), "epsilon must be positive"),
        (lambda env: ClipReward(env, min_reward=NAN), "min_reward must be a finite number"),
        (lambda env: ClipReward(env, max_reward=NAN), "max_reward must be a finite number"),
    ],
)
def test_wrappers_refuse_nan_and_negative_settings_naming_the_argument(tokenizer, wrap, match):
    with pytest.raises((ValueError, TypeError), match=match):
        wrap(make_env(tokenizer))  # KLPenalty refuses β before it would load its reference model


class NaNReward(gym.RewardWrapper):
    """Turns the final reward into NaN while ``active``: what a broken wrapper of one's own could hand on."""

    active = True

    def reward(self, reward):
        return NAN if self.active and reward != 0.0 else reward


@pytest.mark.parametrize(
    "wrap, name",
    [
        (lambda env: ClipReward(env, min_reward=-1.0, max_reward=1.0), "ClipTransform"),
        (ScaleRewardByReturnStd, "ReturnStdScaling"),
    ],
)
def test_transform_wrappers_refuse_a_nan_reward_naming_its_source(tokenizer, wrap, name):
    env = wrap(NaNReward(make_env(tokenizer)))
    with pytest.raises(ValueError, match=f"non-finite reward \\(nan\\) for episode 0 from the reward that {name}"):
        play(env, [tokenizer.eos_token_id])


def test_a_nan_reward_leaves_scale_reward_by_return_std_usable(tokenizer):
    scores = iter([1.0, 3.0, 7.0, 2.0])
    source = NaNReward(
        TextGenerationEnv(
            tokenizer=tokenizer, prompts=[PROMPT], max_new_tokens=2, reward_model=lambda p, c: [next(scores)]
        )
    )
    env = ScaleRewardByReturnStd(source)
    source.active = False
    play(env, [tokenizer.eos_token_id])
    play(env, [tokenizer.eos_token_id])
    before = (env.return_count, env.return_mean, env.return_std)
    assert before == (2, 2.0, pytest.approx(1.0))
    source.active = True
    with pytest.raises(ValueError, match="non-finite reward"):
        play(env, [tokenizer.eos_token_id])
    assert (env.return_count, env.return_mean, env.return_std) == before
    source.active = False
    (reward, *_), *_ = play(env, [tokenizer.eos_token_id])
    assert reward == pytest.approx(2.0 / before[2]) and env.return_count == 3


# ---------------------------------------------------------------- composition and env checkers


def shaping_stack(env, reference_model):
    env = KLPenalty(env, reference_model=reference_model, beta=AdaptiveKLController(0.05, target=2.0, horizon=10))
    env = LengthPenalty(env, coef=0.1, target_length=2)
    env = MissingEOSPenalty(env, penalty=1.0)
    env = DenseReward(env, lambda p, c: c.count("great") * 0.3, difference=True)
    env = PotentialShaping(env, lambda p, c: len(c) / 10, gamma=0.9)
    return ClipReward(env, min_reward=-5.0, max_reward=5.0)


def test_a_stack_returns_the_sum_of_its_reward_components(tokenizer, reference_model, great_and_fun):
    env = ScaleRewardByReturnStd(shaping_stack(make_env(tokenizer, max_new_tokens=4), reference_model))
    terms = {"score", "kl_penalty", "length_penalty", "missing_eos_penalty", "dense", "potential", "clipped_by"}
    set_policy_logprob = env.get_wrapper_attr("set_policy_logprob")
    for actions in [great_and_fun + [tokenizer.eos_token_id], great_and_fun + great_and_fun[:1]] * 2:
        env.reset(seed=0)  # ended, truncated, twice
        for t, action in enumerate(actions):
            if t % 2 == 0:  # the agent reports its log-prob on every other step: both KL paths enter the sum
                set_policy_logprob(-1.0)
            _, reward, terminated, truncated, info = env.step(action)
            components = info["reward_components"]
            assert set(components) == terms | {"normalised_reward"}
            assert all(type(value) is float for value in components.values()) and type(reward) is float
            assert reward == components["normalised_reward"]
            assert additive_sum(components) == pytest.approx(reward * info["reward_std"])
        assert (terminated or truncated) and components["score"] == 2.0
    assert env.return_count == 4 and env.return_std != 1.0


def test_without_normalisation_the_reward_is_the_sum_of_its_components(tokenizer, reference_model, great_and_fun):
    env = shaping_stack(make_env(tokenizer, max_new_tokens=4), reference_model)
    steps = play(env, great_and_fun + great_and_fun[:1])  # truncated: the missing-EOS penalty applies too
    for reward, _, _, info in steps:
        assert reward == pytest.approx(sum(info["reward_components"].values()))


class ReportsPolicyLogprob(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Stands in for an agent that reports log π(a_t|s_t) (a constant here) before each step."""

    def __init__(self, env):
        gym.utils.RecordConstructorArgs.__init__(self)  # so that the checker can rebuild the stack from its spec
        gym.Wrapper.__init__(self, env)

    def step(self, action):
        self.env.get_wrapper_attr("set_policy_logprob")(-3.0)
        return self.env.step(action)


@pytest.mark.parametrize(
    "wrap",
    [
        pytest.param(lambda env, model: KLPenalty(env, reference_model=model), id="KLPenalty"),
        pytest.param(
            lambda env, model: ReportsPolicyLogprob(KLPenalty(env, reference_model=model)), id="KLPenalty+logprob"
        ),
        pytest.param(lambda env, model: LengthPenalty(env, coef=0.1), id="LengthPenalty"),
        pytest.param(lambda env, model: MissingEOSPenalty(env, penalty=1.0), id="MissingEOSPenalty"),
        pytest.param(lambda env, model: DenseReward(env, lambda p, c: len(c) / 10), id="DenseReward"),
        pytest.param(lambda env, model: PotentialShaping(env, lambda p, c: len(c) / 10), id="PotentialShaping"),
        pytest.param(lambda env, model: ScaleRewardByReturnStd(env), id="ScaleRewardByReturnStd"),
        pytest.param(lambda env, model: ClipReward(env, -1.0, 1.0), id="ClipReward"),
        pytest.param(
            lambda env, model: ReportsPolicyLogprob(ScaleRewardByReturnStd(shaping_stack(env, model))), id="stack"
        ),
    ],
)
def test_env_checkers_pass_on_wrapped_envs(tokenizer, reference_model, wrap):
    env = gym.make(
        "text_envs/TextGeneration-v0", tokenizer=tokenizer, prompts=[PROMPT], reward_model=score_two, max_new_tokens=8
    )
    wrapped = wrap(env, reference_model)
    with warnings.catch_warnings():
        # Gymnasium's checker recommends checking env.unwrapped; the wrappers are what is under test here.
        warnings.filterwarnings("ignore", message=".*is different from the unwrapped version")
        gymnasium_check_env(wrapped)
    sb3_check_env(wrapped)


def test_sb3_checker_passes_without_policy_logprobs(tokenizer, reference_model):
    env = gym.make(
        "text_envs/TextGeneration-v0", tokenizer=tokenizer, prompts=[PROMPT], reward_model=score_two, max_new_tokens=8
    )
    sb3_check_env(KLPenalty(env, reference_model=reference_model))  # stock SB3 agents never report log-probs


def test_action_mask_observation_carries_the_info_mask():
    env = ActionMaskObservation(gym.make("text_envs/TicTacToe-v0", opponent="random"))
    twin = gym.make("text_envs/TicTacToe-v0", opponent="random")  # the same games, unwrapped
    rng = np.random.default_rng(0)
    observation, info = env.reset(seed=0)
    board, _ = twin.reset(seed=0)
    for _ in range(20):
        assert observation in env.observation_space
        np.testing.assert_array_equal(observation["action_mask"], info["action_mask"].astype(np.float32))
        np.testing.assert_array_equal(observation["observations"], board)
        action = int(rng.choice(np.flatnonzero(info["action_mask"])))
        observation, _, terminated, truncated, info = env.step(action)
        board, *_ = twin.step(action)
        if terminated or truncated:
            assert not observation["action_mask"].any()  # no legal move once the game is over
            observation, info = env.reset()
            board, _ = twin.reset()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is different from the unwrapped version")
        gymnasium_check_env(env)


def test_action_mask_observation_refuses_envs_without_masks(tokenizer):
    with pytest.raises(ValueError, match="Discrete"):
        ActionMaskObservation(gym.make("Pendulum-v1"))
    env = ActionMaskObservation(TextGenerationEnv(tokenizer=tokenizer, prompts=[PROMPT], reward_model=score_two))
    with pytest.raises(KeyError, match="action_mask"):
        env.reset(seed=0)
