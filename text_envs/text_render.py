"""Text drawn as a fixed-size RGB image, for the text envs' ``rgb_array`` render mode (video recorders)."""

from __future__ import annotations

import textwrap

import numpy as np
from PIL import Image, ImageDraw, ImageFont

COLUMNS = 80
ROWS = 16
_FONT = ImageFont.load_default()  # Pillow's built-in font: no file or download needed
_LINE_PIXELS = 14
_CHAR_PIXELS = 7
_MARGIN = 6


def render_text_rgb(text: str) -> np.ndarray:
    """``text`` wrapped at 80 columns, its last 16 lines drawn black on white: ``uint8`` of shape (236, 572, 3).

    The size is fixed, whatever the text, so that frames of an episode make a video.
    """
    lines = [wrapped for line in text.split("\n") for wrapped in (textwrap.wrap(line, COLUMNS) or [""])]
    image = Image.new("RGB", (COLUMNS * _CHAR_PIXELS + 2 * _MARGIN, ROWS * _LINE_PIXELS + 2 * _MARGIN), "white")
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(lines[-ROWS:]):
        draw.text((_MARGIN, _MARGIN + row * _LINE_PIXELS), line, fill="black", font=_FONT)
    return np.asarray(image, dtype=np.uint8).copy()
