"""Moves per second of random legal Tic-Tac-Toe play: our single env, our vector env, PettingZoo's tictactoe_v3.

    python scripts/bench_tictactoe.py [--seconds 3] [--boards 4096] [--json PATH]

All three run in this one process, one after the other, on one core. Every move counts, the
agent's and the opponent's. The agent's random legal move is picked the same way for the single
env and PettingZoo (one uniform draw indexing the legal cells); the vector env picks all its
boards' moves with array operations. ``single env (gym.make)`` is what users get from
``gym.make`` (with Gymnasium's default wrappers); ``single env (unwrapped)`` is the env alone.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import tyro

import text_envs  # noqa: F401  (registers the envs)
from text_envs import TicTacToeEnv, TicTacToeVectorEnv
from text_envs.tictactoe.rules import nth_allowed_moves


def timed(play: Callable[[], int], seconds: float) -> float:
    """Moves per second of ``play`` (which plays a chunk and returns its move count), run for ``seconds``."""
    play()  # warm-up
    moves, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        moves += play()
    return moves / (time.perf_counter() - start)


def single_env_player(env: gym.Env, games: int = 200) -> Callable[[], int]:
    rng = np.random.default_rng(0)
    env.reset(seed=0)

    def play() -> int:
        moves = 0
        for _ in range(games):
            observation, info = env.reset()
            terminated = False
            while not terminated:
                legal = np.flatnonzero(info["action_mask"])
                observation, _, terminated, _, info = env.step(int(legal[int(rng.random() * len(legal))]))
            moves += int(np.count_nonzero(observation))  # every mark on the final board is one move
        return moves

    return play


def vector_env_player(boards: int, steps: int = 50) -> Callable[[], int]:
    env = TicTacToeVectorEnv(boards, opponent="random")
    rng = np.random.default_rng(0)
    observations, info = env.reset(seed=0)

    def play() -> int:
        nonlocal observations, info
        moves = 0
        for _ in range(steps):
            masks = info["action_mask"]
            finished = ~masks.any(axis=1)  # these boards restart on this step (next-step autoreset)
            marks_before = np.where(finished, 0, np.count_nonzero(observations, axis=1))
            observations, _, _, _, info = env.step(nth_allowed_moves(masks | finished[:, None], rng.random(boards)))
            moves += int((np.count_nonzero(observations, axis=1) - marks_before).sum())
        return moves

    return play


def pettingzoo_player(games: int = 200) -> Callable[[], int]:
    from pettingzoo.classic import tictactoe_v3

    env = tictactoe_v3.env()
    env.reset(seed=0)
    rng = np.random.default_rng(0)

    def play() -> int:
        moves = 0
        for _ in range(games):
            env.reset()
            for _agent in env.agent_iter():
                observation, _, terminated, truncated, _ = env.last()
                if terminated or truncated:
                    env.step(None)
                    continue
                legal = np.flatnonzero(observation["action_mask"])
                env.step(int(legal[int(rng.random() * len(legal))]))
                moves += 1
        return moves

    return play


@dataclass
class Args:
    seconds: float = 3.0
    """measuring time per contender"""
    boards: int = 4096
    """boards in the vector env"""
    json: str = ""
    """write the figures to this path (empty: print only)"""


def main() -> None:
    args = tyro.cli(Args, description=__doc__.split("\n")[0])
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the targets say

    figures = {
        "pettingzoo tictactoe_v3": timed(pettingzoo_player(), args.seconds),
        "single env (unwrapped)": timed(single_env_player(TicTacToeEnv()), args.seconds),
        "single env (gym.make)": timed(single_env_player(gym.make("text_envs/TicTacToe-v0")), args.seconds),
        f"vector env ({args.boards} boards)": timed(vector_env_player(args.boards), args.seconds),
    }
    baseline = figures["pettingzoo tictactoe_v3"]
    print(f"random legal play, one core, {platform.processor() or platform.machine()}")
    print("| contender | moves/s | × PettingZoo |")
    print("|---|---:|---:|")
    for name, rate in figures.items():
        print(f"| {name} | {rate:,.0f} | {rate / baseline:.1f}× |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "moves_per_second": figures,
                    "ratio_to_pettingzoo": {k: v / baseline for k, v in figures.items()},
                    "boards": args.boards,
                    "seconds": args.seconds,
                },
                f,
                indent=2,
            )


if __name__ == "__main__":
    main()
