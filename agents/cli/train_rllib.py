"""Train with Ray RLlib's PPO on text_envs, sampling with parallel env runners, locally or on a Ray cluster.

    text-envs-train-rllib                                          # TicTacToe-v0, 2 env runners, local Ray
    text-envs-train-rllib --env TextGeneration-v0 --reward-model lexicon --iterations 5
    text-envs-train-rllib --num-env-runners 0 --json runs/rllib/ttt.json   # sample in this process
    text-envs-train-rllib --address auto                           # a cluster started with `ray start`
    text-envs-train-rllib --address ray://HEAD_HOST:10001          # a remote cluster through Ray Client

Needs the ``rllib`` extra (``pip install -e ".[rllib]"``). TicTacToe-v0 uses
:class:`text_envs_agents.rllib.ActionMaskingTorchRLModule` (RLlib's default MLP, illegal moves masked);
TextGeneration-v0 uses :class:`text_envs_agents.rllib.CausalLMTorchRLModule` (the embedded LM by default, or
``--model``). Each iteration samples ``--train-batch-size`` env steps (agent moves or generated tokens)
over the env runners, then runs PPO's update in this process; its wall time, the env steps and episodes
sampled and the episode return mean (RLlib's, over the last 100 episodes) are printed and, with
``--json``, written out. On a cluster every node needs this package installed; through Ray Client with
token authentication on (Ray's default), run with ``RAY_AUTH_MODE=token`` and the cluster's token in
``~/.ray/auth_token`` or ``RAY_AUTH_TOKEN``.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from text_envs_agents.cli.common import parse


@dataclass
class Args:
    env: Literal["TicTacToe-v0", "TextGeneration-v0"] = "TicTacToe-v0"
    """the env to train on"""
    iterations: int = 10
    """PPO iterations (sample, then update)"""
    num_env_runners: int = 2
    """RLlib EnvRunner actors sampling in parallel, one CPU each (0: sample in this process)"""
    num_envs_per_env_runner: int = 1
    """envs each env runner steps as one batch"""
    train_batch_size: int = 0
    """env steps per iteration (0: the env's default, 2000 moves for TicTacToe, 256 tokens for TextGeneration)"""
    minibatch_size: int = 0
    """PPO minibatch (0: the env's default, 250 / 64)"""
    num_epochs: int = 0
    """passes over each batch (0: the env's default, 5 / 2)"""
    seed: int = 0
    """RLlib's seed (modules, env resets, env runners)"""
    address: str = ""
    """Ray cluster to join: auto, ray://HOST:10001, or empty to start a local Ray instance"""
    num_cpus: int = 0
    """CPUs of the local Ray instance (0: every core); ignored with --address"""
    opponent: Literal["random", "minimax"] = "random"
    """TicTacToe-v0: the opponent"""
    reward_model: Literal["default", "lexicon"] = "default"
    """TextGeneration-v0: default (the embedded reward model) or lexicon (the sentiment lexicon, fast)"""
    max_new_tokens: int = 32
    """TextGeneration-v0: tokens per completion at most"""
    model: str = ""
    """TextGeneration-v0: causal LM, a registered name (smollm2-135m-instruct), Hub name or path (empty: embedded LM)"""
    threads: int = 1
    """torch.set_num_threads in this process (PPO's update); env runners get one thread each from Ray"""
    json: str = ""
    """write the settings and per-iteration figures to this JSON file (empty: none)"""


def parse_args(argv: Sequence[str] | None = None) -> Args:
    args = parse(Args, argv, __doc__)
    if args.num_env_runners < 0 or args.iterations < 1:
        print("text-envs-train-rllib: error: --num-env-runners must be >= 0 and --iterations >= 1", file=sys.stderr)
        raise SystemExit(2)
    return args


def env_and_model_config(args: Args) -> tuple[dict[str, Any], dict[str, Any]]:
    if args.env == "TicTacToe-v0":
        return {"opponent": args.opponent}, {}
    env_config: dict[str, Any] = {"max_new_tokens": args.max_new_tokens}
    if args.reward_model == "lexicon":
        from text_envs.rewards.lexicon import lexicon_sentiment_reward

        env_config["reward_model"] = lexicon_sentiment_reward
    if args.model:
        env_config["tokenizer"] = args.model
    return env_config, {"model_name_or_path": args.model or None}


def training_overrides(args: Args) -> dict[str, int]:
    chosen = {
        "train_batch_size_per_learner": args.train_batch_size,
        "minibatch_size": args.minibatch_size,
        "num_epochs": args.num_epochs,
    }
    return {name: value for name, value in chosen.items() if value > 0}


def iteration_figures(iteration: int, seconds: float, result: dict[str, Any]) -> dict[str, Any]:
    runners = result["env_runners"]
    figures = {
        "iteration": iteration,
        "seconds": seconds,
        "env_steps": int(runners.get("num_env_steps_sampled", 0)),
        "episodes": int(runners.get("num_episodes", 0)),
        "episode_return_mean": float(runners.get("episode_return_mean", math.nan)),
    }
    if "illegal_moves" in runners:
        figures["illegal_moves"] = int(runners["illegal_moves"])
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    import ray
    import torch

    from text_envs_agents.rllib import ppo_config

    torch.set_num_threads(args.threads)
    env_config, model_config = env_and_model_config(args)

    start = time.perf_counter()
    if args.address:
        ray.init(address=args.address)
    else:
        # "local" starts a new instance even where a cluster started with `ray start` is running here.
        ray.init(address="local", num_cpus=args.num_cpus or None, include_dashboard=False)
    ray_init_seconds = time.perf_counter() - start
    try:
        config = ppo_config(
            args.env,
            env_config=env_config,
            model_config=model_config,
            num_env_runners=args.num_env_runners,
            num_envs_per_env_runner=args.num_envs_per_env_runner,
            seed=args.seed,
            **training_overrides(args),
        )
        start = time.perf_counter()
        algorithm = config.build_algo()
        build_seconds = time.perf_counter() - start
        print(
            f"PPO on text_envs/{args.env}: {args.num_env_runners} env runners x {args.num_envs_per_env_runner} envs, "
            f"batch {config.train_batch_size_per_learner} env steps, minibatch {config.minibatch_size}, "
            f"{config.num_epochs} epochs, seed {args.seed}; Ray {ray_init_seconds:.1f} s, build {build_seconds:.1f} s"
        )
        iterations = []
        try:
            for iteration in range(1, args.iterations + 1):
                start = time.perf_counter()
                result = algorithm.train()
                figures = iteration_figures(iteration, time.perf_counter() - start, result)
                iterations.append(figures)
                illegal = f", illegal moves {figures['illegal_moves']}" if "illegal_moves" in figures else ""
                print(
                    f"iteration {iteration:3d}: {figures['seconds']:6.2f} s, {figures['env_steps']} env steps, "
                    f"{figures['episodes']} episodes, episode return mean {figures['episode_return_mean']:+.3f}"
                    f"{illegal}"
                )
        finally:
            algorithm.stop()
    finally:
        ray.shutdown()

    steady = [figures["seconds"] for figures in iterations[1:]] or [iterations[0]["seconds"]]
    mean_seconds = sum(steady) / len(steady)
    print(f"mean iteration time {mean_seconds:.2f} s (after the first, which includes warm-up)")
    if args.json:
        summary = {
            "args": asdict(args),
            "train_batch_size": config.train_batch_size_per_learner,
            "minibatch_size": config.minibatch_size,
            "num_epochs": config.num_epochs,
            "ray_init_seconds": ray_init_seconds,
            "build_seconds": build_seconds,
            "mean_iteration_seconds": mean_seconds,
            "iterations": iterations,
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(summary, indent=2))
        print(f"figures in {args.json}")


if __name__ == "__main__":
    main()
