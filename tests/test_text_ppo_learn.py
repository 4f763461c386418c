"""TextPPO.learn: timesteps as generated tokens, SB3 and plain callbacks, and the loggers' keys."""

import subprocess
import sys
import types

import pytest
import torch

from text_envs import TextGenerationVectorEnv
from text_envs.rewards.lexicon import lexicon_sentiment_reward
from text_envs_agents.text_ppo import TextPPO, TextPPOConfig
from text_envs_agents.text_ppo.logger import SB3_KEYS, markdown_table

pytestmark = pytest.mark.usefixtures("one_torch_thread")

OLD_KEYS = {
    "score",
    "kl",
    "beta",
    "completion_length",
    "policy_loss",
    "value_loss",
    "entropy",
    "clip_fraction",
    "approx_kl",
    "seconds",
}


def make_trainer(**kwargs):
    env = TextGenerationVectorEnv(4, reward_model=lexicon_sentiment_reward, max_new_tokens=5)
    return TextPPO(env, config=TextPPOConfig(ppo_epochs=1, minibatch_size=4), **kwargs)


def test_total_timesteps_counts_generated_tokens():
    ppo = make_trainer()
    with pytest.warns(UserWarning, match="counts generated tokens"):  # learn(n) once meant n iterations
        assert ppo.learn(total_timesteps=1) is ppo  # returns self, as SB3 does
    assert len(ppo.history) == 1  # one iteration passes any budget below one batch
    first = ppo.history[0]
    assert OLD_KEYS <= set(first)
    assert ppo.num_timesteps == first["num_timesteps"] == first["timesteps"] == 4 * first["completion_length"]
    ppo.learn(total_timesteps=ppo.num_timesteps + 1)  # more than one batch more: two iterations
    assert len(ppo.history) == 3 and ppo.iteration == 3
    assert ppo.num_timesteps == sum(m["timesteps"] for m in ppo.history)
    ppo.learn(iterations=2)
    assert len(ppo.history) == 5
    for bad in ({}, {"total_timesteps": 10, "iterations": 1}):
        with pytest.raises(ValueError, match="exactly one of total_timesteps"):
            ppo.learn(**bad)


def test_a_plain_callback_returning_false_stops_training():
    ppo = make_trainer()
    seen = []

    def callback(trainer, metrics):
        seen.append((trainer, metrics))
        return len(seen) < 2 and None  # None carries on; False stops

    ppo.learn(iterations=5, callback=[callback])
    assert len(seen) == 2 and len(ppo.history) == 2 and seen[0][0] is ppo and seen[1][1] is ppo.history[1]


def test_stable_baselines3_callbacks_see_the_sb3_events_and_can_stop():
    callbacks = pytest.importorskip("stable_baselines3.common.callbacks")

    class Recorder(callbacks.BaseCallback):
        def __init__(self, stop_at):
            super().__init__()
            self.events, self.stop_at = [], stop_at

        def _init_callback(self):
            self.events.append("init")

        def _on_training_start(self):
            self.events.append("training_start")

        def _on_rollout_start(self):
            self.events.append("rollout_start")

        def _on_step(self):
            self.events.append(("step", self.num_timesteps, self.locals["new_timesteps"]))
            self.logger.record("custom/value", 1.5)  # SB3 callbacks write to the trainer's logger
            return self.n_calls < self.stop_at

        def _on_rollout_end(self):
            self.events.append("rollout_end")

        def _on_training_end(self):
            self.events.append("training_end")

    ppo = make_trainer()
    first, second = Recorder(stop_at=2), Recorder(stop_at=10)
    ppo.learn(total_timesteps=10_000, callback=callbacks.CallbackList([first, second]))
    # on_step comes once per iteration, after its update: False on the second stops after two updates
    assert len(ppo.history) == 2 and ppo.iteration == 2
    step = int(ppo.history[0]["timesteps"])
    assert first.model is ppo and first.training_env is ppo.env
    assert first.events[:2] == ["init", "training_start"]
    assert first.events[2:5] == ["rollout_start", "rollout_end", ("step", step, step)]
    assert first.events[5:7] == ["rollout_start", "rollout_end"] and first.events[7][1] == ppo.num_timesteps
    assert first.events[8:] == ["training_end"] and first.n_calls == 2
    assert first.locals["metrics"] is ppo.history[1] and first.locals["history"] is ppo.history

    plain = []  # a list mixing an SB3 callback and a callable
    ppo.learn(iterations=2, callback=[Recorder(stop_at=10), lambda trainer, metrics: plain.append(metrics)])
    assert len(plain) == 2 and len(ppo.history) == 4


def test_importing_text_ppo_does_not_import_stable_baselines3():
    code = (
        "import sys, text_envs_agents.text_ppo\n"
        "from text_envs_agents.text_ppo import callbacks, logger, trainer\n"
        "assert 'stable_baselines3' not in sys.modules, sorted(m for m in sys.modules if 'stable' in m)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def read_tensorboard(directory):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(directory), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    return events


def test_tensorboard_gets_sb3_keys_and_sample_tables(tmp_path):
    pytest.importorskip("tensorboard")
    ppo = make_trainer(tensorboard_log=tmp_path, sample_log_interval=2)
    ppo.learn(iterations=3)
    ppo.close()
    events = read_tensorboard(tmp_path)
    tags = set(events.Tags()["scalars"])
    assert set(SB3_KEYS.values()) <= tags
    for name in ("rollout/ep_rew_mean", "train/entropy_loss", "rlhf/kl", "time/total_timesteps"):
        assert [e.step for e in events.Scalars(name)] == [int(m["num_timesteps"]) for m in ppo.history]
    entropy = [e.value for e in events.Scalars("train/entropy_loss")]
    assert entropy == pytest.approx([-m["entropy"] for m in ppo.history])  # SB3 logs minus the entropy
    returns = [e.value for e in events.Scalars("rollout/ep_rew_mean")]
    assert returns == pytest.approx([m["episode_return"] for m in ppo.history])
    assert [e.value for e in events.Scalars("rollout/score_mean")] == pytest.approx([m["score"] for m in ppo.history])
    samples = events.Tensors("samples/text_summary")
    assert [e.step for e in samples] == [int(ppo.history[i]["num_timesteps"]) for i in (0, 2)]  # iterations 1, 3
    assert samples[0].tensor_proto.string_val[0].decode().startswith("| prompt | completion | score |")


def test_markdown_table_escapes_cells():
    table = markdown_table(["a|b"], ["line\nnext"], [1.0])
    assert table.splitlines()[2] == "| a\\|b | line next | 1.000 |"


def test_a_missing_tensorboard_gives_an_install_hint(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ModuleNotFoundError, match=r'pip install "text_envs\[tensorboard\]"'):
        make_trainer(tensorboard_log=tmp_path)


def test_report_to_is_checked():
    with pytest.raises(ValueError, match="report_to takes"):
        make_trainer(report_to="mlflow")
    with pytest.raises(ValueError, match="tensorboard_log="):
        make_trainer(report_to=("tensorboard",))


class FakeRun:
    def __init__(self, project, config):
        self.project, self.config, self.logged, self.finished = project, config, [], False

    def log(self, values, step):
        self.logged.append((values, step))

    def finish(self):
        self.finished = True


def fake_wandb():
    module = types.ModuleType("wandb")
    module.runs = []

    def init(project=None, config=None):
        module.runs.append(FakeRun(project, config))
        return module.runs[-1]

    class Table:
        def __init__(self, columns, data):
            self.columns, self.data = columns, data

    module.init, module.Table = init, Table
    return module


def test_weights_and_biases_logging_with_a_fake_wandb(monkeypatch):
    wandb = fake_wandb()
    monkeypatch.setitem(sys.modules, "wandb", wandb)
    ppo = make_trainer(wandb_project="textppo-test", sample_log_interval=1)
    ppo.learn(iterations=2)
    ppo.close()
    (run,) = wandb.runs
    assert run.project == "textppo-test" and run.config["ppo_epochs"] == 1 and run.finished
    scalars = [(values, step) for values, step in run.logged if "samples" not in values]
    assert [step for _, step in scalars] == [int(m["num_timesteps"]) for m in ppo.history]
    assert set(SB3_KEYS.values()) <= set(scalars[0][0])
    assert scalars[1][0]["rlhf/beta"] == ppo.history[1]["beta"]
    tables = [values["samples"] for values, _ in run.logged if "samples" in values]
    assert len(tables) == 2 and tables[0].columns == ["prompt", "completion", "score"] and len(tables[0].data) == 4


def test_a_missing_wandb_gives_an_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(ModuleNotFoundError, match=r'pip install "text_envs\[wandb\]"'):
        make_trainer(report_to=["wandb"])


def test_sb3_checkpoint_callback_saves_loadable_checkpoints(tmp_path):
    callbacks = pytest.importorskip("stable_baselines3.common.callbacks")
    ppo = make_trainer()
    ppo.learn(iterations=2, callback=callbacks.CheckpointCallback(save_freq=1, save_path=str(tmp_path)))
    # SB3 names them rl_model_<timesteps>_steps.zip; here each is a checkpoint directory
    saved = sorted(tmp_path.iterdir(), key=lambda path: int(path.name.split("_")[2]))
    assert len(saved) == 2 and all(path.is_dir() for path in saved)
    resumed = TextPPO.load(saved[0], env=ppo.env)
    assert resumed.num_timesteps == int(ppo.history[0]["num_timesteps"]) and resumed.iteration == 1
    resumed.learn(iterations=1)  # saved after its update, so it resumes into the second iteration exactly
    second = TextPPO.load(saved[1], env=ppo.env)
    for a, b in zip(resumed.policy.parameters(), second.policy.parameters(), strict=True):
        assert torch.equal(a, b)


def test_sb3_stop_training_on_max_episodes_counts_each_batch_of_episodes():
    from stable_baselines3.common.callbacks import StopTrainingOnMaxEpisodes

    env = TextGenerationVectorEnv(4, reward_model=lexicon_sentiment_reward, max_new_tokens=4)
    trainer = TextPPO(env, config=TextPPOConfig(ppo_epochs=1, minibatch_size=4)).learn(
        iterations=10, callback=StopTrainingOnMaxEpisodes(max_episodes=2)
    )
    assert trainer.iteration == 2  # SB3's max_episodes is per env: one episode per env an iteration
