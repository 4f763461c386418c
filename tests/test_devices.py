"""Devices (issue 11, point 5) outside TextPPO, on the CPU: ``"auto"`` resolves to CUDA only where CUDA is,
SB3's ``device`` places the LM policy and its cached rollouts still sample what full forwards sample, and
reward models run on the device they are given (the Hugging Face classifier's test is in
test_reward_models.py, beside its tiny classifier)."""

import numpy as np
import pytest
import torch

from text_envs.defaults import DEFAULT_REWARD_MODEL_DIR
from text_envs.lm import resolve_device
from text_envs.rewards.protocol import check_scores
from text_envs.rewards.trained import default_reward_model, load_reward_model

PROMPTS = ["The film was", "I did not expect"]
COMPLETIONS = [" wonderful, moving and warm.", " a dull, clumsy mess."]


def test_auto_is_cuda_only_where_cuda_is(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="device='cuda:1' asks for CUDA, which this machine lacks"):
        resolve_device("cuda:1")
    with pytest.raises(ValueError, match="device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'"):
        resolve_device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)  # named devices are taken as they are
    with pytest.raises(ValueError, match="device='cuda:2': this machine has 2 CUDA device"):
        resolve_device("cuda:2")


def test_trained_reward_model_runs_on_its_device_and_scores_as_before(one_torch_thread):
    model = load_reward_model(DEFAULT_REWARD_MODEL_DIR, device="cpu")
    assert model.device == torch.device("cpu")
    assert {p.device for p in model.network.parameters()} == {torch.device("cpu")}  # backbone and head
    assert {t.device for t in model.tokenize(PROMPTS, COMPLETIONS).values()} == {torch.device("cpu")}
    scores = model(PROMPTS, COMPLETIONS)
    assert scores.dtype == np.float32 and scores.shape == (2,)
    np.testing.assert_array_equal(check_scores(scores, 2, "the reward model"), scores)
    assert scores[0] > scores[1]  # the shipped model still tells a positive review from a negative one
    # One default model per resolved device: "auto" here is the CPU one, loaded once and shared.
    if not torch.cuda.is_available():
        assert default_reward_model("auto") is default_reward_model("cpu") is default_reward_model()
    np.testing.assert_allclose(default_reward_model("cpu")(PROMPTS, COMPLETIONS), scores, rtol=1e-6)


def _lm_folder(tmp_path, model) -> str:
    from text_envs.lm import load_tokenizer

    model.save_pretrained(tmp_path)
    load_tokenizer().save_pretrained(tmp_path)
    return str(tmp_path)


def _rollout_actions(model_name_or_path, use_cache: bool, device: str):
    """The actions and policy of one PPO rollout (2 envs x 12 tokens, episodes of 5 tokens) with seed 0."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    from text_envs.generation.env import TextGenerationEnv
    from text_envs.rewards.lexicon import lexicon_sentiment_reward
    from text_envs_agents.sb3.policy import LMActorCriticPolicy

    def make_env():
        return TextGenerationEnv(reward_model=lexicon_sentiment_reward, max_new_tokens=5)

    algorithm = PPO(
        LMActorCriticPolicy,
        make_vec_env(make_env, n_envs=2, seed=0),
        n_steps=12,
        batch_size=24,
        n_epochs=1,
        seed=0,
        device=device,
        policy_kwargs=dict(model_name_or_path=model_name_or_path, use_cache=use_cache),
    )
    algorithm.learn(total_timesteps=24)
    return algorithm.rollout_buffer.actions.copy(), algorithm


@pytest.mark.parametrize("architecture", ["gpt2", "llama"])
def test_sb3_ppo_on_cpu_samples_the_same_actions_cached_and_uncached(architecture, tiny_llama, tmp_path):
    torch.set_num_threads(1)
    source = None if architecture == "gpt2" else _lm_folder(tmp_path, tiny_llama)
    cached, algorithm = _rollout_actions(source, use_cache=True, device="cpu")
    uncached, plain = _rollout_actions(source, use_cache=False, device="cpu")
    assert algorithm.device == torch.device("cpu") and algorithm.policy.device == torch.device("cpu")
    assert {p.device for p in algorithm.policy.parameters()} == {torch.device("cpu")}  # LM and value head
    assert algorithm.policy.lm.continued_rows > 0  # the cache was used: rows continued from the last step
    assert plain.policy.lm.continued_rows == 0
    np.testing.assert_array_equal(cached, uncached)
    assert len(np.unique(cached)) > 1


def test_train_sb3_rlhf_puts_the_policy_and_the_kl_reference_on_its_device():
    from text_envs.rewards.lexicon import lexicon_sentiment_reward
    from text_envs_agents.sb3 import SB3A2CSettings, train_sb3_rlhf

    torch.set_num_threads(1)
    algorithm, lm = train_sb3_rlhf(
        "a2c",
        env_kwargs=dict(reward_model=lexicon_sentiment_reward, max_new_tokens=4),
        timesteps=8,
        n_envs=2,
        settings=SB3A2CSettings(n_steps=4),
        device="cpu",
    )
    assert algorithm.device == torch.device("cpu") and lm.device == torch.device("cpu")
    references = algorithm.get_env().get_attr("reference_model")
    assert {next(reference.parameters()).device for reference in references} == {torch.device("cpu")}
