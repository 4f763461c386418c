"""Writes that must survive a crash: feedback records (append-only), benchmark results and the RLHF loop's
state (:func:`write_atomic`: replaced through a temporary file) and TextPPO checkpoints (replaced as a
folder) all sync files and the directories whose entries they create or rename (:func:`fsync_path`)."""

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
