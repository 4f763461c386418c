"""Drawing a Tic-Tac-Toe board as an RGB image with numpy alone (no pygame)."""

from __future__ import annotations

import numpy as np

from text_envs.tictactoe.rules import CELLS, X

CELL_PIXELS = 64
LINE_PIXELS = 4
BOARD_PIXELS = 3 * CELL_PIXELS
BACKGROUND = (255, 255, 255)
GRID = (40, 40, 40)
X_COLOUR = (200, 40, 40)
O_COLOUR = (40, 80, 200)

_ys, _xs = np.mgrid[0:CELL_PIXELS, 0:CELL_PIXELS].astype(np.float32) - (CELL_PIXELS - 1) / 2
_MARGIN = CELL_PIXELS * 0.3
_X_SHAPE = (
    (np.minimum(np.abs(_ys - _xs), np.abs(_ys + _xs)) < LINE_PIXELS * 1.2)
    & (np.abs(_xs) < CELL_PIXELS / 2 - _MARGIN / 2)
    & (np.abs(_ys) < CELL_PIXELS / 2 - _MARGIN / 2)
)
_radius = np.hypot(_ys, _xs)
_O_SHAPE = np.abs(_radius - (CELL_PIXELS / 2 - _MARGIN)) < LINE_PIXELS * 0.9


def render_rgb(state: int) -> np.ndarray:
    """The board of ``state`` as a fresh ``uint8`` array of shape ``(192, 192, 3)``."""
    image = np.empty((BOARD_PIXELS, BOARD_PIXELS, 3), dtype=np.uint8)
    image[:] = BACKGROUND
    for cell, mark in enumerate(CELLS[state]):
        if mark == 0:
            continue
        row, col = divmod(cell, 3)
        patch = image[row * CELL_PIXELS : (row + 1) * CELL_PIXELS, col * CELL_PIXELS : (col + 1) * CELL_PIXELS]
        patch[_X_SHAPE if mark == X else _O_SHAPE] = X_COLOUR if mark == X else O_COLOUR
    half = LINE_PIXELS // 2
    for k in (1, 2):
        image[k * CELL_PIXELS - half : k * CELL_PIXELS + half, :] = GRID
        image[:, k * CELL_PIXELS - half : k * CELL_PIXELS + half] = GRID
    return image
