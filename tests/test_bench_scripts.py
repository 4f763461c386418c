"""The bench scripts' fairness plumbing (interleaved trials, ratio summaries) and check_gpu.py end to end on the CPU."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS))

import paired_trials  # noqa: E402  (a script-folder module)


def test_trials_alternate_which_contender_goes_first():
    calls: list[tuple[str, int]] = []

    def trial(name: str, rate: float):
        def run(index: int) -> float:
            calls.append((name, index))
            return rate

        return run

    rates = paired_trials.interleaved_rates({"a": trial("a", 2.0), "b": trial("b", 1.0), "c": trial("c", 4.0)}, 3)
    assert calls == [("a", 0), ("b", 0), ("c", 0), ("c", 1), ("b", 1), ("a", 1), ("a", 2), ("b", 2), ("c", 2)]
    assert rates == {"a": [2.0] * 3, "b": [1.0] * 3, "c": [4.0] * 3}


def test_ratio_summary_pairs_trials_of_the_same_round():
    summary = paired_trials.ratio_summary([2.0, 3.0, 9.0, 4.0, 5.0], [1.0, 3.0, 3.0, 1.0, 10.0])
    assert summary["per_pair"] == [2.0, 1.0, 3.0, 4.0, 0.5]
    assert summary["median"] == 2.0
    assert summary["range"] == [0.5, 4.0]
    with pytest.raises(ValueError):
        paired_trials.ratio_summary([1.0, 2.0], [1.0])


def test_cuda_refused_up_front_without_it(monkeypatch):
    monkeypatch.setattr(paired_trials.torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="--device: device=.cuda. asks for CUDA, which this machine lacks"):
        paired_trials.bench_device("cuda")
    assert paired_trials.bench_device("auto").type == "cpu"


def test_check_gpu_quick_on_the_cpu(tmp_path):
    """The whole GPU check at toy size, from a working directory outside the checkout: every part runs, and the
    figures it writes hang together (random weights never sample EOS here, so both sides of each comparison
    generate exactly max-new-tokens tokens)."""
    completed = subprocess.run(
        [sys.executable, str(SCRIPTS / "check_gpu.py"), "--device", "cpu", "--quick", "--output-dir", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    report = json.loads((tmp_path / "check_gpu.json").read_text())
    assert report["dtype"] == "float32"

    rollout = report["rollout"]
    assert set(rollout["ratio_to_generate"]) >= {"generate", "TextPPO rollout"}
    for path, ratios in rollout["ratio_to_generate_per_pair"].items():
        assert len(ratios) == 2
        assert rollout["ratio_to_generate"][path] == pytest.approx(statistics.median(ratios))
        assert rollout["ratio_to_generate_range"][path] == [min(ratios), max(ratios)]
    assert rollout["steps_per_batch"] == {"generate": 8.0, "TextPPO rollout": 8.0}

    ppo = report["ppo"]
    assert "trl_error" not in ppo, ppo.get("trl_error")
    ratios = ppo["ratio_text_ppo_over_trl_per_pair"]
    expected = [
        a / b
        for a, b in zip(
            ppo["text_ppo"]["completions_per_second_per_pair"],
            ppo["trl"]["completions_per_second_per_pair"],
            strict=True,
        )
    ]
    assert ratios == pytest.approx(expected) and len(ratios) == 2
    assert ppo["ratio_text_ppo_over_trl"] == pytest.approx(statistics.median(ratios))
    assert ppo["text_ppo"]["mean_completion_tokens"] == ppo["trl"]["mean_completion_tokens"] == 8.0

    training = report["training"]
    assert len(training["history"]) == training["iterations"] == 2
    assert all(seconds > 0 for seconds in training["seconds_per_iteration"])


def test_game_window_model_is_the_embedded_lm_on_its_first_128_positions(tmp_path):
    import bench_tictactoe_lm
    import torch

    from text_envs.lm import load_causal_lm

    extended = load_causal_lm(bench_tictactoe_lm.game_window_gpt2(tmp_path / "model"))
    embedded = load_causal_lm(None)
    assert extended.config.n_positions == 512
    ids = torch.arange(3, 131)[None]  # 128 tokens
    with torch.no_grad():
        assert torch.equal(extended(ids).logits, embedded(ids).logits)
        assert extended(torch.arange(3, 403)[None]).logits.shape[1] == 400  # a whole game, past the embedded 128


def test_bench_tictactoe_lm_runs_interleaved_pairs_from_one_warm_start(tmp_path):
    import bench_tictactoe_lm

    args = bench_tictactoe_lm.Args(
        warm_start_games=4, warm_start_epochs=1, rl_games=16, pairs=2, eval_games=4, output_dir=str(tmp_path / "run")
    )
    result = bench_tictactoe_lm.main(args)
    figures = result["figures"]
    assert list(figures) == ["warm start", "textppo", "sb3-ppo"]
    assert all(row["games"] == 4 for row in figures.values())
    per_pair = result["ratio_textppo_over_sb3_per_pair"]
    assert len(per_pair) == 2 and result["ratio_textppo_over_sb3"] == statistics.median(per_pair)
    for algo in ("textppo", "sb3-ppo"):  # each trial started from the one warm-started folder and saved its own
        for pair in (0, 1):
            results = json.loads((tmp_path / "run" / f"{algo}_pair{pair}" / "results.json").read_text())
            assert results["config"]["model"].endswith("warm_start") and results["config"]["seed"] == pair
            assert (tmp_path / "run" / f"{algo}_pair{pair}" / "rl" / "config.json").exists()
