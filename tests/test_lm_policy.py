"""LMActorCriticPolicy and IncrementalLM: exact log-probs, the KV cache across restarts, and stock SB3 PPO/A2C."""

import sys

import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.common.vec_env import DummyVecEnv
from transformers import DynamicCache

from text_envs import TextGenerationEnv, TextGenerationVectorEnv
from text_envs.lm import load_causal_lm
from text_envs.shaping import KLPenalty
from text_envs_agents import IncrementalLM, LMActorCriticPolicy, send_logprobs_to
from text_envs_agents.llm.gpt2_decoding import GPT2Decoder
from text_envs_agents.llm.llama_decoding import LlamaDecoder

# Stop tokens and a small context window make episodes end at different steps in different envs:
# by a stop token, after max_new_tokens, or when the context is full.
STAGGERED = dict(max_new_tokens=9, max_prompt_tokens=10, context_length=16, stop_tokens=[".", ","])


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def zero_reward(prompts, completions):
    return [0.0] * len(completions)


def very_reward(prompts, completions):
    return [float(completion.split().count("very")) for completion in completions]


def make_policy(env, **kwargs):
    return LMActorCriticPolicy(env.single_observation_space, env.single_action_space, lambda _: 1e-3, **kwargs)


@torch.no_grad()
def reference(model, input_ids, attention_mask):
    """The LM's own full forward: next-token logits and final hidden state at the last position."""
    positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    output = model(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, output_hidden_states=True
    )
    return output.logits[:, -1], output.hidden_states[-1][:, -1]


def tensors(observations):
    return {key: torch.as_tensor(value) for key, value in observations.items()}


def test_log_probs_are_the_lm_log_softmax_of_the_chosen_tokens():
    env = TextGenerationVectorEnv(6, reward_model=zero_reward, **STAGGERED)
    policy = make_policy(env)
    observations, _ = env.reset(seed=0)
    for _ in range(5):
        obs = tensors(observations)
        with torch.no_grad():
            actions, values, log_probs = policy(obs)
        logits, _ = reference(policy.lm.model, obs["input_ids"], obs["attention_mask"])
        expected = torch.log_softmax(logits, dim=-1).gather(1, actions[:, None]).squeeze(1)
        torch.testing.assert_close(log_probs, expected, atol=1e-5, rtol=0)
        torch.testing.assert_close(policy.action_log_prob(obs, actions), expected, atol=1e-5, rtol=0)
        # SB3's rollout buffer hands observations back as float32; training reads them with gradients.
        buffered = {key: value.float() for key, value in obs.items()}
        train_values, train_log_probs, entropy = policy.evaluate_actions(buffered, actions.float())
        torch.testing.assert_close(train_log_probs.detach(), expected, atol=1e-5, rtol=0)
        torch.testing.assert_close(train_values.detach(), values, atol=1e-5, rtol=0)
        assert train_log_probs.requires_grad and entropy.shape == (6,)
        observations, *_ = env.step(actions.numpy())


def staggered_rollout(policy, autoreset_mode, steps=36, seed=3):
    env = TextGenerationVectorEnv(5, reward_model=zero_reward, autoreset_mode=autoreset_mode, **STAGGERED)
    observations, _ = env.reset(seed=seed)
    policy.lm.reset_cache()
    torch.manual_seed(seed)
    actions, values, log_probs, ends = [], [], [], []
    for _ in range(steps):
        with torch.no_grad():
            action, value, log_prob = policy(obs_as_tensor(observations, "cpu"))
        observations, _, terminated, truncated, _ = env.step(action.numpy())
        actions.append(action.numpy())
        values.append(value.numpy())
        log_probs.append(log_prob.numpy())
        ends.append(terminated | truncated)
    return np.array(actions), np.array(values), np.array(log_probs), np.array(ends)


@pytest.mark.parametrize("architecture", ["gpt2", "llama"])
@pytest.mark.parametrize("autoreset_mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_cached_and_uncached_rollouts_take_the_same_actions(autoreset_mode, architecture, request, tmp_path):
    env = TextGenerationVectorEnv(5, reward_model=zero_reward, **STAGGERED)
    if architecture == "llama":
        request.getfixturevalue("tiny_llama").save_pretrained(tmp_path)
        policy = make_policy(env, model_name_or_path=tmp_path)
    else:
        policy = make_policy(env)
    with torch.no_grad():  # a value head that reads the hidden state, so values are compared too
        policy.value_net.weight.normal_()
    cached = staggered_rollout(policy, autoreset_mode)
    continued, recomputed = policy.lm.continued_rows, policy.lm.recomputed_rows
    cache_type = type(policy.lm._states[5].kv_cache)
    policy.lm.use_cache = False
    uncached = staggered_rollout(policy, autoreset_mode)

    ends = cached[3]
    assert (ends.sum(axis=0) >= 2).all(), "every env should finish a few episodes"
    assert any(0 < row.sum() < len(row) for row in ends), "restarts should be staggered"
    assert continued > 0 and recomputed > 5, "both cache paths should have been taken"
    np.testing.assert_array_equal(cached[0], uncached[0])
    np.testing.assert_allclose(cached[1], uncached[1], atol=1e-4)
    np.testing.assert_allclose(cached[2], uncached[2], atol=1e-4)
    np.testing.assert_array_equal(cached[3], uncached[3])
    assert cache_type is (GPT2Decoder if architecture == "gpt2" else LlamaDecoder)


@pytest.mark.parametrize(
    "architecture, merge_restarts, cache_type",
    [
        ("gpt2", False, GPT2Decoder),
        ("gpt2", True, DynamicCache),
        ("llama", False, LlamaDecoder),
        ("llama", True, DynamicCache),
    ],
)
@pytest.mark.parametrize("autoreset_mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_incremental_lm_matches_a_full_forward_for_every_row_at_every_step(
    autoreset_mode, architecture, merge_restarts, cache_type, request
):
    model = load_causal_lm() if architecture == "gpt2" else request.getfixturevalue("tiny_llama")
    lm = IncrementalLM(model, merge_restarts=merge_restarts)
    env = TextGenerationVectorEnv(6, reward_model=zero_reward, autoreset_mode=autoreset_mode, **STAGGERED)
    observations, _ = env.reset(seed=1)
    generator = torch.Generator().manual_seed(1)
    previous, rows_checked_after_a_restart = None, 0
    for _ in range(40):
        obs = tensors(observations)
        with torch.no_grad():
            output = lm(obs["input_ids"], obs["attention_mask"])
        logits, hidden = reference(model, obs["input_ids"], obs["attention_mask"])
        torch.testing.assert_close(output.logits, logits, atol=1e-4, rtol=0)
        torch.testing.assert_close(output.hidden, hidden, atol=1e-4, rtol=0)
        if previous is not None:
            restarted = obs["attention_mask"].sum(1) <= previous["attention_mask"].sum(1)
            if 0 < restarted.sum() < len(restarted):
                rows_checked_after_a_restart += int(restarted.sum())
        previous = obs
        actions = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator).squeeze(1)
        observations, *_ = env.step(actions.numpy())
    assert rows_checked_after_a_restart >= 5
    assert lm.continued_rows > 3 * lm.recomputed_rows
    assert isinstance(lm._states[6].kv_cache, cache_type)


def test_incremental_lm_recomputes_what_it_cannot_reuse():
    model = load_causal_lm()
    lm = IncrementalLM(model)
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(2, 900, (3, 8), generator=generator)
    attention_mask = torch.tensor([[0, 0, 0, 1, 1, 1, 1, 1], [0] * 5 + [1] * 3, [1] * 8])

    def call_and_check(ids, mask):
        with torch.no_grad():
            output = lm(ids, mask)
        logits, hidden = reference(model, ids, mask)
        torch.testing.assert_close(output.logits, logits, atol=1e-4, rtol=0)
        torch.testing.assert_close(output.hidden, hidden, atol=1e-4, rtol=0)
        return output

    def advance(ids, mask, token):
        new_ids = torch.cat([ids[:, 1:], torch.full((len(ids), 1), token)], dim=1)
        return new_ids, torch.cat([mask[:, 1:], torch.ones(len(mask), 1, dtype=mask.dtype)], dim=1)

    call_and_check(input_ids, attention_mask)
    assert (lm.continued_rows, lm.recomputed_rows) == (0, 3)
    # Row 2 is a full context: sliding it drops a real token, which shifts every position, so it is recomputed.
    input_ids, attention_mask = advance(input_ids, attention_mask, 17)
    call_and_check(input_ids, attention_mask)
    assert (lm.continued_rows, lm.recomputed_rows) == (2, 4)
    # The same contexts again: the last outputs, no LM call.
    call_and_check(input_ids, attention_mask)
    assert lm.repeated_calls == 1
    # Another batch size in between (SB3's value of one truncated episode) keeps the batch's cache.
    call_and_check(input_ids[:1], attention_mask[:1])
    input_ids, attention_mask = advance(input_ids, attention_mask, 23)
    call_and_check(input_ids, attention_mask)
    assert lm.continued_rows == 4
    # New weights (an optimizer step) make the cache stale: the next call is a full forward.
    with torch.no_grad():
        model.transformer.h[0].mlp.c_fc.weight.mul_(1.5)
    input_ids, attention_mask = advance(input_ids, attention_mask, 29)
    call_and_check(input_ids, attention_mask)
    assert lm.continued_rows == 4
    # With gradients, or use_cache=False, a plain full forward that leaves the cache alone.
    output = lm(input_ids, attention_mask)
    assert output.logits.requires_grad
    with torch.no_grad():
        plain = lm(input_ids, attention_mask, use_cache=False)
    torch.testing.assert_close(plain.logits, output.logits.detach())


def mean_first_episode_reward(policy, seed, num_envs=64, **env_kwargs):
    """Each of ``num_envs`` envs samples one episode; the mean of their rewards (same seeds, same prompts)."""
    env = TextGenerationVectorEnv(num_envs, **env_kwargs)
    observations, _ = env.reset(seed=seed)
    torch.manual_seed(seed)
    finished, rewards = np.zeros(num_envs, dtype=bool), np.zeros(num_envs)
    while not finished.all():
        with torch.no_grad():
            actions, _, _ = policy(obs_as_tensor(observations, "cpu"))
        observations, reward, terminated, truncated, _ = env.step(actions.numpy())
        ended = (terminated | truncated) & ~finished
        rewards[ended] = reward[ended]
        finished |= ended
    return rewards.mean()


def test_stock_ppo_raises_a_simple_reward():
    env_kwargs = dict(reward_model=very_reward, max_new_tokens=6, max_prompt_tokens=12)
    vec_env = make_vec_env(TextGenerationEnv, n_envs=8, seed=0, env_kwargs=env_kwargs)
    model = PPO(LMActorCriticPolicy, vec_env, n_steps=32, batch_size=64, n_epochs=2, learning_rate=5e-4, seed=0)
    before = mean_first_episode_reward(model.policy, seed=0, **env_kwargs)
    model.learn(total_timesteps=1024)
    after = mean_first_episode_reward(model.policy, seed=0, **env_kwargs)
    assert after > before + 0.3 and after > 3 * before, (before, after)


def test_stock_a2c_runs_a_few_hundred_steps():
    env_kwargs = dict(reward_model=very_reward, max_new_tokens=6, max_prompt_tokens=12)
    vec_env = make_vec_env(TextGenerationEnv, n_envs=4, seed=0, env_kwargs=env_kwargs)
    model = A2C(LMActorCriticPolicy, vec_env, n_steps=8, learning_rate=1e-4, seed=0)
    start = [p.detach().clone() for p in model.policy.lm.parameters()]
    model.learn(total_timesteps=320)
    assert model.num_timesteps >= 320
    assert any(not torch.equal(a, b) for a, b in zip(start, model.policy.lm.parameters(), strict=True))
    assert model.policy.value_net.weight.abs().sum() > 0


def test_save_and_load_round_trip_gives_the_same_actions(tmp_path):
    env_kwargs = dict(reward_model=very_reward, max_new_tokens=6, max_prompt_tokens=12)
    vec_env = make_vec_env(TextGenerationEnv, n_envs=4, seed=0, env_kwargs=env_kwargs)
    model = PPO(
        LMActorCriticPolicy, vec_env, n_steps=16, batch_size=32, n_epochs=1, policy_kwargs=dict(use_cache=False)
    )
    model.learn(total_timesteps=64)
    model.save(tmp_path / "ppo")
    loaded = PPO.load(tmp_path / "ppo")
    assert isinstance(loaded.policy, LMActorCriticPolicy) and loaded.policy.use_cache is False
    loaded_state = loaded.policy.state_dict()
    for key, value in model.policy.state_dict().items():
        torch.testing.assert_close(loaded_state[key], value, rtol=0, atol=0)

    observations, _ = TextGenerationVectorEnv(8, **env_kwargs).reset(seed=5)
    greedy, _ = model.predict(observations, deterministic=True)
    np.testing.assert_array_equal(loaded.predict(observations, deterministic=True)[0], greedy)
    torch.manual_seed(5)
    sampled, _ = model.predict(observations)
    loaded.policy.lm.use_cache = True  # the cache gives the same samples too
    torch.manual_seed(5)
    np.testing.assert_array_equal(loaded.predict(observations)[0], sampled)


def test_logprob_callback_feeds_the_kl_penalty_before_each_step():
    def make_env():
        return KLPenalty(TextGenerationEnv(reward_model=zero_reward, max_new_tokens=4), missing_policy_logprob="error")

    vec_env = DummyVecEnv([make_env] * 3)
    policy = make_policy(TextGenerationVectorEnv(3, reward_model=zero_reward, max_new_tokens=4))
    policy.logprob_callback = send_logprobs_to(vec_env)
    observations = vec_env.reset()
    for _ in range(6):  # crosses episode ends: SB3's VecEnv resets in the same step
        with torch.no_grad():
            actions, _, log_probs = policy(obs_as_tensor(observations, "cpu"))
        observations, _, _, infos = vec_env.step(actions.numpy())
        assert all(info["policy_logprob_supplied"] for info in infos)
        np.testing.assert_allclose([info["policy_logprob"] for info in infos], log_probs.numpy(), atol=1e-6)


@pytest.mark.filterwarnings("ignore:fan_in_fan_out:UserWarning", "ignore::FutureWarning")
def test_lora_trains_only_the_adapters_and_the_value_head():
    pytest.importorskip("peft")
    env = TextGenerationVectorEnv(4, reward_model=zero_reward, **STAGGERED)
    policy = make_policy(env, lora={"r": 4, "lora_alpha": 8})
    trainable = {id(p) for group in policy.optimizer.param_groups for p in group["params"]}
    names = [name for name, p in policy.named_parameters() if id(p) in trainable]
    assert names and all("lora_" in name or name.startswith("value_net.") for name in names)
    actions, _, _ = staggered_rollout(policy, AutoresetMode.SAME_STEP, steps=12)[:3]
    policy.lm.use_cache = False
    np.testing.assert_array_equal(staggered_rollout(policy, AutoresetMode.SAME_STEP, steps=12)[0], actions)


def test_lora_without_peft_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "peft", None)  # makes `import peft` raise ImportError
    env = TextGenerationVectorEnv(2, reward_model=zero_reward)
    with pytest.raises(ImportError, match="pip install peft"):
        make_policy(env, lora={"r": 4})


def test_refuses_spaces_it_cannot_act_in():
    with pytest.raises(ValueError, match="observation_mode='tokens'"):
        LMActorCriticPolicy(spaces.Box(0, 1, (9,)), spaces.Discrete(9), lambda _: 1e-3)
    encoder_decoder = TextGenerationEnv(reward_model=zero_reward, architecture="encoder_decoder")
    with pytest.raises(ValueError, match="causal TextGeneration-v0"):
        LMActorCriticPolicy(encoder_decoder.observation_space, encoder_decoder.action_space, lambda _: 1e-3)
