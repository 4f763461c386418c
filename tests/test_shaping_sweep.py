"""The shaping sweep end to end on tiny settings: the judged columns, the reference row, resuming, older rows."""

import csv
import json
import math

from text_envs.defaults import DEFAULT_LM_DIR
from text_envs.judges import JUDGED
from text_envs_agents.cli import shaping_sweep

TINY = ["--stacks", "--iterations", "2", "--batch-size", "4", "--max-new-tokens", "4", "--samples-per-prompt", "2"]


def test_the_sweep_judges_every_cell_beside_the_reference_and_resumes(tmp_path, capsys, monkeypatch, one_torch_thread):
    output = tmp_path / "sweep"
    shaping_sweep.main([*TINY, "--betas", "0.1", "--judge-lm", str(DEFAULT_LM_DIR), "--output-dir", str(output)])
    rows = [json.loads(line) for line in (output / "results.jsonl").read_text().splitlines()]
    assert [(row["beta"], row["seed"]) for row in rows] == [(math.inf, None), (0.1, 0)]  # the reference first
    reference, cell = rows
    for row in rows:
        assert set(JUDGED) <= set(row) and row["judge_lm"] == "lm"
        assert row["completions"] == 2 * 64  # every held-out prompt twice
        assert 1.0 < row["perplexity"] < 1e6 and 0.0 <= row["broken_share"] <= 1.0
    assert reference["kl"] == 0.0 and reference["train_seconds"] == 0.0 and cell["kl"] != 0.0
    assert reference["score_mean"] != cell["score_mean"]  # trained: other completions
    printed = capsys.readouterr().out
    assert "the judge LM is a copy of the embedded LM every cell starts from" in printed
    assert f"| {JUDGED['vader_mean']} | {JUDGED['perplexity']}, judged by lm |" in printed
    assert "| ∞ (reference: the untrained LM) | - | - |" in printed
    assert (output / "sweep.png").stat().st_size > 0

    # An older sweep's row (no judged figures) for another β: resumed, not rerun; its judged columns are blank.
    old = {k: cell[k] for k in ("shaping", "seed", "score_mean", "score_std", "gold_mean", "kl", "completion_length")}
    with open(output / "results.jsonl", "a") as f:
        f.write(json.dumps({**old, "beta": 0.3, "train_seconds": 1.0}) + "\n")

    def no_training(*args, **kwargs):
        raise AssertionError("a finished cell ran again")

    monkeypatch.setattr(shaping_sweep, "run_cell", no_training)
    shaping_sweep.main([*TINY, "--betas", "0.1", "0.3", "--judge-lm", "", "--output-dir", str(output)])
    printed = capsys.readouterr().out
    assert "0 cells to run, 3 already in" in printed
    assert f"{JUDGED['perplexity']}, judged by lm |" in printed  # the rows' judge, though none was asked for now
    with open(output / "results.csv") as f:
        csv_rows = list(csv.DictReader(f))
    assert [(row["beta"], row["seed"]) for row in csv_rows] == [("inf", ""), ("0.1", "0"), ("0.3", "0")]
    assert all(csv_rows[2][key] == "" for key in (*JUDGED, "judge_lm")) and csv_rows[2]["gold_mean"] != ""
    assert csv_rows[1]["perplexity"] == str(cell["perplexity"])


def test_without_a_judge_lm_the_table_says_there_is_no_perplexity(tmp_path, capsys, one_torch_thread):
    missing = tmp_path / "no_model_here"
    shaping_sweep.main([*TINY, "--betas", "--judge-lm", str(missing), "--output-dir", str(tmp_path / "sweep")])
    printed = capsys.readouterr().out
    assert f"no perplexity: no judge LM: {missing} did not load (OSError:" in printed
    assert f"| {JUDGED['perplexity']}: none (no judge LM: {missing} did not load" in printed
    (reference,) = [json.loads(line) for line in (tmp_path / "sweep" / "results.jsonl").read_text().splitlines()]
    assert "perplexity" not in reference and {"vader_mean", "broken_share", "distinct_2"} <= set(reference)
    assert reference["judge_lm"].startswith("no judge LM:")
