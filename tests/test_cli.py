"""The console scripts: installed, --help that starts no work, one spelling per concept, real defaults."""

from __future__ import annotations

import dataclasses
import importlib
import re
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import get_args, get_type_hints

import pytest

import text_envs
from text_envs.defaults import DEFAULT_LM_DIR
from text_envs_agents.cli import benchmark, demo, label, shaping_sweep, train, train_reward_model, train_tictactoe
from text_envs_agents.cli.common import parse

ROOT = Path(__file__).resolve().parent.parent
TOOLS = {
    "text-envs-train": "train",
    "text-envs-benchmark": "benchmark",
    "text-envs-label": "label",
    "text-envs-train-reward-model": "train_reward_model",
    "text-envs-train-tictactoe": "train_tictactoe",
    "text-envs-train-rllib": "train_rllib",
    "text-envs-shaping-sweep": "shaping_sweep",
    "text-envs-demo": "demo",
}
WRAPPERS = {
    "train_text.py": "train",
    "benchmark.py": "benchmark",
    "label_feedback.py": "label",
    "train_reward_model.py": "train_reward_model",
    "train_tictactoe.py": "train_tictactoe",
    "train_rllib.py": "train_rllib",
    "shaping_sweep.py": "shaping_sweep",
    "demo.py": "demo",
}
DEVELOPER_SCRIPTS = [
    "bench_ppo.py",
    "bench_reward_model.py",
    "bench_rollout.py",
    "bench_text_env.py",
    "bench_tictactoe.py",
    "build_default_lm.py",
    "check_gpu.py",
    "profile_text_ppo.py",
]


def help_text(module_name: str, capsys, monkeypatch) -> str:
    """What ``main(["--help"])`` prints; it must exit 0."""
    monkeypatch.setenv("COLUMNS", "200")  # one flag per line, nothing wrapped mid-name
    module = importlib.import_module(f"text_envs_agents.cli.{module_name}")
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def flags(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])--[a-z0-9][a-z0-9.-]*", text))


def test_every_console_script_is_declared_and_installed():
    declared = {ep.name: ep.value for ep in entry_points(group="console_scripts") if ep.name.startswith("text-envs-")}
    assert declared == {name: f"text_envs_agents.cli.{module}:main" for name, module in TOOLS.items()}
    scripts = Path(sys.executable).parent
    missing = [name for name in TOOLS if not (scripts / name).exists()]
    assert not missing, f"reinstall the package (pip install --no-deps -e .): {missing} not in {scripts}"


@pytest.mark.parametrize("module_name", sorted(set(TOOLS.values())))
def test_help_exits_0_and_uses_one_spelling_per_concept(module_name, capsys, monkeypatch):
    if module_name == "train_rllib":
        pytest.importorskip("ray")
    text = help_text(module_name, capsys, monkeypatch)
    names = flags(text)
    assert "--help" in names
    for banned in ("--torch-threads", "--output", "--policy", "--reward", "--output-file"):
        assert banned not in names, f"{module_name}: {banned}"
    assert not any(name.endswith("_") or "_" in name for name in names), names  # kebab case
    if module_name != "demo":
        assert "--output-dir" in names or module_name in ("label", "train_rllib"), names
    if module_name not in ("demo", "label"):
        assert "--threads" in names, names


def test_demo_help_is_quick_and_starts_nothing(tmp_path):
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--help"], cwd=tmp_path, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    assert "--progress-bar" in result.stdout and "===" not in result.stdout
    assert seconds < 10, seconds
    assert not any(tmp_path.iterdir())  # no runs/ folder, no logs


@pytest.mark.parametrize("module_name", ["demo", "benchmark", "label", "train_tictactoe", "shaping_sweep"])
def test_help_does_not_import_torch(module_name):
    code = (
        "import sys\n"
        f"from text_envs_agents.cli.{module_name} import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("script", sorted(WRAPPERS))
def test_scripts_are_thin_wrappers(script):
    text = (ROOT / "scripts" / script).read_text()
    assert f"from text_envs_agents.cli.{WRAPPERS[script]} import main" in text
    assert len(text.splitlines()) < 15


@pytest.mark.parametrize("script", DEVELOPER_SCRIPTS)
def test_developer_scripts_use_tyro(script):
    text = (ROOT / "scripts" / script).read_text()
    assert "tyro.cli(Args" in text and "argparse" not in text
    for banned in ("--torch-threads", "--output ", '"--output"', "--reward "):
        assert banned not in text, banned
    assert not (ROOT / "scripts" / "cli_args.py").exists()


def test_seeds_are_space_separated():
    assert parse(benchmark.Args, ["--seeds", "0", "1", "2"], None).seeds == (0, 1, 2)
    assert parse(shaping_sweep.Args, ["--seeds", "0", "1", "2"], None).seeds == (0, 1, 2)
    with pytest.raises(SystemExit) as exit_info:
        parse(benchmark.Args, ["--seeds", "0,1,2"], None)
    assert exit_info.value.code == 2


def test_benchmark_flags_override_the_spec():
    spec = benchmark.spec_from_args(
        parse(benchmark.Args, ["--agents", "random", "q-learning", "--envs", "TicTacToe-v0", "--seeds", "3", "4"], None)
    )
    assert spec.agents == ("random", "q-learning") and spec.seeds == (3, 4)
    spec = benchmark.spec_from_args(parse(benchmark.Args, ["--budgets", "q-learning", "500"], None))
    assert spec.budgets["q-learning"] == 500
    from text_envs_agents.benchmark import BenchmarkSpec

    assert benchmark.spec_from_args(benchmark.Args()).seeds == BenchmarkSpec().seeds
    assert benchmark.spec_from_args(benchmark.Args()).model is None
    assert benchmark.spec_from_args(parse(benchmark.Args, ["--model", "smollm2-135m-instruct"], None)).model == (
        "smollm2-135m-instruct"
    )


def test_train_help_lists_every_text_ppo_setting_and_lora(capsys, monkeypatch):
    from text_envs_agents.text_ppo import TextPPOConfig

    names = flags(help_text("train", capsys, monkeypatch))
    for name in ("--ppo.ppo-epochs", "--ppo.minibatch-size", "--ppo.value-coef", "--ppo.learning-rate"):
        assert name in names
    for name in ("--lora-r", "--lora-alpha", "--lora-dropout", "--lora-target-modules", "--beta", "--seed"):
        assert name in names
    for field in dataclasses.fields(TextPPOConfig):
        flag = "--ppo." + field.name.replace("_", "-")
        if field.name in train.FROM_OWN_FLAGS:
            assert flag not in names  # set from --beta, --seed and --lora-*
        elif field.type == "bool":
            assert flag in names and "--ppo.no-" + field.name.replace("_", "-") in names
        else:
            assert flag in names, flag
    for name in ("--sb3-ppo.learning-rate", "--sb3-ppo.n-steps", "--sb3-a2c.n-steps", "--timesteps"):
        assert name in names


def test_train_flags_reach_the_configs():
    from text_envs_agents.sb3.rlhf import SB3A2CSettings, SB3PPOSettings
    from text_envs_agents.text_ppo import TextPPOConfig

    args = train.parse_args([])
    assert args.ppo == TextPPOConfig()  # the real defaults, no sentinels
    assert train.text_ppo_config(args) == dataclasses.replace(TextPPOConfig(), kl_coef=0.1)
    assert args.sb3_ppo == SB3PPOSettings() and args.sb3_a2c == SB3A2CSettings()
    recipe = (args.sb3_ppo.n_steps, args.sb3_ppo.batch_size, args.sb3_ppo.n_epochs, args.sb3_a2c.n_steps)
    assert recipe == (64, 128, 4, 16)
    argv = "--beta 0.2 --seed 3 --ppo.ppo-epochs 2 --ppo.value-coef 0.3 --ppo.adaptive-kl --lora-r 8"
    argv += " --lora-target-modules c_attn c_proj --sb3-ppo.learning-rate 1e-5"
    args = train.parse_args(argv.split())
    config = train.text_ppo_config(args)
    chosen = (config.kl_coef, config.seed, config.ppo_epochs, config.value_coef, config.adaptive_kl)
    assert chosen == (0.2, 3, 2, 0.3, True)
    assert config.lora == {"r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": ["c_attn", "c_proj"]}
    assert args.sb3_ppo.learning_rate == 1e-5
    assert train.lora_kwargs(train.parse_args(["--lora-r", "0"])) is None
    assert train.parse_args([]).device == "auto" and train.parse_args(["--device", "cpu"]).device == "cpu"
    with pytest.raises(SystemExit):
        train.parse_args(["--algo", "sb3_ppo"])  # choices are spelled with hyphens


def test_tool_choices_match_the_library():
    from text_envs.feedback.labelling import MODES
    from text_envs_agents.tictactoe_training import ALGORITHMS

    assert set(train_tictactoe.ALGORITHMS.values()) == set(ALGORITHMS)
    assert set(train_tictactoe.ALGORITHMS) == set(get_args(get_type_hints(train_tictactoe.Args)["algo"]))
    assert parse(train_tictactoe.Args, ["--algo", "q-learning"], None).algo == "q-learning"
    assert set(get_args(get_type_hints(label.Args)["mode"])) == set(MODES)


def test_rllib_choices_match_the_library():
    pytest.importorskip("ray")
    from text_envs_agents.cli import train_rllib
    from text_envs_agents.rllib import ENV_NAMES

    assert set(get_args(get_type_hints(train_rllib.Args)["env"])) == set(ENV_NAMES)


def test_reward_model_trainer_does_not_overwrite_the_shipped_default(capsys, monkeypatch):
    package = Path(text_envs.__file__).resolve().parent
    output = (ROOT / train_reward_model.Args().output_dir).resolve()
    assert package not in output.parents and output != package
    assert train_reward_model.Args().output_dir == "runs/reward_model"
    assert "text_envs/defaults/reward_model" in help_text("train_reward_model", capsys, monkeypatch)


def test_demo_runs_both_tools_in_order(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(train, "main", lambda argv: calls.append(("train", argv)))
    monkeypatch.setattr(train_tictactoe, "main", lambda argv: calls.append(("train_tictactoe", argv)))
    demo.main([])
    assert calls == [("train", ["--no-progress-bar"]), ("train_tictactoe", ["--no-progress-bar"])]
    assert "text-envs-train-tictactoe" in capsys.readouterr().out


def test_train_sb3_rlhf_trains_the_lm_with_exact_kl(tmp_path):
    import torch

    from text_envs.rewards.lexicon import lexicon_sentiment_reward
    from text_envs_agents.sb3 import SB3A2CSettings, train_sb3_rlhf

    torch.set_num_threads(1)
    model, lm = train_sb3_rlhf(
        "a2c",
        env_kwargs=dict(reward_model=lexicon_sentiment_reward, max_new_tokens=4),
        beta=0.1,
        timesteps=8,
        n_envs=2,
        settings=SB3A2CSettings(n_steps=4),
        tensorboard_log=None,
    )
    assert model.num_timesteps == 8
    initial = type(lm).from_pretrained(DEFAULT_LM_DIR).state_dict()
    assert any(not torch.equal(value, initial[name]) for name, value in lm.state_dict().items())  # the LM trained
    assert model.policy.logprob_callback is not None
    with pytest.raises(ValueError, match="algo must be one of"):
        train_sb3_rlhf("dqn", env_kwargs={})


def test_the_shaping_sweep_sweeps_any_stack_and_refuses_a_bad_spec():
    args = parse(
        shaping_sweep.Args, ["--betas", "0.1", "--stacks", "MissingEOSTerm(penalty=1.0); ClipTransform(-5, 5)"], None
    )
    cells = shaping_sweep.cells(args)
    assert [c["shaping"] for c in cells] == ["", "MissingEOSTerm(penalty=1.0); ClipTransform(-5, 5)"]
    with pytest.raises(ValueError, match="unknown piece 'NoSuchTerm'"):
        shaping_sweep.cells(parse(shaping_sweep.Args, ["--stacks", "NoSuchTerm(1)"], None))


def test_train_exports_a_folder_hugging_face_loads(tmp_path):
    from transformers import AutoModelForCausalLM

    train.main(
        ["--iterations", "1", "--batch-size", "4", "--max-new-tokens", "4", "--reward-model", "lexicon"]
        + ["--no-progress-bar", "--output-dir", str(tmp_path / "run"), "--export-dir", str(tmp_path / "export")]
    )
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "export").config.model_type == "gpt2"
    assert (tmp_path / "run" / "checkpoint" / "trainer_state.json").is_file()
