"""Running a benchmark spec: every cell not already in the results, then the table and the figures."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from text_envs.durable import write_atomic
from text_envs.judges import DEFAULT_JUDGE_LM
from text_envs_agents.benchmark.plots import plot_final_scores, plot_learning_curves
from text_envs_agents.benchmark.registry import AGENTS, ENVS, CellContext
from text_envs_agents.benchmark.results import ResultsStore, cell_row, markdown_table
from text_envs_agents.benchmark.spec import BenchmarkSpec, Cell


@dataclass
class BenchmarkRun:
    """What :func:`run_benchmark` did: the spec's cells with their rows, and which cells it ran this time."""

    cells: list[Cell]
    rows: list[dict[str, Any]]
    ran: list[Cell]
    skipped_pairs: list[str]
    files: list[Path]


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def run_cell(cell: Cell, threads: int, judge_lm: str | None = DEFAULT_JUDGE_LM) -> dict[str, Any]:
    """Train (if the agent needs it) and evaluate one cell; its result row, learning curve included.

    torch runs on one thread for envs of small models (Tic-Tac-Toe MLPs are fastest so) and on
    ``threads`` otherwise; its global RNG is seeded with the cell's seed. ``judge_lm`` judges the
    fluency of a TextGeneration-v0 cell (None: no perplexity).
    """
    start = time.perf_counter()
    with torch_threads(1 if ENVS[cell.env_id].small_models else threads):
        torch.manual_seed(cell.seed)
        result = AGENTS[cell.agent].runners[cell.env_id](
            CellContext(cell.seed, cell.episodes, cell.budget, cell.model, judge_lm)
        )
    return {
        **cell_row(cell),
        **result.metrics,
        "train_seconds": result.train_seconds,
        "seconds": time.perf_counter() - start,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "curve": [[int(x), float(y)] for x, y in result.curve],
    }


def run_benchmark(
    spec: BenchmarkSpec,
    output_dir: str | Path,
    progress_bar: bool = True,
    log: Callable[[str], None] = tqdm.write,
) -> BenchmarkRun:
    """Run every cell of ``spec`` missing from ``output_dir``'s results, then write the table and the figures.

    Each finished cell is saved at once (:class:`~text_envs_agents.benchmark.results.ResultsStore`), so an
    interrupted run resumes where it stopped; cells already there are skipped. Writes
    ``results.json``, ``results.csv``, ``table.md``, ``final_scores.png`` and, when a trained agent
    is in the spec, ``learning_curves.png``.
    """
    output_dir = Path(output_dir)
    cells, skipped_pairs = spec.cells()
    for message in skipped_pairs:
        log(message)
    output_dir.mkdir(parents=True, exist_ok=True)
    store = ResultsStore(output_dir)
    todo = [cell for cell in cells if cell not in store]
    log(f"{len(todo)} of {len(cells)} cells to run ({len(cells) - len(todo)} already in {store.json_path})")
    with tqdm(todo, disable=not progress_bar, unit="cell", dynamic_ncols=True) as bar:
        for cell in bar:
            bar.set_description(cell.name)
            row = run_cell(cell, spec.threads, spec.judge_lm)
            store.add(row)
            log(f"{cell.name}: score {row['score']:.3f} ({row['seconds']:.0f} s)")
    rows = [store[cell] for cell in cells]
    table, final_scores = output_dir / "table.md", output_dir / "final_scores.png"
    write_atomic(table, markdown_table(cells, rows))
    plot_final_scores(cells, rows, final_scores)
    files = [store.json_path, store.csv_path, table, final_scores]
    if plot_learning_curves(cells, rows, output_dir / "learning_curves.png"):
        files.append(output_dir / "learning_curves.png")
    return BenchmarkRun(cells, rows, todo, skipped_pairs, files)
