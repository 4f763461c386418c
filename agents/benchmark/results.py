"""Benchmark results on disk, and their summary over seeds: mean ± 95% confidence interval as a Markdown table.

``results.json`` (every finished cell, learning curves included) is the record the benchmark resumes
from, the one source of truth; ``results.csv`` (the same rows without the curves) is derived from it.
After each cell both are rewritten through a temporary file, fsynced, then ``os.replace``, the JSON
first: a crash leaves either the old file or the new one, never a torn one, so a finished cell is
never lost. A crash between the two replaces leaves the CSV a row behind; opening the results
(:class:`ResultsStore`) rewrites a CSV that is not the JSON's rows. Rows of cells outside the current
spec are kept.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from text_envs.durable import write_atomic
from text_envs_agents.benchmark.registry import AGENTS, ENVS, Column
from text_envs_agents.benchmark.spec import Cell

KEY_FIELDS = ("agent", "env", "seed", "episodes", "budget", "model")
TIMING_FIELDS = ("train_seconds", "seconds", "finished_at")

# Two-sided 95% quantiles of Student's t for 1 to 30 degrees of freedom (scipy.stats.t.ppf(0.975, df)).
_T_975 = (
    12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004, 2.262157, 2.228139,
    2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905, 2.109816, 2.100922, 2.093024, 2.085963,
    2.079614, 2.073873, 2.068658, 2.063899, 2.059539, 2.055529, 2.051831, 2.048407, 2.045230, 2.042272,
)  # fmt: skip
_Z_975 = 1.959963984540054


def t_quantile_975(degrees_of_freedom: int) -> float:
    """The 97.5% quantile of Student's t: a table to 30 degrees of freedom, then the Cornish-Fisher expansion.

    The expansion (four terms around the normal quantile) is within 2e-6 of the exact value from 31 on.
    """
    if degrees_of_freedom < 1:
        raise ValueError(f"degrees_of_freedom must be at least 1, got {degrees_of_freedom}")
    if degrees_of_freedom <= len(_T_975):
        return _T_975[degrees_of_freedom - 1]
    z, v = _Z_975, degrees_of_freedom
    return (
        z
        + (z**3 + z) / (4 * v)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3)
    )


def confidence_interval(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of the 95% confidence interval of the mean (Student's t, sample std; NaN for n=1)."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("no values to summarise")
    if data.size == 1:
        return float(data[0]), math.nan
    half_width = t_quantile_975(data.size - 1) * data.std(ddof=1) / math.sqrt(data.size)
    return float(data.mean()), float(half_width)


def row_key(row: dict[str, Any]) -> tuple:
    """A row's cell key; rows written before cells had a ``model`` are the embedded LM's (``None``)."""
    return tuple(row[field] if field != "model" else row.get(field) for field in KEY_FIELDS)


def cell_row(cell: Cell) -> dict[str, Any]:
    """The key fields of ``cell``'s result row."""
    return dict(zip(KEY_FIELDS, cell.key, strict=True))


class ResultsStore:
    """The rows of ``results.json`` in ``directory``, by cell key; :meth:`add` writes both result files durably."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.json_path = self.directory / "results.json"
        self.csv_path = self.directory / "results.csv"
        self.rows: dict[tuple, dict[str, Any]] = {}
        if self.json_path.exists():
            try:
                rows = json.loads(self.json_path.read_text(encoding="utf-8"))
                if not isinstance(rows, list):
                    raise TypeError(f"a list of rows was expected, not a {type(rows).__name__}")
                self.rows = {row_key(row): row for row in rows}
            except (json.JSONDecodeError, UnicodeDecodeError, TypeError, KeyError) as error:
                raise ValueError(
                    f"{self.json_path} is not a benchmark results file ({error}); move it away or pick another "
                    "--output-dir"
                ) from None
            self._repair_csv()

    def _repair_csv(self) -> None:
        """Rewrite ``results.csv`` from the JSON's rows unless it already holds exactly them."""
        expected = rows_to_csv(self.rows.values())
        try:
            current = self.csv_path.read_bytes().decode("utf-8")  # as written: csv ends its lines in \r\n
        except (OSError, UnicodeDecodeError):
            current = None
        if current != expected:
            write_atomic(self.csv_path, expected)

    def __contains__(self, cell: Cell) -> bool:
        return cell.key in self.rows

    def __getitem__(self, cell: Cell) -> dict[str, Any]:
        return self.rows[cell.key]

    def add(self, row: dict[str, Any]) -> None:
        self.rows[row_key(row)] = row
        self.directory.mkdir(parents=True, exist_ok=True)
        rows = list(self.rows.values())
        write_atomic(self.json_path, json.dumps(rows, indent=1) + "\n")
        write_atomic(self.csv_path, rows_to_csv(rows))


def rows_to_csv(rows: Iterable[dict[str, Any]]) -> str:
    """Rows as CSV: the key fields, ``score``, each env's columns (a judged one followed by its judge), then
    timings; learning curves left out. A row without a column (written before it existed) leaves it blank.

    Metrics of rows whose env is not registered in this process (a custom env of an earlier run) come
    after the registered envs' columns, so no saved value is dropped.
    """
    rows = list(rows)
    metrics = ["score"]
    for info in ENVS.values():
        for column in info.columns:
            metrics += [key for key in (column.key, column.judge_field) if key and key not in metrics]
    known = {*KEY_FIELDS, *metrics, *TIMING_FIELDS, "curve"}
    metrics += list(dict.fromkeys(key for row in rows for key in row if key not in known))
    output = io.StringIO()
    writer = csv.DictWriter(output, fieldnames=[*KEY_FIELDS, *metrics, *TIMING_FIELDS], extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return output.getvalue()


def _format(mean: float, half_width: float, decimals: int) -> str:
    return f"{mean:.{decimals}f}" if math.isnan(half_width) else f"{mean:.{decimals}f} ± {half_width:.{decimals}f}"


def _heading(column: Column, rows: Sequence[dict[str, Any]]) -> str:
    """A column's label, naming the judges that measured it in ``rows`` (or why none did)."""
    if not column.judge_field:
        return column.label
    judges = sorted({str(row[column.judge_field]) for row in rows if column.key in row and column.judge_field in row})
    if judges:
        return f"{column.label}, judged by {', '.join(judges)}"
    return f"{column.label} (none: see {column.judge_field} in the results)"


def markdown_table(cells: Sequence[Cell], rows: Sequence[dict[str, Any]]) -> str:
    """One table per env: an agent per line, each metric as mean ± 95% CI over the seeds (cells and rows align)."""
    by_group: dict[tuple[str, str, str | None], list[dict[str, Any]]] = {}
    for cell, row in zip(cells, rows, strict=True):
        by_group.setdefault((cell.env_id, cell.agent, cell.model), []).append(row)
    sections = []
    for env_id, info in ENVS.items():
        groups = [(agent, model, group) for (env, agent, model), group in by_group.items() if env == env_id]
        if not groups:
            continue
        columns = (info.score, *info.columns)
        env_rows = [row for _, _, group in groups for row in group]
        episodes = sorted({row["episodes"] for row in env_rows})
        lines = [
            f"### {info.name}",
            "",
            f"Score: {info.score.label}, {' / '.join(map(str, episodes))} episodes per seed.",
            "",
            "| agent | training budget | seeds | "
            + " | ".join(_heading(c, env_rows) for c in columns)
            + " | train s |",
            "|---|---:|---:|" + "---:|" * (len(columns) + 1),
        ]
        for agent, model, group in groups:
            budget = group[0]["budget"]
            values = []
            for column in columns:
                measured = [row[column.key] for row in group if column.key in row]
                if not measured:  # a row from before this column existed, or one no judge measured
                    values.append("-")
                    continue
                mean, half_width = confidence_interval(measured)
                text = _format(mean, half_width, column.decimals)
                values.append(f"**{text}**" + (" (n=1)" if len(group) == 1 else "") if column is info.score else text)
            train = confidence_interval([row["train_seconds"] for row in group])[0]
            budget_text = "-" if budget is None else f"{budget:,} {AGENTS[agent].budget_unit}"
            label = agent if model is None else f"{agent} ({model})"
            lines.append(f"| {label} | {budget_text} | {len(group)} | " + " | ".join(values) + f" | {train:.0f} |")
        sections.append("\n".join(lines))
    note = "Mean ± half-width of the 95% confidence interval over seeds (Student's t); n=1: no interval."
    return "\n\n".join([note, *sections]) + "\n"
