"""Human feedback records: a JSONL schema, durable appends, and a reader that reports bad lines.

One JSON object per line, append-only. Every record has ``type``, ``item_id`` (what was judged,
stable across sessions so a labeller can resume), ``annotator`` (who judged it, so one person's
preferences can train their own reward model) and ``timestamp`` (ISO 8601, UTC):

- ``{"type": "label", "prompt", "completion", "label": 0 | 1, ...}``: a binary judgement
  (1 = the completion is what the guidelines ask for, e.g. non-toxic or positive).
- ``{"type": "comparison", "prompt", "completion_a", "completion_b", "choice": "a" | "b", ...}``:
  a pairwise preference.
- ``{"type": "score", "prompt", "completion", "score": number, ...}``: a number judgement, finite,
  in whatever units the annotator was asked for (e.g. 1 to 7); :class:`text_envs.rewards.human.HumanReward`
  writes these.
- ``{"type": "skip", ...}``: the annotator passed on ``item_id``.
- ``{"type": "undo", ...}``: retracts this annotator's latest judgement (or skip) of ``item_id``.

:func:`make_item_id` hashes the question and the texts shown, so the same question gets the same
``item_id`` in every session and every tool. Records are never rewritten: undo is a record too, so a
crash can only ever cost the line being written. :func:`append_record` flushes and fsyncs every line
(and the directory when it creates the file); if an earlier crash left a torn last line, the next
record starts on a new line and the torn one is reported by :func:`read_feedback` with its line
number, never silently dropped.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from text_envs.durable import append_line

RECORD_TYPES = ("label", "comparison", "score", "skip", "undo")
_REQUIRED: dict[str, dict[str, type | tuple[type, ...]]] = {
    "label": {"prompt": str, "completion": str, "label": int},
    "comparison": {"prompt": str, "completion_a": str, "completion_b": str, "choice": str},
    "score": {"prompt": str, "completion": str, "score": (int, float)},
    "skip": {},
    "undo": {},
}


def now() -> str:
    """The current UTC time as an ISO 8601 string (seconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def make_item_id(question: str, prompt: str, *completions: str) -> str:
    """A stable id (16 hex digits) for asking ``question`` (e.g. ``"label"``, ``"compare"``) about these texts."""
    payload = json.dumps([question, prompt, *completions])
    return hashlib.sha256(payload.encode("ascii")).hexdigest()[:16]


def make_record(record_type: str, item_id: str, annotator: str, **fields: Any) -> dict[str, Any]:
    """A record of ``record_type`` with the common fields filled in; checked by :func:`check_record`."""
    record = {"type": record_type, "item_id": item_id, "annotator": annotator, "timestamp": now(), **fields}
    check_record(record)
    return record


def check_record(record: Any) -> None:
    """Raise ``ValueError`` saying what is wrong if ``record`` does not follow the schema."""
    if not isinstance(record, dict):
        raise ValueError(f"a record must be a JSON object, got {type(record).__name__}")
    record_type = record.get("type")
    if record_type not in RECORD_TYPES:
        raise ValueError(f"'type' must be one of {RECORD_TYPES}, got {record_type!r}")
    for key in ("item_id", "annotator", "timestamp"):
        if not isinstance(record.get(key), str) or not record[key]:
            raise ValueError(f"'{key}' must be a non-empty string")
    for key, kind in _REQUIRED[record_type].items():
        if not isinstance(record.get(key), kind) or isinstance(record.get(key), bool):
            kind_name = {str: "a string", int: "an integer"}.get(kind, "a number")
            raise ValueError(f"'{key}' must be {kind_name} in a {record_type} record")
    if record_type == "label" and record["label"] not in (0, 1):
        raise ValueError(f"'label' must be 0 or 1, got {record['label']!r}")
    if record_type == "comparison" and record["choice"] not in ("a", "b"):
        raise ValueError(f"'choice' must be 'a' or 'b', got {record['choice']!r}")
    if record_type == "score" and isinstance(record["score"], float) and not math.isfinite(record["score"]):
        raise ValueError(f"'score' must be finite, got {record['score']!r}")


def append_record(path: str | Path, record: dict[str, Any]) -> None:
    """Append one record durably: written as one line, flushed and fsynced before returning."""
    check_record(record)
    append_line(path, json.dumps(record, ensure_ascii=False))


@dataclass
class FeedbackLog:
    """What a feedback file holds after undos are applied, and the lines that could not be read."""

    records: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def labels(self, annotator: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.records if r["type"] == "label" and annotator in (None, r["annotator"])]

    def comparisons(self, annotator: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.records if r["type"] == "comparison" and annotator in (None, r["annotator"])]

    def scores(self, annotator: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.records if r["type"] == "score" and annotator in (None, r["annotator"])]

    def seen_item_ids(self, annotator: str | None = None) -> set[str]:
        """Items judged or skipped (and not undone): what a resuming labeller passes over."""
        return {r["item_id"] for r in self.records if annotator in (None, r["annotator"])}


def read_feedback(path: str | Path) -> FeedbackLog:
    """Read a feedback file (missing file: empty log), applying undos; bad lines go to ``problems``."""
    path = Path(path)
    log = FeedbackLog()
    if not path.exists():
        return log
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                check_record(record)
            except (json.JSONDecodeError, ValueError) as error:
                reason = f"invalid JSON ({error.msg})" if isinstance(error, json.JSONDecodeError) else str(error)
                log.problems.append(f"{path}:{number}: {reason}; line skipped")
                continue
            if record["type"] == "undo":
                _retract(log.records, record)
            else:
                log.records.append(record)
    return log


def _retract(records: list[dict[str, Any]], undo: dict[str, Any]) -> None:
    for index in range(len(records) - 1, -1, -1):
        if records[index]["item_id"] == undo["item_id"] and records[index]["annotator"] == undo["annotator"]:
            del records[index]
            return


def read_judgements(
    paths: Sequence[str | Path], annotator: str | None = None, log: Callable[[str], None] = print
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The label and the comparison records of the feedback files ``paths`` (after undos), only ``annotator``'s
    unless ``None``. A missing file is a ``FileNotFoundError`` naming it; unreadable lines go to ``log``, skipped.
    """
    labels: list[dict[str, Any]] = []
    comparisons: list[dict[str, Any]] = []
    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"feedback file {path} does not exist")
        feedback = read_feedback(path)
        for problem in feedback.problems:
            log(f"warning: {problem}")
        labels += feedback.labels(annotator)
        comparisons += feedback.comparisons(annotator)
    return labels, comparisons
