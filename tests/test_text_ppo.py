"""TextPPO: KL bookkeeping, GAE, learning a simple reward, LoRA, and checkpoint resume."""

import numpy as np
import pytest
import torch

from text_envs import TextGenerationVectorEnv
from text_envs.rewards.lexicon import lexicon_sentiment_reward
from text_envs.shaping import LengthTerm
from text_envs_agents.llm.rollout import sample_episodes, sequence_logprobs
from text_envs_agents.text_ppo.trainer import TextPPO, TextPPOConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_env(num_envs=8, max_new_tokens=10, **kwargs):
    return TextGenerationVectorEnv(
        num_envs, reward_model=lexicon_sentiment_reward, max_new_tokens=max_new_tokens, **kwargs
    )


def test_kl_is_zero_while_policy_and_reference_are_equal():
    ppo = TextPPO(make_env(), config=TextPPOConfig(ppo_epochs=1))
    metrics, batch = ppo.evaluate(make_env(), seed=3)
    assert metrics["kl"] == 0.0
    assert ppo.update(batch)["kl"] == 0.0  # the first update's rewards are computed before any step
    assert ppo.evaluate(make_env(), seed=3)[0]["kl"] != 0.0


def test_rollout_completions_match_their_tokens_and_mask():
    env = make_env(stop_tokens=["."])
    batch = sample_episodes(TextPPO(env).policy.model, env, 0, torch.Generator().manual_seed(0))
    tokenizer = env.tokenizer
    for ids, mask, text in zip(batch.completion_ids, batch.completion_mask, batch.completions, strict=True):
        generated = ids[mask.bool()].tolist()
        assert mask.tolist() == [1] * len(generated) + [0] * (len(mask) - len(generated))  # a prefix
        stopped = generated[-1] in env.task.stop_token_ids
        assert text == tokenizer.decode(generated[:-1] if stopped else generated, skip_special_tokens=True)
    np.testing.assert_allclose(batch.scores.numpy(), lexicon_sentiment_reward(batch.prompts, batch.completions))


def test_generalised_advantage_estimation_by_hand():
    ppo = TextPPO(make_env(), config=TextPPOConfig(gamma=0.9, lam=0.5))
    rewards = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    values = torch.tensor([[0.5, 0.2, 0.4, 9.9]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])  # the last position is padding
    delta2 = 1.0 - 0.4
    delta1 = 0.0 + 0.9 * 0.4 - 0.2
    delta0 = 0.0 + 0.9 * 0.2 - 0.5
    a2 = delta2
    a1 = delta1 + 0.45 * a2
    a0 = delta0 + 0.45 * a1
    expected = torch.tensor([[a0, a1, a2, 0.0]])
    torch.testing.assert_close(ppo.advantages(rewards, values, mask), expected)


def test_a_short_run_raises_the_reward():
    env, held_out = make_env(16, 12), make_env(32, 12)
    ppo = TextPPO(env, config=TextPPOConfig(learning_rate=3e-4, kl_coef=0.02, seed=0))
    before = ppo.evaluate(held_out, seed=7)[0]["score_mean"]
    assert ppo.learn(iterations=10) is ppo
    after = ppo.evaluate(held_out, seed=7)[0]["score_mean"]
    assert after > before + 0.2, (before, after)


def test_checkpoint_resume_gives_the_same_next_update(tmp_path):
    config = TextPPOConfig(seed=1, ppo_epochs=2, minibatch_size=4)
    ppo = TextPPO(make_env(), config=config)
    ppo.learn(iterations=1)
    ppo.save(tmp_path / "checkpoint")
    expected_metrics = ppo.learn(iterations=1).history[-1]
    expected = [p.detach().clone() for p in ppo.policy.parameters()]

    resumed = TextPPO.load(tmp_path / "checkpoint", env=make_env())
    assert resumed.num_timesteps == ppo.history[0]["num_timesteps"] and len(resumed.history) == 1
    metrics = resumed.learn(iterations=1).history[-1]
    for a, b in zip(expected, resumed.policy.parameters(), strict=True):
        assert torch.equal(a, b)
    assert metrics["score"] == expected_metrics["score"] and metrics["kl"] == expected_metrics["kl"]
    assert resumed.num_timesteps == ppo.num_timesteps
    with pytest.raises(FileNotFoundError):
        TextPPO.load(tmp_path / "nothing")
    with pytest.warns(UserWarning, match="classmethod"):  # the old instance-method call still works, with a warning
        again = resumed.load(tmp_path / "checkpoint", env=make_env())
    assert again is not resumed and again.iteration == 1


def test_lora_trains_adapters_only_and_uses_the_base_as_reference():
    pytest.importorskip("peft")
    config = TextPPOConfig(
        lora=dict(r=4, lora_alpha=8, target_modules=["c_attn"], lora_dropout=0.0), ppo_epochs=1, learning_rate=1e-2
    )
    ppo = TextPPO(make_env(), config=config)
    assert ppo.reference is None  # the adapter-disabled base is the reference: no second copy
    trainable = {n for n, p in ppo.policy.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or n.startswith("value_head") for n in trainable)
    frozen = {n: p.detach().clone() for n, p in ppo.policy.named_parameters() if not p.requires_grad}
    metrics, batch = ppo.evaluate(make_env(), seed=0)
    assert metrics["kl"] == 0.0  # LoRA's B matrices start at zero
    ppo.learn(iterations=2)
    assert all(torch.equal(p, frozen[n]) for n, p in ppo.policy.named_parameters() if n in frozen)
    with ppo.policy.model.disable_adapter():
        base = sequence_logprobs(ppo.policy.model, batch)
    assert not torch.allclose(sequence_logprobs(ppo.policy.model, batch), base)


def test_shaped_rewards_by_hand():
    ppo = TextPPO(make_env(), config=TextPPOConfig(kl_coef=0.5, kl_estimator="k1"), shaping=[LengthTerm(0.1)])
    batch = sample_episodes(ppo.policy.model, ppo.env, 0, torch.Generator().manual_seed(0)).select(torch.arange(2))
    batch.completion_mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    batch.completion_lengths = [3, 2]
    batch.completion_ids = batch.completion_ids[:, :4]
    batch.scores = torch.tensor([2.0, -1.0])
    logprobs = torch.tensor([[-1.0, -2.0, -0.5, -9.0], [-0.1, -0.2, -9.0, -9.0]])
    ref_logprobs = torch.tensor([[-1.5, -1.0, -0.5, 0.0], [-0.3, -0.2, 0.0, 0.0]])
    rewards, kl = ppo.shaped_rewards(batch, logprobs, ref_logprobs)
    torch.testing.assert_close(kl, torch.tensor([[0.5, -1.0, 0.0, 0.0], [0.2, 0.0, 0.0, 0.0]]))
    expected = -0.5 * kl
    expected[0, 2] += 2.0 - 0.1 * 3
    expected[1, 1] += -1.0 - 0.1 * 2
    torch.testing.assert_close(rewards, expected)
