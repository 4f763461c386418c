"""Everything that takes a model or tokenizer name takes a registered name (issue 11, point 1): one test per
kind of entry point, with a registered model whose finished build is the embedded LM's folder in a temporary
cache. The name is neither a folder nor reachable on the Hub, so loading it works only through the registry;
every loaded object's ``name_or_path`` is the registry's folder."""

import json
import shutil

import pytest
import torch

from text_envs import models
from text_envs.defaults import DEFAULT_LM_DIR
from text_envs.rewards.lexicon import lexicon_sentiment_reward

NAME = "tiny-registered-lm"


@pytest.fixture
def registered(tmp_path, monkeypatch):
    """``NAME`` registered, its build (the embedded LM's files and the finished-build marker) in a temporary cache."""
    monkeypatch.setenv(models.CACHE_VARIABLE, str(tmp_path / "cache"))
    monkeypatch.setitem(
        models.REGISTRY,
        NAME,
        models.RegisteredModel(
            distribution="no-such-wheel", member="none.gguf", license="MIT", description="the embedded LM"
        ),
    )
    folder = tmp_path / "cache" / "models" / NAME
    shutil.copytree(DEFAULT_LM_DIR, folder)
    (folder / models.MARKER).write_text(json.dumps({"name": NAME}))
    assert models.model_folder(NAME) == folder
    return str(folder)


def test_both_text_envs_take_a_registered_tokenizer(registered):
    from text_envs.generation.env import TextGenerationEnv
    from text_envs.tictactoe.text_env import TicTacToeTextEnv

    assert TextGenerationEnv(tokenizer=NAME, reward_model=lexicon_sentiment_reward).task.tokenizer.name_or_path == (
        registered
    )
    assert TicTacToeTextEnv(tokenizer=NAME).tokenizer.name_or_path == registered


def test_the_policies_take_a_registered_model(registered):
    from text_envs.generation.vector_env import TextGenerationVectorEnv
    from text_envs_agents.sb3.policy import LMActorCriticPolicy
    from text_envs_agents.text_ppo import TextPPO

    env = TextGenerationVectorEnv(2, tokenizer=NAME, reward_model=lexicon_sentiment_reward, max_new_tokens=4)
    policy = LMActorCriticPolicy(env.single_observation_space, env.single_action_space, lambda _: 0.0, NAME)
    assert policy.lm.model.name_or_path == registered
    trainer = TextPPO(env, NAME)
    assert trainer.policy.model.name_or_path == registered
    trainer.close()


def test_the_rllib_module_takes_a_registered_model(registered):
    pytest.importorskip("ray.rllib")
    from text_envs_agents.rllib import ppo_config, text_generation_env_creator

    env = text_generation_env_creator({"reward_model": lexicon_sentiment_reward, "tokenizer": NAME})
    config = ppo_config("TextGeneration-v0", num_env_runners=0, model_config={"model_name_or_path": NAME})
    module = config.get_rl_module_spec(env=env).build()
    assert module.lm.name_or_path == registered


def test_a_reward_model_backbone_by_registered_name_trains_saves_and_reloads(registered, tmp_path):
    from text_envs.rewards.trained import load_reward_model
    from text_envs.rewards.training import RewardTrainingConfig, train_reward_model

    torch.set_num_threads(1)
    labels = [
        {"prompt": "The film was", "completion": text, "label": label}
        for text, label in [(" great.", 1), (" awful.", 0), (" lovely.", 1), (" bad.", 0)] * 3
    ]
    model = train_reward_model(labels, config=RewardTrainingConfig(backbone=NAME, epochs=2), device="cpu")
    assert model.network.encoder.name_or_path == registered
    model.save(tmp_path / "rm")
    assert json.loads((tmp_path / "rm" / "reward_model.json").read_text())["backbone"] == NAME  # the name, portable
    reloaded = load_reward_model(tmp_path / "rm", device="cpu")
    assert reloaded.network.encoder.name_or_path == registered
    prompts, completions = ["The film was"] * 2, [" great.", " awful."]
    torch.testing.assert_close(
        torch.as_tensor(reloaded(prompts, completions)), torch.as_tensor(model(prompts, completions))
    )


def test_text_envs_train_takes_a_registered_model(registered, tmp_path):
    from text_envs_agents.cli import train

    train.main(
        ["--model", NAME, "--algo", "sb3-a2c", "--timesteps", "8", "--n-envs", "2", "--sb3-a2c.n-steps", "4"]
        + ["--max-new-tokens", "4", "--reward-model", "lexicon", "--gold", "none", "--device", "cpu"]
        + ["--no-progress-bar", "--output-dir", str(tmp_path / "run")]
    )
    arguments = json.loads((tmp_path / "run" / "metrics.json").read_text())["args"]
    assert (arguments["model"], arguments["device"]) == (NAME, "cpu")
    assert (tmp_path / "run" / "sb3-a2c.zip").is_file()


def test_a_benchmark_spec_names_a_registered_model(registered, tmp_path, monkeypatch):
    from text_envs import lm
    from text_envs_agents.benchmark import run_benchmark, spec_from_mapping

    torch.set_num_threads(1)
    spec = spec_from_mapping(
        {
            "model": NAME,
            "judge_lm": "",
            "agents": ["default-lm", "random"],
            "envs": ["TextGeneration-v0", "TicTacToe-v0"],
        }
        | {"seeds": [0], "episodes": 2}
    )
    cells, _ = spec.cells()
    # The LM agent's cells carry the model; the others' do not depend on it.
    assert [(cell.agent, cell.model) for cell in cells] == [("default-lm", NAME), ("random", None)]

    loaded = []
    load_causal_lm = lm.load_causal_lm

    def recording(name_or_path=None, **kwargs):
        model = load_causal_lm(name_or_path, **kwargs)
        loaded.append((name_or_path, model.name_or_path))
        return model

    monkeypatch.setattr(lm, "load_causal_lm", recording)
    run = run_benchmark(spec, tmp_path, progress_bar=False, log=lambda _: None)
    assert loaded == [(NAME, registered)]
    assert [row["model"] for row in run.rows] == [NAME, None]
    assert f"| default-lm ({NAME}) |" in (tmp_path / "table.md").read_text()
