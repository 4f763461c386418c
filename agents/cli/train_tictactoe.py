"""Train an agent on text_envs/TicTacToe-v0, then evaluate it against the random and minimax opponents.

    text-envs-train-tictactoe                                  # MaskablePPO, the defaults below
    text-envs-train-tictactoe --algo q-learning --timesteps 2000000
    text-envs-train-tictactoe --algo ppo --opponent random --timesteps 100000 --seed 3

Algorithms: ``maskable-ppo`` (sb3-contrib, uses the env's action masks), ``ppo``, ``a2c``, ``dqn``
(stable-baselines3, no masks: they must learn that occupied cells lose) and ``q-learning``
(:class:`text_envs_agents.QLearningAgent`, tabular), with the tuned settings of
:func:`text_envs_agents.tictactoe_training.train_tictactoe_agent`. Progress shows as a bar, training
curves go to TensorBoard under ``--output-dir`` (``tensorboard --logdir runs``), the model is saved
there, and the win/draw/loss/illegal rates over ``--eval-games`` games against each opponent are printed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from text_envs_agents.cli.common import parse

# Command-line spelling -> train_tictactoe_agent's algorithm name (also the saved model's file name).
ALGORITHMS = {"maskable-ppo": "maskable_ppo", "ppo": "ppo", "a2c": "a2c", "dqn": "dqn", "q-learning": "qlearning"}


@dataclass
class Args:
    algo: Literal["maskable-ppo", "ppo", "a2c", "dqn", "q-learning"] = "maskable-ppo"
    """the algorithm, with its tuned settings"""
    opponent: Literal["random", "minimax"] = "minimax"
    """training opponent"""
    opponent_epsilon: float = 0.5
    """probability that the minimax training opponent plays a random move instead"""
    agent_first: Literal["yes", "no", "alternate"] = "alternate"
    """the agent's side in training games"""
    timesteps: int = 200_000
    """agent moves to train for"""
    n_envs: int = 8
    """parallel training envs (boards for q-learning: 32 x n_envs)"""
    seed: int = 0
    """seeds the algorithm, the envs and the evaluation"""
    eval_games: int = 1000
    """games against each opponent after training"""
    output_dir: str = "runs/tictactoe"
    """directory for the model, TensorBoard logs and results.json"""
    threads: int = 1
    """torch.set_num_threads: one thread is fastest for these small networks"""
    progress_bar: bool = True
    """show a progress bar while training"""


def print_table(title: str, results: dict) -> None:
    print(f"\n{title}")
    print("| opponent | games | win | draw | loss | illegal |")
    print("|---|---:|---:|---:|---:|---:|")
    for opponent, r in results.items():
        print(f"| {opponent} | {r.games} | {r.win:.1%} | {r.draw:.1%} | {r.loss:.1%} | {r.illegal:.1%} |")


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(Args, argv, __doc__)
    import numpy as np
    import torch

    from text_envs.tictactoe.evaluation import evaluate_tictactoe
    from text_envs_agents.tictactoe_training import ENV_ID, train_tictactoe_agent

    np.set_printoptions(precision=3)
    torch.set_num_threads(args.threads)
    algo = ALGORITHMS[args.algo]
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    print(
        f"training {args.algo} on {ENV_ID} for {args.timesteps:,} moves against {args.opponent} "
        f"(epsilon {args.opponent_epsilon}), seed {args.seed}"
    )
    start = time.perf_counter()
    agent = train_tictactoe_agent(
        algo,
        args.timesteps,
        seed=args.seed,
        opponent=args.opponent,
        opponent_epsilon=args.opponent_epsilon,
        agent_first={"yes": True, "no": False, "alternate": None}[args.agent_first],
        n_envs=args.n_envs,
        tensorboard_log=output / "tensorboard",
        progress_bar=args.progress_bar,
    )
    agent.save(output / f"{algo}.{'safetensors' if algo == 'qlearning' else 'zip'}")
    train_seconds = time.perf_counter() - start
    results = {
        opponent: evaluate_tictactoe(agent, opponent, games=args.eval_games, seed=args.seed + 1000)
        for opponent in ("random", "minimax")
    }
    print_table(
        f"{args.algo}, {args.timesteps:,} moves, trained in {train_seconds:.0f} s, evaluated deterministically:",
        results,
    )
    summary = {
        "args": asdict(args),
        "train_seconds": train_seconds,
        "results": {opponent: r.as_dict() for opponent, r in results.items()},
    }
    (output / "results.json").write_text(json.dumps(summary, indent=2))
    print(f"\nmodel, TensorBoard logs and results.json in {output}/")


if __name__ == "__main__":
    main()
