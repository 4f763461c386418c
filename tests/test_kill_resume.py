"""Kill tests: a child process SIGKILLed at every file-system step of a TextPPO save and of the benchmark's results
writes, chosen by fault injection (not a timed kill), then load/resume compared with an uninterrupted run.

The child script imports and trains once, then forks one grandchild per kill point; the grandchild wraps the
``os`` calls a write goes through (``fsync``, ``rename``, ``replace``, ``unlink``, ``rmdir``), counts them, and
kills itself before the chosen one. At an ``fsync`` of a file it first cuts the file to half its size, as a
write torn by the crash would leave it. Kill points run from 1 until a save finishes before reaching its point,
so every step of the write is hit whatever their number.
"""

import csv
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from text_envs import TextGenerationVectorEnv
from text_envs.rewards.lexicon import lexicon_sentiment_reward
from text_envs_agents.benchmark import run_benchmark, spec_from_mapping
from text_envs_agents.benchmark.results import TIMING_FIELDS, rows_to_csv
from text_envs_agents.text_ppo import TextPPO, TextPPOConfig

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.skipif(sys.platform != "linux", reason="fork, SIGKILL and /proc/self/fd"),
]

CONFIG = TextPPOConfig(seed=3, ppo_epochs=1, minibatch_size=2)
BENCHMARK = {"agents": ["random", "q-learning"], "envs": ["TicTacToe-v0"], "seeds": [0], "episodes": 4}
BENCHMARK_BUDGETS = {"q-learning": 200}

KILLER = """
import os, signal, sys, json, shutil
from pathlib import Path
import torch
torch.set_num_threads(1)

def arm(kill_at):
    count = [0]
    for name in ("fsync", "rename", "replace", "unlink", "rmdir"):
        def wrapped(*args, _real=getattr(os, name), _name=name, **kwargs):
            count[0] += 1
            if count[0] == kill_at:
                if _name == "fsync":
                    path = os.readlink(f"/proc/self/fd/{args[0]}")
                    if os.path.isfile(path):
                        os.truncate(path, os.path.getsize(path) // 2)
                os.kill(os.getpid(), signal.SIGKILL)
            return _real(*args, **kwargs)
        setattr(os, name, wrapped)

def kill_each_step(prepare, write):
    '''prepare(k) makes kill point k's folder; write(k) does the write there; the kill points that were hit.'''
    killed = []
    for kill_at in range(1, 200):
        prepare(kill_at)
        pid = os.fork()
        if pid == 0:
            arm(kill_at)
            write(kill_at)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        if not os.WIFSIGNALED(status):
            assert os.WEXITSTATUS(status) == 0, status
            return killed
        assert os.WTERMSIG(status) == signal.SIGKILL
        killed.append(kill_at)
    raise AssertionError("the write never finished")

work = Path(sys.argv[1])
"""

TEXT_PPO_CHILD = """
from text_envs import TextGenerationVectorEnv
from text_envs.rewards.lexicon import lexicon_sentiment_reward
from text_envs_agents.text_ppo import TextPPO, TextPPOConfig

trainer = TextPPO(
    TextGenerationVectorEnv(2, reward_model=lexicon_sentiment_reward, max_new_tokens=4),
    config=TextPPOConfig(**json.loads(sys.argv[2])),
)
trainer.learn(iterations=1).save(work / "previous")
trainer.learn(iterations=1)  # the save that gets killed writes iteration 2 over iteration 1

def prepare(kill_at):
    shutil.copytree(work / "previous", work / f"kill{kill_at}" / "checkpoint")

killed = kill_each_step(prepare, lambda kill_at: trainer.save(work / f"kill{kill_at}" / "checkpoint"))
print(json.dumps(killed))
"""

BENCHMARK_CHILD = """
from text_envs_agents.benchmark import run_benchmark, runner, spec_from_mapping

runner.plot_final_scores = runner.plot_learning_curves = lambda *args: False  # figures are not under test here

spec = spec_from_mapping({**json.loads(sys.argv[2]), "budgets": json.loads(sys.argv[3])})
killed = kill_each_step(
    lambda kill_at: None,
    lambda kill_at: run_benchmark(spec, work / f"kill{kill_at}", progress_bar=False, log=lambda message: None),
)
print(json.dumps(killed))
"""


def run_child(script: str, tmp_path: Path, *arguments: str) -> list[int]:
    """Run KILLER + ``script`` in a fresh interpreter; the kill points it hit."""
    path = tmp_path / "child.py"
    path.write_text(textwrap.dedent(KILLER) + textwrap.dedent(script))
    done = subprocess.run(
        [sys.executable, str(path), str(tmp_path), *arguments], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def make_env():
    return TextGenerationVectorEnv(2, reward_model=lexicon_sentiment_reward, max_new_tokens=4)


def parameters(trainer):
    return [p.detach().clone() for p in trainer.policy.parameters()]


def test_a_killed_save_leaves_the_previous_or_the_new_checkpoint_and_resumes_as_if_uninterrupted(tmp_path):
    reference = TextPPO(
        TextGenerationVectorEnv(2, reward_model=lexicon_sentiment_reward, max_new_tokens=4), config=CONFIG
    )
    after = {}  # iteration -> parameters of the uninterrupted run
    for iteration in (1, 2, 3):
        after[iteration] = parameters(reference.learn(iterations=1))
    config = {name: getattr(CONFIG, name) for name in ("seed", "ppo_epochs", "minibatch_size")}
    killed = run_child(TEXT_PPO_CHILD, tmp_path, json.dumps(config))
    assert len(killed) >= 10  # files, folders, renames and removals: every step was hit
    loaded_iterations = set()
    for kill_at in killed:
        checkpoint = tmp_path / f"kill{kill_at}" / "checkpoint"
        trainer = TextPPO.load(checkpoint)
        iteration = trainer.iteration
        assert iteration in (1, 2), kill_at
        loaded_iterations.add(iteration)
        for a, b in zip(after[iteration], parameters(trainer), strict=True):
            assert torch.equal(a, b), kill_at
        trainer.learn(iterations=1)  # a mix of weights, optimizer, RNG or counter would part from the reference
        for a, b in zip(after[iteration + 1], parameters(trainer), strict=True):
            assert torch.equal(a, b), kill_at
        trainer.save(checkpoint)  # the next save recovers whatever the kill left beside the folder
        assert TextPPO.load(checkpoint).iteration == iteration + 1
        assert sorted(path.name for path in checkpoint.parent.iterdir()) == ["checkpoint"], kill_at
    assert loaded_iterations == {1, 2}  # kills both before and after the new checkpoint took the folder's place


def without_timings(rows):
    return [{key: value for key, value in row.items() if key not in TIMING_FIELDS} for row in rows]


def test_a_killed_benchmark_resumes_and_its_json_and_csv_agree(tmp_path, monkeypatch):
    from text_envs_agents.benchmark import runner

    for figure in ("plot_final_scores", "plot_learning_curves"):
        monkeypatch.setattr(runner, figure, lambda *args: False)
    spec = spec_from_mapping({**BENCHMARK, "budgets": BENCHMARK_BUDGETS})
    expected = without_timings(
        run_benchmark(spec, tmp_path / "uninterrupted", progress_bar=False, log=lambda message: None).rows
    )
    killed = run_child(BENCHMARK_CHILD, tmp_path, json.dumps(BENCHMARK), json.dumps(BENCHMARK_BUDGETS))
    assert len(killed) >= 12  # two cells' json and csv writes, then the table
    lagging = 0
    for kill_at in killed:
        output = tmp_path / f"kill{kill_at}"
        json_path, csv_path = output / "results.json", output / "results.csv"
        if json_path.exists():
            rows = json.loads(json_path.read_text())  # never torn
            assert without_timings(rows) == expected[: len(rows)], kill_at
            lagging += csv_path.exists() and len(list(csv.DictReader(csv_path.open()))) < len(rows)
        run = run_benchmark(spec, output, progress_bar=False, log=lambda message: None)
        assert without_timings(run.rows) == expected, kill_at
        rows = json.loads(json_path.read_text())
        assert csv_path.read_bytes() == rows_to_csv(rows).encode(), kill_at
        assert [row["seed"] for row in csv.DictReader(csv_path.open())] == [str(row["seed"]) for row in rows]
    assert lagging >= 1  # some kill fell between a cell's json and csv writes, and the csv was repaired
