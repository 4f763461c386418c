"""Benchmark every agent on every env it fits: train, evaluate over seeds, write results, a table and plots.

    text-envs-benchmark                         # the default spec: every env, every agent that fits it
    text-envs-benchmark --quick                 # every cell with tiny budgets and 2 seeds: a smoke test
    text-envs-benchmark --spec spec.json --output-dir runs/my_benchmark      # or a .toml spec
    text-envs-benchmark --agents random minimax q-learning --envs TicTacToe-v0 --seeds 0 1 2 3 4 5 6 7
    text-envs-benchmark --budgets maskable-ppo 200000 --episodes 2000
    text-envs-benchmark --agents default-lm textppo --model smollm2-135m-instruct   # a registered LM
    text-envs-benchmark --agents textppo sb3-ppo sb3-a2c rllib-ppo --envs TextGeneration-v0   # the RLHF trainers
    text-envs-benchmark --list                  # the agents, the envs each fits, their default budgets

Flags override the keys of ``--spec`` (or of the quick spec); an empty flag keeps the spec's value. Each
finished cell is saved at once, so rerunning the same command skips the finished cells and runs the rest.
Writes ``results.json``, ``results.csv``, ``table.md``, ``final_scores.png`` and ``learning_curves.png`` to
``--output-dir``. The spec format, the agents, the metrics and the confidence intervals are described in
:mod:`text_envs_agents.benchmark`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from text_envs_agents.cli.common import parse


@dataclass
class Args:
    spec: str = ""
    """a .json or .toml spec file (empty: the built-in spec)"""
    quick: bool = False
    """the quick spec: every cell with tiny budgets and 2 seeds (not with --spec)"""
    agents: tuple[str, ...] = ()
    """agent names, e.g. random q-learning (empty: the spec's; the built-in spec: every agent that fits its envs)"""
    envs: tuple[str, ...] = ()
    """env ids, e.g. TicTacToe-v0 TextGeneration-v0 (empty: the spec's; the built-in spec: every env)"""
    seeds: tuple[int, ...] = ()
    """seeds, e.g. 0 1 2 (empty: the spec's; the built-in spec: 0 1 2 3 4)"""
    episodes: int = 0
    """evaluation episodes per cell, for every env (0: the spec's, per env)"""
    budgets: dict[str, int] = field(default_factory=dict)
    """training budgets as agent-budget pairs, e.g. q-learning 200000 textppo 10 (empty: the spec's)"""
    threads: int = 0
    """torch threads of the LLM cells (0: the spec's; the built-in spec: 1)"""
    model: str = ""
    """the LM agents' model: a registered name (e.g. smollm2-135m-instruct), Hub name or folder (empty: the spec's;
    the built-in spec: the embedded LM)"""
    output_dir: str = "runs/benchmark"
    """results, table and plots (finished cells there are skipped)"""
    progress_bar: bool = True
    """show a progress bar per cell"""
    list: bool = False
    """list the agents and the envs each fits, then exit"""


def spec_from_args(args: Args) -> Any:
    """The :class:`~text_envs_agents.benchmark.BenchmarkSpec` the flags name, checked; :class:`SpecError` if not."""
    from text_envs_agents.benchmark import QUICK_SPEC, BenchmarkSpec, SpecError, load_spec
    from text_envs_agents.benchmark.spec import spec_from_mapping

    if args.spec and args.quick:
        raise SpecError("--spec and --quick both name the spec; give one")
    overrides: dict[str, Any] = {
        "agents": list(args.agents) or None,
        "envs": list(args.envs) or None,
        "seeds": list(args.seeds) or None,
        "episodes": args.episodes or None,
        "budgets": dict(args.budgets) or None,
        "threads": args.threads or None,
        "model": args.model or None,
    }
    base = load_spec(args.spec) if args.spec else QUICK_SPEC if args.quick else BenchmarkSpec()
    spec = spec_from_mapping({k: v for k, v in overrides.items() if v is not None}, "command line", base)
    spec.cells()  # a spec that cannot run fails here, with its reason, before any work
    return spec


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(Args, argv, __doc__)
    if args.list:
        from text_envs_agents.benchmark import agents_table

        print(agents_table(), end="")
        return
    from transformers.utils import logging as transformers_logging

    from text_envs_agents.benchmark import SpecError, run_benchmark

    try:
        spec = spec_from_args(args)
    except SpecError as error:
        print(f"text-envs-benchmark: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    transformers_logging.disable_progress_bar()
    start = time.perf_counter()
    run = run_benchmark(spec, args.output_dir, progress_bar=args.progress_bar)
    print("\n" + (Path(args.output_dir) / "table.md").read_text())
    print(f"ran {len(run.ran)} of {len(run.cells)} cells in {time.perf_counter() - start:.0f} s")
    print("wrote " + ", ".join(str(path) for path in run.files))


if __name__ == "__main__":
    main()
