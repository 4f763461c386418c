"""fsync by path, for writes that must survive a crash: feedback records (append-only), benchmark results
(replaced through a temporary file) and TextPPO checkpoints (replaced as a folder) all sync files and the
directories whose entries they create or rename."""

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
