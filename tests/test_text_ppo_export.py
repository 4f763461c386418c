"""TextPPO's trained policy outside training: save_pretrained, predict and generate."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from text_envs import TextGenerationVectorEnv
from text_envs.lm import positions_from_mask
from text_envs.rewards.lexicon import lexicon_sentiment_reward
from text_envs_agents.text_ppo import TextPPO, TextPPOConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LORA = dict(r=4, lora_alpha=8, target_modules=["c_attn"], lora_dropout=0.0)


def make_env(num_envs=4):
    return TextGenerationVectorEnv(num_envs, reward_model=lexicon_sentiment_reward, max_new_tokens=6)


def trained(lora=None):
    config = TextPPOConfig(ppo_epochs=1, minibatch_size=4, learning_rate=1e-2, lora=lora)
    return TextPPO(make_env(), config=config).learn(iterations=1)


def logits(model, observation):
    ids = torch.as_tensor(observation["input_ids"])
    mask = torch.as_tensor(observation["attention_mask"])
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask, position_ids=positions_from_mask(mask)).logits


@pytest.mark.parametrize("lora, merge", [(None, True), (LORA, True), (LORA, False)], ids=["full", "merged", "adapter"])
def test_save_pretrained_loads_with_auto_model_and_gives_the_same_logits(tmp_path, lora, merge):
    if lora is not None:
        pytest.importorskip("peft")
    ppo = trained(lora)
    observation, _ = ppo.env.reset(seed=0)
    expected = logits(ppo.policy.model, observation)
    if lora is not None:  # the adapters moved: the export must carry them
        with ppo.policy.model.disable_adapter():
            assert not torch.allclose(logits(ppo.policy.model, observation), expected, atol=1e-4)
    ppo.save_pretrained(tmp_path, merge_lora=merge)
    assert (tmp_path / ("adapter_config.json" if not merge else "config.json")).is_file()
    exported = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(logits(exported, observation), expected, atol=1e-4, rtol=1e-4)
    assert (
        AutoTokenizer.from_pretrained(tmp_path)("a good day")["input_ids"]
        == ppo.env.tokenizer("a good day")["input_ids"]
    )
    head = load_file(tmp_path / "value_head.safetensors")
    assert torch.equal(head["weight"], ppo.policy.value_head.weight) and torch.equal(
        head["bias"], ppo.policy.value_head.bias
    )
    assert hasattr(ppo.policy.model, "disable_adapter") == (lora is not None)  # the trainer's own policy is untouched


def test_predict_gives_one_token_per_observation_row():
    ppo = TextPPO(make_env())
    observation, _ = ppo.env.reset(seed=1)
    sampler = ppo.sampler.get_state()
    actions, state = ppo.predict(observation)
    assert state is None and actions.shape == (4,) and actions.dtype == np.int64
    assert ppo.env.action_space.contains(actions)
    greedy, _ = ppo.predict(observation, deterministic=True)
    np.testing.assert_array_equal(greedy, logits(ppo.policy.model, observation)[:, -1].argmax(-1).numpy())
    single, _ = ppo.predict({key: value[2] for key, value in observation.items()}, deterministic=True)
    assert single.shape == () and single == greedy[2]
    torch.manual_seed(5)
    first = ppo.predict(observation)[0]
    torch.manual_seed(5)
    np.testing.assert_array_equal(ppo.predict(observation)[0], first)  # torch's global RNG, as SB3 samples
    assert torch.equal(ppo.sampler.get_state(), sampler)  # the rollout stream is left alone
    ppo.env.step(actions)  # the actions are valid env actions
    with pytest.raises(ValueError, match="Dict"):
        ppo.predict(("some text",))


def test_generate_samples_completions_repeatably():
    ppo = TextPPO(make_env())
    prompts = ["The service was", "I bought this"]
    rng = torch.get_rng_state()
    completions = ppo.generate(prompts, max_new_tokens=5, seed=3)
    assert torch.equal(torch.get_rng_state(), rng)  # generating leaves training's RNG alone
    assert len(completions) == 2 and all(isinstance(c, str) for c in completions)
    assert ppo.generate(prompts, max_new_tokens=5, seed=3) == completions
    assert all(len(ppo.env.tokenizer(c)["input_ids"]) <= 6 for c in completions)
    assert len(ppo.generate("The service was", max_new_tokens=5)) == 1  # one prompt as a string
    assert ppo.env.tokenizer.padding_side == make_env().tokenizer.padding_side  # the env's tokenizer is not changed
