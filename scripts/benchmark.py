"""Benchmark every agent on every env it fits: train, evaluate over seeds, write results, a table and plots.

    python scripts/benchmark.py                       # the default spec: every env, every agent that fits it
    python scripts/benchmark.py --quick               # every cell with tiny budgets and 2 seeds: a smoke test
    python scripts/benchmark.py --spec spec.json --output-dir runs/my_benchmark      # or a .toml spec
    python scripts/benchmark.py --agents random,minimax,q-learning --envs TicTacToe-v0 --seeds 0,1,2,3,4,5,6,7
    python scripts/benchmark.py --budgets maskable-ppo=200000 --episodes 2000
    python scripts/benchmark.py --list                # the agents, the envs each fits, their default budgets

Flags override the keys of ``--spec`` (or of the quick spec). Each finished cell is saved at once, so
rerunning the same command skips the finished cells and runs the rest. Writes ``results.json``,
``results.csv``, ``table.md``, ``final_scores.png`` and ``learning_curves.png`` to ``--output-dir``.
The spec format, the agents, the metrics and the confidence intervals are described in
``agents/benchmark/__init__.py``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from transformers.utils import logging as transformers_logging

from text_envs_agents.benchmark import AGENTS, ENVS, QUICK_SPEC, BenchmarkSpec, SpecError, load_spec, run_benchmark
from text_envs_agents.benchmark.spec import spec_from_mapping


def _list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _seeds(text: str) -> list[int]:
    try:
        return [int(item) for item in _list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be integers separated by commas, got {text!r}") from None


def _budgets(text: str) -> dict[str, int]:
    budgets = {}
    for item in _list(text):
        agent, _, value = item.partition("=")
        try:
            budgets[agent.strip()] = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"budgets are agent=integer pairs, got {item!r}") from None
    return budgets


def parse_args() -> tuple[argparse.Namespace, BenchmarkSpec | None]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--spec", help="a .json or .toml spec file (default: the built-in spec)")
    source.add_argument("--quick", action="store_true", help="every cell with tiny budgets and 2 seeds")
    parser.add_argument("--agents", type=_list, help="comma-separated agent names (default: all)")
    parser.add_argument("--envs", type=_list, help="comma-separated env ids, e.g. TicTacToe-v0 (default: all)")
    parser.add_argument("--seeds", type=_seeds, help="comma-separated seeds (default: 0,1,2,3,4)")
    parser.add_argument("--episodes", type=int, help="evaluation episodes per cell, for every env")
    parser.add_argument("--budgets", type=_budgets, help="training budgets, e.g. q-learning=200000,textppo=10")
    parser.add_argument("--threads", type=int, help="torch threads of the LLM cells (default 1)")
    parser.add_argument("--output-dir", default="runs/benchmark")
    parser.add_argument("--no-progress-bar", dest="progress_bar", action="store_false")
    parser.add_argument("--list", action="store_true", help="list the agents and the envs each fits, then exit")
    args = parser.parse_args()
    if args.list:
        return args, None
    overrides: dict[str, Any] = {
        key: getattr(args, key)
        for key in ("agents", "envs", "seeds", "episodes", "budgets", "threads")
        if getattr(args, key) is not None
    }
    try:
        base = load_spec(args.spec) if args.spec else QUICK_SPEC if args.quick else BenchmarkSpec()
        spec = spec_from_mapping(overrides, "command line", base)
        spec.cells()  # a spec that cannot run fails here, with its reason, before any work
    except SpecError as error:
        parser.error(str(error))
    return args, spec


def print_agents() -> None:
    print("| agent | fits | default budget | description |")
    print("|---|---|---|---|")
    for info in AGENTS.values():
        envs = ", ".join(ENVS[env_id].name for env_id in info.runners)
        budget = "-" if info.default_budget is None else f"{info.default_budget:,} {info.budget_unit}"
        print(f"| {info.name} | {envs} | {budget} | {info.description} |")


def main() -> None:
    args, spec = parse_args()
    if spec is None:
        print_agents()
        return
    transformers_logging.disable_progress_bar()
    start = time.perf_counter()
    run = run_benchmark(spec, args.output_dir, progress_bar=args.progress_bar)
    print("\n" + (Path(args.output_dir) / "table.md").read_text())
    print(f"ran {len(run.ran)} of {len(run.cells)} cells in {time.perf_counter() - start:.0f} s")
    print("wrote " + ", ".join(str(path) for path in run.files))


if __name__ == "__main__":
    main()
