"""Labelling sessions: the items a person judges, and the key loop that records every judgement durably.

A session reads what the annotator already judged or skipped in the feedback file (see
:mod:`text_envs.feedback.records`), asks about the rest one at a time and appends each answer at once, so
quitting, a crash or a kill loses at most the answer being written, and the next session resumes
where this one stopped. ``text-envs-label`` is the terminal front end.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from text_envs.feedback.records import append_record, make_item_id, make_record, read_feedback

MODES = ("label", "compare")
"""``label``: one completion, judged 0 or 1. ``compare``: two completions of one prompt, a or b preferred."""
COMPLETION_KEYS = {"label": ("completion",), "compare": ("completion_a", "completion_b")}
JUDGEMENT_KEYS = {"label": ("0", "1"), "compare": ("a", "b")}
QUESTIONS = {
    "label": "1 = meets the guidelines, 0 = does not; s skip, u undo, q quit: ",
    "compare": "a or b, whichever is better; s skip, u undo, q quit: ",
}
DONE_QUESTION = "all items done; u undoes the last answer, Enter ends the session: "


@dataclass(frozen=True)
class Item:
    """One question for the annotator: a completion to label, or two completions to compare."""

    item_id: str
    prompt: str
    completions: tuple[str, ...]


def make_item(mode: str, prompt: str, completions: Sequence[str]) -> Item:
    """The item asking ``mode``'s question about ``completions`` (one for label, two for compare) of ``prompt``."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if len(completions) != len(COMPLETION_KEYS[mode]):
        raise ValueError(f"a {mode} item holds {len(COMPLETION_KEYS[mode])} completion(s), got {len(completions)}")
    return Item(make_item_id(mode, prompt, *completions), prompt, tuple(completions))


def items_from_samples(samples: Sequence[tuple[str, str]], mode: str) -> list[Item]:
    """Items from ``(prompt, completion)`` pairs: one each to label, or consecutive pairs of one prompt to compare.

    For ``compare``, sample two completions per prompt (``sample_completions(..., num_samples=2)``).
    """
    if mode == "label":
        return [make_item(mode, prompt, [completion]) for prompt, completion in samples]
    if len(samples) % 2:
        raise ValueError(f"compare needs two completions per prompt, got {len(samples)} samples")
    items = []
    for (prompt, completion_a), (prompt_b, completion_b) in zip(samples[::2], samples[1::2], strict=True):
        if prompt != prompt_b:
            raise ValueError(f"compare needs two completions per prompt, got {prompt!r} then {prompt_b!r}")
        items.append(make_item(mode, prompt, [completion_a, completion_b]))
    return items


def read_completions(path: str | Path, mode: str) -> tuple[list[Item], list[str]]:
    """Items from a JSONL file, and its malformed lines (``"path:line: reason; line skipped"``).

    One JSON object per line with string fields ``prompt`` and ``completion`` (label mode), or
    ``prompt``, ``completion_a`` and ``completion_b`` (compare mode); other fields are ignored and
    blank lines skipped.
    """
    path = Path(path)
    keys = ("prompt", *COMPLETION_KEYS[mode])
    items, problems = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                items.append(_item_from_line(line, mode, keys))
            except ValueError as error:
                problems.append(f"{path}:{number}: {error}; line skipped")
    return items, problems


def _item_from_line(line: str, mode: str, keys: tuple[str, ...]) -> Item:
    try:
        entry = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"invalid JSON ({error.msg})") from None
    if not isinstance(entry, dict):
        raise ValueError(f"expected a JSON object with {', '.join(keys)}")
    for key in keys:
        value = entry.get(key)
        if not isinstance(value, str):
            raise ValueError(f"{key!r} must be a string in {mode} mode")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{key!r} holds a lone surrogate (\\ud800-\\udfff), not text") from None
    return make_item(mode, entry["prompt"], [entry[key] for key in keys[1:]])


@dataclass
class SessionSummary:
    """What one labelling session did: counts of records appended, and items left for a later session."""

    judged: int = 0
    skipped: int = 0
    undone: int = 0
    remaining: int = 0


def label_items(
    items: Iterable[Item],
    output: str | Path,
    annotator: str,
    mode: str,
    input_fn: Callable[[str], str] = input,
    output_fn: Callable[[str], None] = print,
    fields: dict[str, Any] | None = None,
) -> SessionSummary:
    """Ask ``annotator`` about each item they have not judged or skipped in ``output`` yet; append every answer.

    ``fields`` go on every record written (e.g. ``{"round": 2}``: extra keys the schema ignores).

    Reports the unreadable lines of ``output`` first (and goes on: they are skipped, never rewritten).
    Each item shows as a ``[k/n]`` progress line (``n`` distinct items, ``k`` counting those judged
    in earlier sessions), the prompt and the completion(s), then asks for a key: ``0``/``1`` (label)
    or ``a``/``b`` (compare) records the judgement, ``s`` a skip, ``u`` retracts this session's
    previous judgement or skip with an ``undo`` record and asks about that item again, ``q`` (or end
    of input) ends the session. Any other answer is explained and asked again. After the last item
    the session offers ``u`` once more before it ends.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not annotator:
        raise ValueError("annotator must be a non-empty id: every record says who judged it")
    extra = dict(fields or {})
    log = read_feedback(output)
    for problem in log.problems:
        output_fn(f"warning: {problem}")
    unique = list({item.item_id: item for item in items}.values())
    seen = log.seen_item_ids(annotator)
    pending = [item for item in unique if item.item_id not in seen]
    done_before = len(unique) - len(pending)
    output_fn(f"{len(unique)} items, {done_before} already judged or skipped by {annotator}, {len(pending)} to go")

    summary = SessionSummary()
    answered: list[Item] = []
    while True:
        if len(answered) == len(pending):
            if not answered:
                break
            # one last chance to undo, or a slip on the last item could never be corrected: resuming skips it
            key = _read_key(input_fn, DONE_QUESTION)
            if key != "u":
                break
        else:
            item = pending[len(answered)]
            output_fn(f"[{done_before + len(answered) + 1}/{len(unique)}]\n{_show(item, mode)}")
            key = _read_key(input_fn, QUESTIONS[mode])
        if key == "q":
            break
        if key == "u":
            if not answered:
                output_fn("nothing to undo in this session")
                continue
            undone = answered.pop()
            append_record(output, make_record("undo", undone.item_id, annotator, **extra))
            summary.undone += 1
            output_fn("undone: asking again")
        elif key == "s":
            append_record(output, make_record("skip", item.item_id, annotator, **extra))
            answered.append(item)
            summary.skipped += 1
        elif key in JUDGEMENT_KEYS[mode]:
            append_record(output, {**_judgement_record(item, mode, key, annotator), **extra})
            answered.append(item)
            summary.judged += 1
        else:
            keys = "/".join(JUDGEMENT_KEYS[mode])
            output_fn(f"{key!r} is not a key: type {keys}, s (skip), u (undo) or q (quit)")
    summary.remaining = len(pending) - len(answered)
    return summary


def _read_key(input_fn: Callable[[str], str], question: str) -> str:
    try:
        return input_fn(question).strip().lower()
    except EOFError:
        return "q"


def _show(item: Item, mode: str) -> str:
    if mode == "label":
        return f"prompt:     {item.prompt}\ncompletion: {item.completions[0]}"
    return f"prompt: {item.prompt}\na: {item.completions[0]}\nb: {item.completions[1]}"


def _judgement_record(item: Item, mode: str, key: str, annotator: str) -> dict[str, Any]:
    texts = dict(zip(COMPLETION_KEYS[mode], item.completions, strict=True))
    if mode == "label":
        return make_record("label", item.item_id, annotator, prompt=item.prompt, **texts, label=int(key))
    return make_record("comparison", item.item_id, annotator, prompt=item.prompt, **texts, choice=key)
