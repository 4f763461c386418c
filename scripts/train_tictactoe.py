"""Train an agent on text_envs/TicTacToe-v0, then evaluate it against the random and minimax opponents.

    python scripts/train_tictactoe.py                                  # MaskablePPO, the defaults below
    python scripts/train_tictactoe.py --algo qlearning --timesteps 2000000
    python scripts/train_tictactoe.py --algo ppo --opponent random --timesteps 100000 --seed 3

Algorithms: ``maskable_ppo`` (sb3-contrib, uses the env's action masks), ``ppo``, ``a2c``, ``dqn``
(stable-baselines3, no masks: they must learn that occupied cells lose) and ``qlearning``
(:class:`agents.QLearningAgent`, tabular). Progress shows as a bar, training curves go to
TensorBoard under ``--output`` (``tensorboard --logdir runs``), the model is saved there, and the
win/draw/loss/illegal rates over ``--eval-games`` games against each opponent are printed.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from cli_args import add_dataclass_arguments, dataclass_from_arguments

from text_envs.tictactoe.evaluation import GameResults, evaluate_tictactoe
from text_envs_agents.tictactoe_training import ALGORITHMS, ENV_ID, train_tictactoe_agent


@dataclass
class Args:
    algo: str = "maskable_ppo"
    """one of maskable_ppo, ppo, a2c, dqn, qlearning"""
    opponent: str = "minimax"
    """training opponent: random or minimax"""
    opponent_epsilon: float = 0.5
    """probability that the minimax training opponent plays a random move instead"""
    agent_first: str = "alternate"
    """yes, no or alternate (the agent's side in training games)"""
    timesteps: int = 200_000
    """agent moves to train for"""
    n_envs: int = 8
    """parallel training envs (boards for qlearning: 32 x n_envs)"""
    seed: int = 0
    """seeds the algorithm, the envs and the evaluation"""
    eval_games: int = 1000
    """games against each opponent after training"""
    output: str = "runs/tictactoe"
    """directory for the model, TensorBoard logs and results.json"""
    torch_threads: int = 1
    """torch.set_num_threads: one thread is fastest for these small networks"""
    progress_bar: bool = True
    """show a progress bar while training"""


def parse_args() -> Args:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_dataclass_arguments(parser, Args)
    args = dataclass_from_arguments(Args, parser.parse_args())
    if args.algo not in ALGORITHMS:
        parser.error(f"--algo must be one of {ALGORITHMS}")
    if args.agent_first not in ("yes", "no", "alternate"):
        parser.error("--agent-first must be yes, no or alternate")
    return args


def print_table(title: str, results: dict[str, GameResults]) -> None:
    print(f"\n{title}")
    print("| opponent | games | win | draw | loss | illegal |")
    print("|---|---:|---:|---:|---:|---:|")
    for opponent, r in results.items():
        print(f"| {opponent} | {r.games} | {r.win:.1%} | {r.draw:.1%} | {r.loss:.1%} | {r.illegal:.1%} |")


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.torch_threads)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    print(
        f"training {args.algo} on {ENV_ID} for {args.timesteps:,} moves against {args.opponent} "
        f"(epsilon {args.opponent_epsilon}), seed {args.seed}"
    )
    start = time.perf_counter()
    agent = train_tictactoe_agent(
        args.algo,
        args.timesteps,
        seed=args.seed,
        opponent=args.opponent,
        opponent_epsilon=args.opponent_epsilon,
        agent_first={"yes": True, "no": False, "alternate": None}[args.agent_first],
        n_envs=args.n_envs,
        tensorboard_log=output / "tensorboard",
        progress_bar=args.progress_bar,
    )
    agent.save(output / f"{args.algo}.{'safetensors' if args.algo == 'qlearning' else 'zip'}")
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
    np.set_printoptions(precision=3)
    main()
