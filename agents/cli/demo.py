"""The main job on the embedded defaults, offline: what `make demo` runs (about 6 minutes here).

1. RLHF: ``text-envs-train`` with its defaults, once per seed of ``--seeds``: TextPPO fine-tunes the embedded
   LM to maximise the embedded reward model's score with a KL penalty to the initial LM, then prints the
   before/after table on held-out prompts (4 completions of each of the 64, temperature 1): the reward-model
   score, the round-1 reward model's score beside it, the gold lexicon, KL, length and the independent judges
   of :mod:`text_envs.judges`. A last table sets each seed's figures against the targets of a fluent RLHF run
   (reward-model score up by 1.5 standard deviations of its distribution on the reference's completions,
   VADER up by 0.3, judge-LM perplexity at most 1.3 times the reference's, no more broken text, distinct-2 at
   least 0.9 times the reference's).
2. The classic baseline: ``text-envs-train-tictactoe`` with its defaults (MaskablePPO) and its
   win/draw/loss table against the random and the minimax opponent.

The runs are separate processes, ``--jobs`` at a time (each on one torch thread; the default fits this
machine's two cores), each printed when it ends; their logs stay in ``runs/text/seed_<k>/log.txt`` and
``runs/tictactoe/log.txt`` beside their outputs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from text_envs_agents.cli import train
from text_envs_agents.cli.common import parse

Figures = dict[str, float]


@dataclass(frozen=True)
class Target:
    """One target of the demo's RLHF run: a figure of the before/after evaluation and the bound it must meet."""

    name: str
    measure: Callable[[Figures, Figures], float]
    bound: float
    at_least: bool  # the figure must be >= bound (else <= bound)

    def met(self, value: float) -> bool:
        return value >= self.bound if self.at_least else value <= self.bound


TARGETS = (
    Target(
        "reward-model score rise (std of the reference's)",
        lambda b, a: (a["score_mean"] - b["score_mean"]) / b["score_std"],
        1.5,
        True,
    ),
    Target("VADER compound rise", lambda b, a: a["vader_mean"] - b["vader_mean"], 0.3, True),
    Target("judge-LM perplexity / reference's", lambda b, a: a["perplexity"] / b["perplexity"], 1.3, False),
    Target("broken-text share minus reference's", lambda b, a: a["broken_share"] - b["broken_share"], 0.0, False),
    Target("distinct-2 / reference's", lambda b, a: a["distinct_2"] / b["distinct_2"], 0.9, True),
)
"""The fluent-RLHF targets, each measured per seed on that seed's held-out completions."""
ROUND1 = "default-round1"
TEXT_DIR = Path("runs/text")
TICTACTOE_DIR = Path("runs/tictactoe")


@dataclass
class Args:
    seeds: tuple[int, ...] = (0, 1, 2)
    """seeds of the RLHF runs (each trains and evaluates on its own)"""
    jobs: int = 2
    """runs at a time, each a process on one torch thread"""


@dataclass(frozen=True)
class Job:
    """One run of the demo: a console tool's module, its flags, and where its output goes."""

    title: str
    module: str
    argv: list[str]
    output_dir: Path


def jobs_of(args: Args) -> list[Job]:
    """The RLHF run of every seed, then the Tic-Tac-Toe run."""
    text = [
        Job(
            f"RLHF on TextGeneration-v0, seed {seed}: text-envs-train",
            "text_envs_agents.cli.train",
            ["--no-progress-bar", "--seed", str(seed), "--output-dir", str(TEXT_DIR / f"seed_{seed}")]
            + ["--also-score", ROUND1],
            TEXT_DIR / f"seed_{seed}",
        )
        for seed in args.seeds
    ]
    tictactoe = Job(
        "Tic-Tac-Toe: text-envs-train-tictactoe",
        "text_envs_agents.cli.train_tictactoe",
        ["--no-progress-bar", "--output-dir", str(TICTACTOE_DIR)],
        TICTACTOE_DIR,
    )
    return [*text, tictactoe]


def run_jobs(jobs: list[Job], at_once: int) -> None:
    """Run ``jobs`` as processes, ``at_once`` at a time, printing each one's log when it ends; stop at a failure."""
    pending, running = list(jobs), []
    while pending or running:
        while pending and len(running) < at_once:
            job = pending.pop(0)
            job.output_dir.mkdir(parents=True, exist_ok=True)
            log = open(job.output_dir / "log.txt", "w")
            command = [sys.executable, "-m", job.module, *job.argv]
            running.append((job, log, subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)))
        time.sleep(1)
        for entry in [entry for entry in running if entry[2].poll() is not None]:
            job, log, process = entry
            running.remove(entry)
            log.close()
            print(f"\n=== {job.title} ===\n", flush=True)
            print((job.output_dir / "log.txt").read_text(), flush=True)
            if process.returncode:
                for _, other, rest in running:
                    rest.kill()
                    other.close()
                raise SystemExit(f"{job.title} failed (exit {process.returncode}); log: {job.output_dir / 'log.txt'}")


def print_targets(runs: dict[int, tuple[Figures, Figures]]) -> None:
    """Each seed's figure for each target, their mean, the bound and whether the mean meets it."""
    seeds = sorted(runs)
    print("\n| target | " + " | ".join(f"seed {seed}" for seed in seeds) + " | mean | bound | met |")
    print("|---|" + "---:|" * (len(seeds) + 3))
    for target in TARGETS:
        try:
            values = [target.measure(*runs[seed]) for seed in seeds]
        except KeyError as missing:  # a judge that did not run (no VADER, no judge LM)
            print(f"| {target.name} | not measured: no {missing} figure |")
            continue
        mean = sum(values) / len(values)
        cells = " | ".join(f"{value:.3f}" for value in values)
        print(f"| {target.name} | {cells} | {mean:.3f} | {target.bound:g} | {'yes' if target.met(mean) else 'NO'} |")
    before_and_after = [runs[seed] for seed in seeds]
    key = train.also_score_key(ROUND1)
    if all(f"{key}_mean" in b for b, _ in before_and_after):
        rises = [(a[f"{key}_mean"] - b[f"{key}_mean"]) / b[f"{key}_std"] for b, a in before_and_after]
        print(
            "\nthe round-1 reward model's score (not trained against) rose by "
            + ", ".join(f"{rise:.2f}" for rise in rises)
            + " standard deviations of its distribution on the reference's completions"
        )


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(Args, argv, __doc__)
    if args.jobs < 1:
        raise SystemExit(f"--jobs must be at least 1, got {args.jobs}")
    run_jobs(jobs_of(args), args.jobs)
    runs = {}
    for seed in args.seeds:
        metrics = json.loads((TEXT_DIR / f"seed_{seed}" / "metrics.json").read_text())
        runs[seed] = (metrics["before"], metrics["after"])
    print("\n=== RLHF targets: held-out prompts, 4 completions each, per seed ===")
    print_targets(runs)


if __name__ == "__main__":
    main()
