"""Teach a causal LM Tic-Tac-Toe through its context window: warm start from minimax, then RL, each stage evaluated.

    text-envs-train-tictactoe-lm                                     # the embedded LM: warm start, SB3 PPO
    text-envs-train-tictactoe-lm --config.model smollm2-135m-instruct --config.prompt-format chat \\
        --config.context game --config.algo textppo --config.lora-r 16  # SmolLM2, multi-turn TextPPO

Stages (:mod:`text_envs_agents.tictactoe_lm.training`): zero-shot, a supervised warm start on the minimax
agent's moves written through TicTacToeText-v0's own prompts, then RL on whole games (``textppo``:
multi-turn TextPPO, ``context="game"``; ``sb3-ppo``: stable-baselines3's PPO with LMActorCriticPolicy).
After each stage the LM plays ``--config.eval-games`` games against each opponent, sampled at temperature
1 and greedy, and the before/after table is printed and written to ``results.md`` under ``--output-dir``,
with ``results.json``, the checkpoints (``warm_start/``, ``rl/``) and TensorBoard logs (``tensorboard/``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from text_envs_agents.cli.common import parse
from text_envs_agents.tictactoe_lm.training import TicTacToeLMConfig


@dataclass
class Args:
    config: TicTacToeLMConfig = field(default_factory=TicTacToeLMConfig)
    output_dir: str = "runs/tictactoe_lm"
    """directory for the checkpoints, TensorBoard logs, results.json and results.md"""
    threads: int = 2
    """torch.set_num_threads"""


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(Args, argv, __doc__)
    import torch

    from text_envs_agents.tictactoe_lm.training import results_table, train_tictactoe_lm

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    stages = train_tictactoe_lm(args.config, args.output_dir)
    print(f"\n{results_table(stages)}\n\n{time.perf_counter() - start:.0f} s in all; results in {args.output_dir}/")


if __name__ == "__main__":
    main()
