"""The main job on the embedded defaults, offline: what `make demo` runs (about 2 minutes here).

1. RLHF: ``text-envs-train`` with its defaults: TextPPO fine-tunes the embedded LM to maximise the
   embedded reward model's score with a KL penalty to the initial LM, then prints the before/after
   table on held-out prompts (reward-model score, gold score, KL, length) and sample completions.
2. The classic baseline: ``text-envs-train-tictactoe`` with its defaults (MaskablePPO) and its
   win/draw/loss table against the random and the minimax opponent.

Outputs go where those tools put them by default (``runs/text``, ``runs/tictactoe``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from text_envs_agents.cli.common import parse


@dataclass
class Args:
    progress_bar: bool = False
    """show the training progress bars (off: the output reads as a log)"""


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(Args, argv, __doc__)
    from text_envs_agents.cli import train, train_tictactoe

    flags = ["--progress-bar" if args.progress_bar else "--no-progress-bar"]
    for tool, title in ((train, "RLHF on TextGeneration-v0"), (train_tictactoe, "Tic-Tac-Toe")):
        name = "text-envs-" + tool.__name__.rsplit(".", 1)[1].replace("_", "-")
        print(f"\n=== {title}: {name} ===\n", flush=True)
        tool.main(flags)


if __name__ == "__main__":
    main()
