"""The main job on the embedded defaults, offline: what `make demo` runs (about 4 minutes here).

1. RLHF: scripts/train_text.py with its defaults: TextPPO fine-tunes the embedded LM to maximise the
   embedded reward model's score with a KL penalty to the initial LM, then prints the before/after
   table on held-out prompts (reward-model score, gold score, KL, length) and sample completions.
2. The classic baseline: scripts/train_tictactoe.py with its defaults (MaskablePPO) and its
   win/draw/loss table against the random and the minimax opponent.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent


def main() -> None:
    for script, title in (("train_text.py", "RLHF on TextGeneration-v0"), ("train_tictactoe.py", "Tic-Tac-Toe")):
        print(f"\n=== {title}: scripts/{script} ===\n", flush=True)
        subprocess.run([sys.executable, str(SCRIPTS / script), "--no-progress-bar"], check=True)


if __name__ == "__main__":
    main()
