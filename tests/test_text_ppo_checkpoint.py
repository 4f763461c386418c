"""TextPPO.load: a classmethod that rebuilds env and trainer from the checkpoint, checking it all first."""

import json

import numpy as np
import pytest
import torch

from text_envs import TextGenerationVectorEnv
from text_envs.rewards.lexicon import lexicon_sentiment_reward
from text_envs_agents.text_ppo import TextPPO, TextPPOConfig
from text_envs_agents.text_ppo.checkpoint import load_state, save_state

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONFIG = TextPPOConfig(seed=2, ppo_epochs=1, minibatch_size=4)


def make_env(num_envs=4, reward_model=lexicon_sentiment_reward, **kwargs):
    return TextGenerationVectorEnv(num_envs, reward_model=reward_model, max_new_tokens=6, **kwargs)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A run saved after one iteration, and the parameters after its next iteration."""
    path = tmp_path_factory.mktemp("textppo") / "checkpoint"
    ppo = TextPPO(make_env(stop_tokens=["."]), config=CONFIG)
    ppo.learn(iterations=1).save(path)  # learn returns the trainer, as in SB3
    ppo.learn(iterations=1)
    return path, [p.detach().clone() for p in ppo.policy.parameters()], ppo.history[-1]


def test_load_rebuilds_the_recorded_env_and_resumes_identically(checkpoint):
    path, expected, expected_metrics = checkpoint
    state = json.loads((path / "trainer_state.json").read_text())
    assert state["model"] == {"name_or_path": None}  # the embedded default LM
    assert state["env"]["num_envs"] == 4
    assert state["env"]["kwargs"]["reward_model"] == "text_envs.rewards.lexicon:lexicon_sentiment_reward"
    resumed = TextPPO.load(path)  # no env: rebuilt from the recorded arguments
    assert resumed.env.num_envs == 4 and resumed.env.task.max_new_tokens == 6
    assert resumed.env.task.stop_token_ids == make_env(stop_tokens=["."]).task.stop_token_ids
    assert resumed.config == CONFIG
    resumed.learn(iterations=1)
    for a, b in zip(expected, resumed.policy.parameters(), strict=True):
        assert torch.equal(a, b)
    assert resumed.history[-1]["score"] == expected_metrics["score"]


def test_an_env_that_cannot_be_recorded_needs_env(tmp_path):
    def reward(prompts, completions):
        return np.zeros(len(completions))

    ppo = TextPPO(make_env(reward_model=reward), config=CONFIG)
    ppo.save(tmp_path)
    assert "unrecorded" in json.loads((tmp_path / "trainer_state.json").read_text())["env"]
    with pytest.raises(ValueError, match="pass env="):
        TextPPO.load(tmp_path)
    assert TextPPO.load(tmp_path, env=make_env(reward_model=reward)).iteration == 0


def test_a_model_without_a_name_needs_model(tmp_path, tiny_llama):
    TextPPO(make_env(), tiny_llama, CONFIG).save(tmp_path)
    with pytest.raises(ValueError, match="pass model="):
        TextPPO.load(tmp_path, env=make_env())
    assert TextPPO.load(tmp_path, env=make_env(), model=tiny_llama).iteration == 0


def test_config_fields_override_and_a_different_config_is_refused(checkpoint):
    path, *_ = checkpoint
    trainer = TextPPO.load(path, env=make_env(), learning_rate=1e-5, kl_coef=0.3)
    assert trainer.config.learning_rate == 1e-5 and trainer.config.seed == CONFIG.seed
    assert all(group["lr"] == 1e-5 for group in trainer.optimizer.param_groups)  # not the restored rate
    assert trainer.kl_controller.value == 0.3  # a KL field starts β afresh
    assert TextPPO.load(path, env=make_env(), config=CONFIG).config == CONFIG  # the same config is fine
    with pytest.raises(ValueError, match=r"differs from the checkpoint's .*\['seed'\]"):
        TextPPO.load(path, env=make_env(), config=TextPPOConfig(seed=9, ppo_epochs=1, minibatch_size=4))
    with pytest.raises(ValueError, match="lora cannot change"):
        TextPPO.load(path, env=make_env(), lora={"r": 4})


def copy_checkpoint(source, target):
    target.mkdir()
    for file in source.iterdir():
        (target / file.name).write_bytes(file.read_bytes())
    return target


def test_a_damaged_checkpoint_is_refused_naming_the_file_before_anything_changes(checkpoint, tmp_path):
    path, *_ = checkpoint
    rng = torch.get_rng_state()

    broken = copy_checkpoint(path, tmp_path / "missing")
    (broken / "rng.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="rng.safetensors missing"):
        TextPPO.load(broken)

    broken = copy_checkpoint(path, tmp_path / "json")
    (broken / "trainer_state.json").write_text("{not json")
    with pytest.raises(ValueError, match="trainer_state.json: not valid JSON"):
        TextPPO.load(broken)

    broken = copy_checkpoint(path, tmp_path / "key")
    state = json.loads((broken / "trainer_state.json").read_text())
    del state["kl_beta"]
    (broken / "trainer_state.json").write_text(json.dumps(state))
    with pytest.raises(ValueError, match="trainer_state.json: no 'kl_beta' entry"):
        TextPPO.load(broken)

    broken = copy_checkpoint(path, tmp_path / "truncated")
    data = (broken / "optimizer.safetensors").read_bytes()
    (broken / "optimizer.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="optimizer.safetensors: not a readable safetensors file"):
        TextPPO.load(broken)

    broken = copy_checkpoint(path, tmp_path / "shape")
    weights = load_state(broken / "policy.safetensors")
    weights["value_head.weight"] = torch.zeros(1, 3)
    save_state(broken / "policy.safetensors", weights)
    env = make_env()
    env_state = env.np_random.bit_generator.state
    with pytest.raises(ValueError, match=r"policy.safetensors: tensor shapes differ .*value_head.weight \(1, 3\)"):
        TextPPO.load(broken, env=env)
    assert torch.equal(torch.get_rng_state(), rng)  # the refused load re-seeded nothing
    assert env.np_random.bit_generator.state == env_state

    broken = copy_checkpoint(path, tmp_path / "names")
    weights = load_state(broken / "policy.safetensors")
    weights["extra.weight"] = weights.pop("value_head.bias")
    save_state(broken / "policy.safetensors", weights)
    with pytest.raises(ValueError, match=r"missing \['value_head.bias'\], unexpected \['extra.weight'\]"):
        TextPPO.load(broken, env=make_env())


def test_a_run_on_the_default_reward_model_object_reloads_without_env(tmp_path):
    from text_envs.rewards.trained import default_reward_model

    TextPPO(make_env(reward_model=default_reward_model()), config=CONFIG).save(tmp_path)  # what text-envs-train passes
    assert TextPPO.load(tmp_path).env.task.reward_model is not None


def test_more_damage_is_refused_before_the_env_torch_or_a_log_changes(checkpoint, tmp_path):
    path, *_ = checkpoint
    rng = torch.get_rng_state()
    cases = {
        "kl_beta": (lambda state: state.update(kl_beta=float("nan")), "'kl_beta' should be a finite number"),
        "history": (lambda state: state.update(history={"score": 1}), "'history' should be list"),
        "iteration": (lambda state: state.update(iteration=-1), "negative 'iteration'"),
        "env_rng": (lambda state: state["env_rng"].pop("state"), "env_rng is not a valid PCG64 state"),
    }
    for name, (damage, message) in cases.items():
        broken = copy_checkpoint(path, tmp_path / name)
        state = json.loads((broken / "trainer_state.json").read_text())
        damage(state)
        (broken / "trainer_state.json").write_text(json.dumps(state))
        env = make_env()
        env_state = env.np_random.bit_generator.state
        with pytest.raises(ValueError, match=rf"{name}/trainer_state.json: .*{message}"):
            TextPPO.load(broken, env=env, tensorboard_log=tmp_path / f"{name}-log")
        assert env.np_random.bit_generator.state == env_state
        assert not (tmp_path / f"{name}-log").exists()  # no log opened for a refused load
    broken = copy_checkpoint(path, tmp_path / "sampler")
    rng_state = load_state(broken / "rng.safetensors")
    rng_state["sampler"] = rng_state["sampler"][:100]
    save_state(broken / "rng.safetensors", rng_state)
    with pytest.raises(ValueError, match=r"sampler/rng.safetensors: the sampler state has shape \(100,\)"):
        TextPPO.load(broken, env=make_env())
    assert torch.equal(torch.get_rng_state(), rng)


def test_save_replaces_the_folder_as_a_whole_and_refuses_a_folder_of_other_files(checkpoint, tmp_path):
    path, *_ = checkpoint
    trainer = TextPPO.load(path)
    target = tmp_path / "run"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"holds \['notes.txt'\], which are not checkpoint files"):
        trainer.save(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # nothing written beside it
    trainer.save(tmp_path / "checkpoint")
    trainer.save(tmp_path / "checkpoint")  # over an existing checkpoint
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint", "run"]
    (tmp_path / "other.old").mkdir()
    (tmp_path / "other.old" / "precious.txt").write_text("mine")  # a user's folder that merely looks like a leftover
    with pytest.raises(ValueError, match=r"other\.old: it holds \['precious.txt'\]"):
        trainer.save(tmp_path / "other")
    assert (tmp_path / "other.old" / "precious.txt").read_text() == "mine"


def test_a_symlinked_checkpoint_folder_is_saved_through(checkpoint, tmp_path):
    path, *_ = checkpoint
    trainer = TextPPO.load(path)
    (tmp_path / "storage").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "storage" / "checkpoint", target_is_directory=True)
    trainer.save(tmp_path / "link")
    trainer.save(tmp_path / "link")  # a second save replaces the folder the link points at, not the link
    assert (tmp_path / "link").is_symlink() and TextPPO.load(tmp_path / "link").iteration == 1
    assert sorted(p.name for p in (tmp_path / "storage").iterdir()) == ["checkpoint"]


def test_a_save_interrupted_between_its_renames_loads_the_previous_checkpoint(checkpoint, tmp_path):
    path, *_ = checkpoint
    trainer = TextPPO.load(path)
    target = tmp_path / "checkpoint"
    trainer.save(target)
    trainer.learn(iterations=1)
    trainer.save(tmp_path / "newer")
    target.rename(tmp_path / "checkpoint.old")  # the state a kill after the first rename leaves
    (tmp_path / "newer").rename(tmp_path / "checkpoint.new")
    assert TextPPO.load(target).iteration == 1  # the .old folder, complete
    trainer.save(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]
    assert TextPPO.load(target).iteration == 2
