"""Writes that must survive a crash: feedback records and the shaping sweep's rows (:func:`append_line`:
append-only), benchmark results and the RLHF loop's state (:func:`write_atomic`: replaced through a
temporary file) and TextPPO checkpoints (replaced as a folder) all sync files and the directories whose
entries they create or rename (:func:`fsync_path`)."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_path(path: str | Path) -> None:
    """Flush the file or directory at ``path`` to disk; for a directory, the names created or renamed in it."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_atomic(path: str | Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that a crash leaves the old or the new content: temp file, fsync, rename."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
    if os.name == "posix":  # the rename itself is durable once the directory is synced
        fsync_path(path.parent)


def append_line(path: str | Path, line: str) -> None:
    """Append ``line`` (no newline in it) and a newline to ``path``, flushed and fsynced before returning.

    A last line torn by an earlier crash (no final newline) is ended first, so the new line is never glued
    onto it; a new file's directory entry is synced too.
    """
    path = Path(path)
    created = not path.exists()
    with open(path, "ab") as f:
        if f.tell() > 0 and _last_byte(path) != b"\n":
            f.write(b"\n")
        f.write(line.encode("utf-8") + b"\n")
        f.flush()
        os.fsync(f.fileno())
    if created and os.name == "posix":
        fsync_path(path.parent)


def _last_byte(path: Path) -> bytes:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1)
