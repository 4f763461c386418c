"""The console scripts: installed, --help that starts no work, one spelling per concept, real defaults."""

from __future__ import annotations

import dataclasses
import importlib
import json
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
    "text-envs-rlhf-loop": "rlhf_loop",
    "text-envs-personalise": "personalise",
    "text-envs-train-tictactoe-lm": "train_tictactoe_lm",
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
    "rlhf_loop.py": "rlhf_loop",
    "personalise.py": "personalise",
    "train_tictactoe_lm.py": "train_tictactoe_lm",
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
    "sample_for_labelling.py",
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
    assert "--jobs" in result.stdout and "===" not in result.stdout
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
    assert args.ppo == train.FLUENT_RLHF == TextPPOConfig(learning_rate=3e-5, entropy_coef=0.005)  # no sentinels
    assert train.text_ppo_config(args) == dataclasses.replace(train.FLUENT_RLHF, kl_coef=0.2)
    assert args.max_new_tokens == 32
    assert args.sb3_ppo == SB3PPOSettings() and args.sb3_a2c == SB3A2CSettings()
    recipe = (args.sb3_ppo.n_steps, args.sb3_ppo.batch_size, args.sb3_ppo.n_epochs, args.sb3_a2c.n_steps)
    assert recipe == (64, 128, 4, 16)
    argv = "--beta 0.3 --seed 3 --ppo.ppo-epochs 2 --ppo.value-coef 0.3 --ppo.adaptive-kl --lora-r 8"
    argv += " --lora-target-modules c_attn c_proj --sb3-ppo.learning-rate 1e-5"
    args = train.parse_args(argv.split())
    config = train.text_ppo_config(args)
    chosen = (config.kl_coef, config.seed, config.ppo_epochs, config.value_coef, config.adaptive_kl)
    assert chosen == (0.3, 3, 2, 0.3, True)
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


def test_demo_runs_each_seed_then_tictactoe_and_checks_the_targets(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    before = {"score_mean": 0.0, "score_std": 2.0, "vader_mean": 0.1, "perplexity": 50.0}
    before |= {"broken_share": 0.0, "distinct_2": 0.5}
    ran = []

    def fake_run_jobs(jobs, at_once):
        ran.append(([(job.module, job.argv) for job in jobs], at_once))
        for job in jobs[:-1]:  # the text runs: what text-envs-train writes
            seed = int(job.argv[job.argv.index("--seed") + 1])
            after = {**before, "score_mean": 2.0 + seed, "vader_mean": 0.5, "perplexity": 60.0 + 20 * seed}
            after |= {"broken_share": 0.0, "distinct_2": 0.4}
            job.output_dir.mkdir(parents=True)
            (job.output_dir / "metrics.json").write_text(json.dumps({"before": before, "after": after}))

    monkeypatch.setattr(demo, "run_jobs", fake_run_jobs)
    demo.main(["--seeds", "0", "1"])
    [(jobs, at_once)] = ran
    assert at_once == 2 and [module for module, _ in jobs] == [
        "text_envs_agents.cli.train",
        "text_envs_agents.cli.train",
        "text_envs_agents.cli.train_tictactoe",
    ]
    flags = ["--no-progress-bar", "--seed", "0", "--output-dir", "runs/text/seed_0", "--also-score", "default-round1"]
    assert jobs[0][1] == flags and jobs[1][1][:3] == ["--no-progress-bar", "--seed", "1"]
    for module, _ in jobs:  # every job's module is a console tool with a main
        assert callable(importlib.import_module(module).main)
    out = capsys.readouterr().out
    rows = {line.split(" | ")[0].strip("| "): line for line in out.splitlines() if line.startswith("| ")}
    # rises of 1.0 and 1.5 std (mean 1.25 < 1.5); perplexity 1.2x and 1.6x (mean 1.4 > 1.3); VADER +0.4
    assert rows["reward-model score rise (std of the reference's)"].endswith("| 1.000 | 1.500 | 1.250 | 1.5 | NO |")
    assert rows["VADER compound rise"].endswith("| 0.400 | 0.400 | 0.400 | 0.3 | yes |")
    assert rows["judge-LM perplexity / reference's"].endswith("| 1.200 | 1.600 | 1.400 | 1.3 | NO |")
    assert rows["distinct-2 / reference's"].endswith("| 0.800 | 0.800 | 0.800 | 0.9 | NO |")


def test_demo_jobs_run_as_processes_and_a_failure_stops_the_demo(tmp_path, capsys):
    ok = demo.Job("a tool that works", "text_envs_agents.cli.train", ["--help"], tmp_path / "ok")
    broken = demo.Job("a tool that fails", "text_envs_agents.cli.train", ["--no-such-flag"], tmp_path / "broken")
    demo.run_jobs([ok], at_once=2)
    assert (
        "usage" in (tmp_path / "ok" / "log.txt").read_text() and "=== a tool that works ===" in capsys.readouterr().out
    )
    with pytest.raises(SystemExit, match="a tool that fails failed .*log: .*broken/log.txt"):
        demo.run_jobs([broken, ok], at_once=1)


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
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from transformers import AutoModelForCausalLM

    train.main(
        ["--iterations", "1", "--batch-size", "4", "--max-new-tokens", "4", "--reward-model", "lexicon"]
        + ["--no-progress-bar", "--output-dir", str(tmp_path / "run"), "--export-dir", str(tmp_path / "export")]
        + ["--eval-samples-per-prompt", "2", "--judge-lm", "", "--also-score", "lexicon"]
    )
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "export").config.model_type == "gpt2"
    assert (tmp_path / "run" / "checkpoint" / "trainer_state.json").is_file()
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for figures in (metrics["before"], metrics["after"]):
        assert figures["completions"] == 128  # 2 per held-out prompt
        assert figures["score[lexicon]_mean"] == pytest.approx(figures["gold_mean"])  # the same scorer twice
        assert figures["score[lexicon]_mean"] == pytest.approx(figures["score_mean"], abs=1e-6)  # and the reward
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard" / "evaluation")).Reload()
    kl = events.Scalars("evaluation/kl")
    assert [(e.step, e.value) for e in kl] == [
        (0, metrics["before"]["kl"]),
        (metrics["history"][-1]["num_timesteps"], pytest.approx(metrics["after"]["kl"])),
    ]


def test_train_refuses_no_evaluation_samples():
    with pytest.raises(SystemExit, match="--eval-samples-per-prompt must be at least 1"):
        train.main(["--eval-samples-per-prompt", "0"])
