"""Prompt sets: a list of strings, a ``.txt`` or ``.jsonl`` file, or a Hugging Face dataset."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

DEFAULT_PROMPT_KEY = "prompt"


def load_prompts(
    source: Sequence[str] | str | Path,
    split: str = "train",
    column: str = DEFAULT_PROMPT_KEY,
) -> list[str]:
    """The prompts of ``source``, each a non-empty string.

    - a list (or tuple) of strings: used as given;
    - a ``.txt`` path: one prompt per line (line ends stripped; a blank line is an error);
    - a ``.jsonl`` path: one JSON object per line with the prompt under ``column`` (``"prompt"``
      by default), or one JSON string per line; blank lines are skipped;
    - any other string that is not an existing file: a Hugging Face dataset name or local
      dataset directory, loaded with ``datasets.load_dataset(source, split=split,
      trust_remote_code=False)[column]`` (needs the ``datasets`` extra): a dataset's loading script never runs.

    Malformed input (a file that is not UTF-8 included) raises ``ValueError`` naming the file and line
    (1-based); an empty set raises too.
    """
    if isinstance(source, (list, tuple)):
        prompts = list(source)
        for index, prompt in enumerate(prompts):
            if not isinstance(prompt, str) or not prompt.strip():
                raise ValueError(f"prompt {index} must be a non-empty string, got {prompt!r}")
        origin = "the prompt list"
    else:
        path = Path(source)
        if path.suffix == ".txt" and path.is_file():
            prompts = _read_txt(path)
        elif path.suffix == ".jsonl" and path.is_file():
            prompts = _read_jsonl(path, column)
        elif path.suffix in (".txt", ".jsonl"):
            raise FileNotFoundError(f"prompt file {path} does not exist")
        else:
            prompts = _read_dataset(str(source), split, column)
        origin = str(source)
    if not prompts:
        raise ValueError(f"{origin} holds no prompts")
    return prompts


def _read_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file; a file that is not UTF-8 raises ``ValueError`` naming the file and line."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError as error:
        # The bytes before the bad one decode; counting lines the way splitlines does keeps the numbers consistent.
        line = len((data[: error.start].decode("utf-8") + "end").splitlines())
        raise ValueError(
            f"{path}:{line}: not UTF-8 text (byte {data[error.start]:#04x}); prompt files are UTF-8"
        ) from None


def _read_txt(path: Path) -> list[str]:
    prompts = []
    for number, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            raise ValueError(f"{path}:{number}: blank line (one prompt per line)")
        prompts.append(line)
    return prompts


def _read_jsonl(path: Path, column: str) -> list[str]:
    prompts = []
    for number, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number}: invalid JSON ({error.msg})") from None
        prompt = record.get(column) if isinstance(record, dict) else record
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError(
                f"{path}:{number}: expected an object with a non-empty string {column!r} "
                f"or a JSON string, got {line.strip()[:80]!r}"
            )
        prompts.append(prompt)
    return prompts


def _read_dataset(name: str, split: str, column: str) -> list[str]:
    try:
        import datasets
    except ImportError:
        raise ImportError(
            f"{name!r} is not a .txt/.jsonl file; loading it as a Hugging Face dataset needs "
            "`pip install datasets` (or the text_envs[datasets] extra)"
        ) from None
    try:
        # Explicitly off: datasets 2.x ran a dataset's loading script when asked to; 4.x and later run none.
        dataset = datasets.load_dataset(name, split=split, trust_remote_code=False)
    except Exception as error:  # datasets raises many kinds: missing path, offline hub, bad split
        raise ValueError(
            f"could not load prompts from {name!r} (split {split!r}): not a .txt/.jsonl file, "
            f"and loading it as a Hugging Face dataset failed: {error}"
        ) from error
    if column not in dataset.column_names:
        raise ValueError(f"dataset {name!r} has no column {column!r}; columns: {dataset.column_names}")
    return load_prompts([str(p) for p in dataset[column]])
