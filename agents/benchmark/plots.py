"""The benchmark's figures: learning curves of the trained agents, and final scores with 95% confidence intervals."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from text_envs_agents.benchmark.registry import AGENTS, ENVS
from text_envs_agents.benchmark.results import confidence_interval
from text_envs_agents.benchmark.spec import Cell


def _pyplot():
    try:
        import matplotlib
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError('the benchmark figures need matplotlib: pip install "text_envs[plot]"') from error

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _color(agent: str) -> str:
    """One color per agent in every panel and figure."""
    return f"C{list(AGENTS).index(agent) % 10}"


def _panels(plt, count: int):
    figure, axes = plt.subplots(1, count, figsize=(4.8 * count, 3.8), constrained_layout=True, squeeze=False)
    return figure, axes[0]


def _groups(cells: Sequence[Cell], rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Rows by env (in the registry's order, as in the table), then by agent (in the order of the cells)."""
    groups: dict[str, dict[str, list[dict[str, Any]]]] = {env_id: {} for env_id in ENVS}
    for cell, row in zip(cells, rows, strict=True):
        groups[cell.env_id].setdefault(cell.agent, []).append(row)
    return {env_id: agents for env_id, agents in groups.items() if agents}


def mean_curve(curves: Sequence[Sequence[Sequence[float]]]) -> tuple[np.ndarray, np.ndarray]:
    """The mean of learning curves ``[(env steps, score), ...]``, each interpolated at every curve's steps.

    Only the steps all curves cover are kept (runs of one budget end at slightly different steps).
    """
    start, end = max(curve[0][0] for curve in curves), min(curve[-1][0] for curve in curves)
    grid = np.unique([x for curve in curves for x, _ in curve if start <= x <= end])
    values = [np.interp(grid, [x for x, _ in curve], [y for _, y in curve]) for curve in curves]
    return grid, np.mean(values, axis=0)


def plot_learning_curves(cells: Sequence[Cell], rows: Sequence[dict[str, Any]], path: Path) -> bool:
    """Score against env steps for every trained agent, a panel per env: thin lines per seed, a thick mean.

    Returns False (and writes nothing) when no cell has a curve.
    """
    groups = {
        env_id: {agent: group for agent, group in agents.items() if group[0].get("curve")}
        for env_id, agents in _groups(cells, rows).items()
    }
    groups = {env_id: agents for env_id, agents in groups.items() if agents}
    if not groups:
        return False
    plt = _pyplot()
    figure, axes = _panels(plt, len(groups))
    for axis, (env_id, agents) in zip(axes, groups.items(), strict=True):
        for agent, group in agents.items():
            color = _color(agent)
            curves = [row["curve"] for row in group]
            for curve in curves:
                axis.plot([x for x, _ in curve], [y for _, y in curve], color=color, alpha=0.3, linewidth=0.8)
            grid, mean = mean_curve(curves)
            axis.plot(grid, mean, color=color, linewidth=2, label=f"{agent} (mean of {len(curves)})")
        ends = [row["curve"][-1][0] for group in agents.values() for row in group]
        steps = [x for group in agents.values() for row in group for x, _ in row["curve"] if x > 0]
        if steps and max(ends) > 5 * min(ends):  # budgets far apart: a log axis keeps the shorter runs readable
            axis.set_xscale("symlog", linthresh=min(steps))  # (a one-update run's curve is its start only)
        info = ENVS[env_id]
        axis.set(title=info.name, xlabel=f"training env steps ({info.curve_steps})", ylabel=info.curve_label)
        axis.legend(fontsize=8)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def plot_final_scores(cells: Sequence[Cell], rows: Sequence[dict[str, Any]], path: Path) -> None:
    """The primary score of every agent, a panel per env: bars at the mean, 95% CI error bars, a dot per seed."""
    groups = _groups(cells, rows)
    plt = _pyplot()
    figure, axes = _panels(plt, len(groups))
    for axis, (env_id, agents) in zip(axes, groups.items(), strict=True):
        for index, (agent, group) in enumerate(agents.items()):
            scores = [row["score"] for row in group]
            mean, half_width = confidence_interval(scores)
            error = None if math.isnan(half_width) else half_width
            axis.bar(index, mean, yerr=error, capsize=5, color=_color(agent), alpha=0.75)
            axis.scatter(np.full(len(scores), index), scores, color="black", s=10, zorder=3)
        axis.axhline(0.0, color="grey", linewidth=0.6)
        axis.set_xticks(range(len(agents)), list(agents), rotation=20)
        axis.set(title=ENVS[env_id].name, ylabel=ENVS[env_id].score.label)
    figure.savefig(path, dpi=110)
    plt.close(figure)
