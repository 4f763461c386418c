"""RL Zoo: the packaged MaskablePPO YAML is what our own training uses, and rl_zoo3 trains from it."""

import importlib.util
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from text_envs_agents.hyperparams import conf_file, zoo_hyperparams

ENV_ID = "text_envs/TicTacToe-v0"
ROOT = Path(__file__).resolve().parent.parent


def test_the_yaml_holds_the_settings_train_tictactoe_and_the_benchmark_use(monkeypatch):
    from torch import nn

    from text_envs_agents.benchmark import AGENTS, registry
    from text_envs_agents.tictactoe_training import hyperparameters, train_tictactoe_agent

    zoo = zoo_hyperparams("ppo_mask", ENV_ID)
    # The tuned settings (README "Tic-Tac-Toe agents"), as train_tictactoe_agent builds MaskablePPO with them.
    ours = hyperparameters("maskable_ppo")
    assert {k: v for k, v in ours.items() if k != "learning_rate"} == dict(
        n_steps=256,
        batch_size=512,
        n_epochs=10,
        gamma=0.99,
        ent_coef=0.03,
        policy_kwargs=dict(net_arch=[128, 128], activation_fn=nn.ReLU),
    )
    assert [ours["learning_rate"](p) for p in (1.0, 0.5, 0.0)] == [1e-3, 5e-4, 0.0]  # linear decay from 1e-3
    assert zoo["policy"] == "MlpPolicy"
    assert zoo["policy_kwargs"] == "dict(net_arch=[128, 128], activation_fn=nn.ReLU)"

    # The training env: train_tictactoe_agent's defaults are the YAML's env_kwargs and n_envs.
    defaults = {name: p.default for name, p in inspect.signature(train_tictactoe_agent).parameters.items()}
    assert zoo["env_kwargs"] == {key: defaults[key] for key in ("opponent", "opponent_epsilon", "agent_first")}
    assert zoo["n_envs"] == defaults["n_envs"]

    # The command line's default run length (its Args dataclass, in agents/cli/ or scripts/).
    algo, timesteps = _train_tictactoe_args(monkeypatch)
    assert algo.replace("-", "_") == "maskable_ppo" and timesteps == zoo["n_timesteps"]

    # The benchmark's maskable-ppo trains through train_tictactoe_agent with those defaults, nothing overridden.
    calls = []

    def capture(algo, timesteps, **kwargs):
        calls.append((algo, kwargs))
        raise StopIteration

    monkeypatch.setattr(registry, "train_tictactoe_agent", capture)
    with pytest.raises(StopIteration):
        AGENTS["maskable-ppo"].runners[ENV_ID](registry.CellContext(seed=0, episodes=10, budget=100))
    ((algo, kwargs),) = calls
    assert algo == "maskable_ppo" and set(kwargs) <= {"seed", "callback", "callback_interval"}


def _train_tictactoe_args(monkeypatch) -> tuple[str, int]:
    try:
        from text_envs_agents.cli.train_tictactoe import Args
    except ImportError:
        monkeypatch.syspath_prepend(str(ROOT / "scripts"))
        spec = importlib.util.spec_from_file_location("train_tictactoe_script", ROOT / "scripts" / "train_tictactoe.py")
        script = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, spec.name, script)  # dataclasses look their module up
        spec.loader.exec_module(script)
        Args = script.Args
    return Args.algo, Args.timesteps


def test_the_yaml_ships_as_package_data():
    assert conf_file("ppo_mask").is_file() and conf_file().parent.name == "hyperparams"
    package_data = (ROOT / "setup.cfg").read_text().split("[options.package_data]")[1].split("\n[")[0]
    assert "text_envs_agents =\n    hyperparams/*.yml" in package_data
    with pytest.raises(ValueError, match="no hyper-parameters for 'dqn'"):
        conf_file("dqn")


def test_rl_zoo_trains_maskable_ppo_from_the_yaml_and_the_model_plays(tmp_path):
    if importlib.util.find_spec("rl_zoo3") is None:
        pytest.fail("rl_zoo3 is not installed: pip install -e '.[zoo]' (or pip install rl_zoo3)")
    from sb3_contrib import MaskablePPO

    from text_envs.tictactoe.evaluation import evaluate_tictactoe

    command = [
        sys.executable, "-m", "text_envs_agents.hyperparams.zoo",
        "--algo", "ppo_mask",
        "--env", ENV_ID,
        "--conf-file", str(conf_file("ppo_mask")),
        "--gym-packages", "text_envs",
        "-n", "2048",  # one rollout of 256 steps x 8 envs instead of the YAML's 200k
        "--log-folder", str(tmp_path),
        "--seed", "0",
        "--num-threads", "1",
        "--eval-freq", "1024",  # twice, through MaskableEvalCallback
        "--eval-episodes", "10",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "'learning_rate', 'lin_1e-3'" in result.stdout  # RL Zoo read our YAML
    assert "env_kwargs={'opponent': 'minimax', 'opponent_epsilon': 0.5, 'agent_first': None}" in result.stdout
    (model_path,) = tmp_path.glob("ppo_mask/text_envs-TicTacToe-v0_1/text_envs-TicTacToe-v0.zip")
    assert (model_path.parent / "evaluations.npz").is_file()

    model = MaskablePPO.load(model_path, device="cpu")
    assert model.n_steps == 256 and model.batch_size == 512 and model.n_envs == 8 and model.ent_coef == 0.03
    assert model.num_timesteps == 2048
    assert [
        layer.out_features for layer in model.policy.mlp_extractor.policy_net if hasattr(layer, "out_features")
    ] == [
        128,
        128,
    ]
    assert type(model.policy.mlp_extractor.policy_net[1]).__name__ == "ReLU"
    results = evaluate_tictactoe(model, "random", games=20, seed=0)
    assert results.games == 20 and results.illegal == 0.0  # masked predictions: every move legal
    assert results.win + results.draw + results.loss == pytest.approx(1.0)
