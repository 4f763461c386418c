"""The benchmark: a tiny spec end to end, resuming without retraining, the confidence intervals, and spec errors."""

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from text_envs_agents.benchmark import (
    BenchmarkSpec,
    SpecError,
    confidence_interval,
    load_spec,
    markdown_table,
    registry,
    run_benchmark,
    spec_from_mapping,
    t_quantile_975,
)
from text_envs_agents.benchmark.results import ResultsStore

TINY = {
    "agents": ["random", "minimax", "q-learning"],
    "envs": ["TicTacToe-v0", "TicTacToeText-v0"],
    "seeds": [0, 1],
    "episodes": 10,
    "budgets": {"q-learning": 5000},
}
SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "benchmark.py"


def test_tiny_benchmark_writes_every_output_then_resumes_without_training(tmp_path, monkeypatch, one_torch_thread):
    spec = spec_from_mapping(TINY)
    messages: list[str] = []
    run = run_benchmark(spec, tmp_path, progress_bar=False, log=messages.append)

    # random and minimax fit both envs, q-learning only the numeric one: 5 pairs x 2 seeds.
    assert len(run.cells) == len(run.ran) == 10
    assert "skipping q-learning on TicTacToeText-v0: it fits only TicTacToe-v0" in messages
    for name in ("results.json", "results.csv", "table.md", "final_scores.png", "learning_curves.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    with open(tmp_path / "results.csv") as f:
        csv_rows = list(csv.DictReader(f))
    assert len(csv_rows) == 10
    assert {(row["agent"], row["env"]) for row in csv_rows} == {
        (agent, f"text_envs/{env}")
        for agent, env in [
            ("random", "TicTacToe-v0"),
            ("random", "TicTacToeText-v0"),
            ("minimax", "TicTacToe-v0"),
            ("minimax", "TicTacToeText-v0"),
            ("q-learning", "TicTacToe-v0"),
        ]
    }
    for row in run.rows:
        assert row["win"] + row["draw"] + row["loss"] == pytest.approx(1.0)
        assert row["score"] == pytest.approx(row["win"] - row["loss"])
        assert (row["loss"] == 0.0) if row["agent"] == "minimax" else True  # perfect play never loses
    curve = next(row["curve"] for row in run.rows if row["agent"] == "q-learning")
    assert curve[0][0] == 0 and curve[-1][0] >= 5000 and len(curve) >= 10  # from the untrained agent to the budget

    # The table's score is the mean ± t-interval of the seeds' scores.
    minimax = [r["score"] for r in run.rows if r["agent"] == "minimax" and r["env"] == "text_envs/TicTacToe-v0"]
    mean, half_width = confidence_interval(minimax)
    assert f"| minimax | - | 2 | **{mean:.3f} ± {half_width:.3f}** |" in (tmp_path / "table.md").read_text()

    # Rerun: every cell is found, nothing is trained or evaluated again, the rows are the same.
    def no_training(*args, **kwargs):
        raise AssertionError("a finished cell was trained again")

    monkeypatch.setattr(registry, "train_tictactoe_agent", no_training)
    again = run_benchmark(spec, tmp_path, progress_bar=False, log=messages.append)
    assert again.ran == [] and again.rows == run.rows
    assert "0 of 10 cells to run" in messages[-1]

    # A cell missing from the results (as after a crash) is the only one run again, with the same outcome.
    lost = run.cells[1]
    rows = json.loads((tmp_path / "results.json").read_text())
    kept = [row for row in rows if (row["agent"], row["env"], row["seed"]) != (lost.agent, lost.env_id, lost.seed)]
    (tmp_path / "results.json").write_text(json.dumps(kept))
    resumed = run_benchmark(spec, tmp_path, progress_bar=False, log=messages.append)
    assert resumed.ran == [lost]
    assert resumed.rows[1]["score"] == run.rows[1]["score"]

    # A new budget makes new cells: the q-learning ones would run again.
    bigger = spec_from_mapping({"budgets": {"q-learning": 6000}}, base=spec)
    store = ResultsStore(tmp_path)
    assert [cell.agent for cell in bigger.cells()[0] if cell not in store] == ["q-learning", "q-learning"]


def test_confidence_interval_against_a_hand_computation():
    # mean 2.5, sample std sqrt(5/3), t(0.975, 3 df) = 3.182446: half-width 3.182446 * 1.290994 / 2
    mean, half_width = confidence_interval([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and half_width == pytest.approx(2.0542600, abs=1e-6)
    assert confidence_interval([0.5, 0.5, 0.5]) == (0.5, 0.0)
    single_mean, single_width = confidence_interval([0.7])
    assert single_mean == 0.7 and math.isnan(single_width)
    with pytest.raises(ValueError, match="no values"):
        confidence_interval([])


def test_t_quantiles_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    for degrees_of_freedom in range(1, 300):
        assert t_quantile_975(degrees_of_freedom) == pytest.approx(stats.t.ppf(0.975, degrees_of_freedom), abs=2e-6)


def test_one_seed_is_marked_n_1():
    spec = spec_from_mapping({"agents": ["random"], "envs": ["TicTacToe-v0"], "seeds": [3]})
    cells, _ = spec.cells()
    row = {"score": 0.25, "win": 0.5, "draw": 0.25, "loss": 0.25, "illegal": 0.0, "budget": None, "episodes": 1000}
    table = markdown_table(cells, [{**row, "train_seconds": 0.0}])
    assert "| random | - | 1 | **0.250** (n=1) | 0.500 |" in table


@pytest.mark.parametrize(
    "data, message",
    [
        ({"agent": ["random"]}, r"unknown key\(s\) \['agent'\]"),
        ({"agents": ["alphazero"]}, "unknown agent 'alphazero'"),
        ({"agents": "random"}, "'agents' must be a non-empty list"),
        ({"envs": ["Chess-v0"]}, "unknown env 'Chess-v0'"),
        ({"seeds": [0, 0]}, "'seeds' must be a non-empty list of distinct integers"),
        ({"seeds": [0.5]}, "'seeds' must be"),
        ({"seeds": 3}, "'seeds' must be"),
        ({"episodes": 1}, "'episodes' must be an integer of at least 2"),
        ({"episodes": {"TicTacToe-v0": "many"}}, "'episodes' of TicTacToe-v0 must be an integer"),
        ({"budgets": {"random": 10}}, "'random', which is not a trained agent"),
        ({"budgets": {"q-learning": 0}}, "the budget of q-learning must be an integer of at least 1"),
        ({"threads": 0}, "'threads' must be an integer of at least 1"),
        ([1, 2], "a spec must be a table/object"),
    ],
)
def test_bad_specs_name_the_problem(data, message):
    with pytest.raises(SpecError, match=message):
        spec_from_mapping(data, "my.json")


def test_an_agent_named_for_envs_it_does_not_fit_is_an_error_unnamed_ones_are_left_out():
    every_agent = spec_from_mapping({"envs": ["TicTacToeText-v0"], "seeds": [0]})
    cells, skipped = every_agent.cells()
    assert [cell.agent for cell in cells] == ["random", "minimax", "default-lm"] and skipped == []
    spec = spec_from_mapping({"agents": ["random", "textppo"], "envs": ["TicTacToe-v0"]})
    with pytest.raises(
        SpecError, match="agent 'textppo' fits none of the envs TicTacToe-v0; it fits TextGeneration-v0"
    ):
        spec.cells()


def test_spec_files(tmp_path):
    toml = tmp_path / "spec.toml"
    toml.write_text(
        'agents = ["minimax"]\nenvs = ["TicTacToeText-v0"]\nseeds = [4, 5]\n[episodes]\nTicTacToeText-v0 = 6\n'
    )
    spec = load_spec(toml)
    assert spec == BenchmarkSpec(
        agents=("minimax",),
        envs=("text_envs/TicTacToeText-v0",),
        seeds=(4, 5),
        episodes={"text_envs/TicTacToeText-v0": 6},
    )
    assert [cell.episodes for cell in spec.cells()[0]] == [6, 6]
    bad_json = tmp_path / "spec.json"
    bad_json.write_text('{"agents": ["random"],\n "seeds": [0,, 1]}')
    with pytest.raises(SpecError, match=r"spec.json:2: invalid JSON"):
        load_spec(bad_json)
    with pytest.raises(SpecError, match="must end in .json or .toml"):
        load_spec(toml.rename(tmp_path / "spec.yaml"))
    with pytest.raises(SpecError, match="no spec file at"):
        load_spec(tmp_path / "missing.json")


def test_script_rejects_a_spec_that_cannot_run(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--agents",
            "q-learning",
            "--envs",
            "TextGeneration-v0",
            "--output-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "agent 'q-learning' fits none of the envs TextGeneration-v0; it fits TicTacToe-v0" in result.stderr
    assert not (tmp_path / "results.json").exists()
