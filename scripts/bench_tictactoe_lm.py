"""Stock stable-baselines3 PPO against multi-turn TextPPO on TicTacToeText-v0 whole games, on the same budget.

    python scripts/bench_tictactoe_lm.py [--model PATH] [--warm-start-games 1000] [--warm-start-epochs 4]
                                         [--warm-start-deterministic] [--rl-games 1000] [--pairs 3]
                                         [--textppo-learning-rate 1e-4] [--sb3-learning-rate 1e-4]
                                         [--threads 1] [--seed 0] [--output-dir runs/bench_tictactoe_lm]

One process, through ``text-envs-train-tictactoe-lm``'s own stages
(:func:`~text_envs_agents.tictactoe_lm.training.train_tictactoe_lm`, ``context="game"``): the model imitates
``--warm-start-games`` minimax games (``--warm-start-epochs`` passes; ties among optimal moves broken at random, or
by the lowest cell with ``--warm-start-deterministic``); then each trainer starts from that
warm-started folder and plays ``--rl-games`` RL games against the random opponent (16 envs): ``textppo``
(one KV cache per game while sampling, one teacher-forced forward per game per update) and ``sb3-ppo``
(SB3's PPO with ``LMActorCriticPolicy``: a forward over the whole context per token sampled and per token
in each update). The two train in ``--pairs`` interleaved pairs (:mod:`paired_trials`: TextPPO first in
even pairs, SB3 first in odd ones; pair ``k`` seeds both trainers with ``seed + k``), and each trial is
evaluated on sampled games (temperature 1, nothing masked). Printed per trainer: games per second (the
median over pairs) and the training seconds it makes, the illegal rate and mean reward against random (means over
pairs); and the speed ratio TextPPO / SB3 PPO, the median of the per-pair ratios with their range. Each
trainer keeps its own update settings (the command's defaults) at its stated learning rate: the budget,
model, warm start, opponent and evaluation are what is matched.

Default model: the embedded LM with a 512-position window, built here (its 128 positions hold one turn of plain
prompts, not a whole game; the extra rows of its position table start as copies of the first 128).
``--model`` takes any causal LM folder or registered name instead (``smollm2-135m-instruct`` with
``--prompt-format chat --lora-r 16``).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import torch
import tyro
from paired_trials import interleaved_rates, ratio_summary
from transformers import GPT2LMHeadModel

from text_envs.defaults import DEFAULT_LM_DIR
from text_envs.lm import load_tokenizer
from text_envs_agents.tictactoe_lm.training import StageResult, TicTacToeLMConfig, results_table, train_tictactoe_lm


@dataclass
class Args:
    model: str | None = None
    """causal LM folder or registered name; None: the embedded LM with the module docstring's 512 positions"""
    prompt_format: Literal["plain", "chat"] = "plain"
    lora_r: int = 0
    warm_start_games: int = 1000
    warm_start_epochs: int = 4
    warm_start_deterministic: bool = False
    rl_games: int = 1000
    pairs: int = 3
    """interleaved (TextPPO, SB3 PPO) training pairs, each from the one warm start"""
    textppo_learning_rate: float = 1e-4
    sb3_learning_rate: float = 1e-4
    eval_games: int = 400
    threads: int = 1
    seed: int = 0
    output_dir: str = "runs/bench_tictactoe_lm"
    json: str | None = None
    """also write the figures here"""


def game_window_gpt2(folder: Path) -> str:
    """The embedded LM with its position table extended from 128 to 512 rows (row ``i`` starts as row
    ``i % 128``), saved to ``folder`` with its tokenizer: its pretrained weights, a window for a whole game."""
    model = GPT2LMHeadModel.from_pretrained(DEFAULT_LM_DIR)
    old = model.transformer.wpe.weight.data
    model.config.n_positions = 512
    model.transformer.wpe = torch.nn.Embedding(512, old.shape[1])
    model.transformer.wpe.weight.data = old[torch.arange(512) % old.shape[0]].clone()
    model.save_pretrained(folder)
    load_tokenizer(None).save_pretrained(folder)
    return str(folder)


def main(args: Args) -> dict:
    torch.set_num_threads(args.threads)
    output = Path(args.output_dir)
    model = args.model or game_window_gpt2(output / "model")
    base = TicTacToeLMConfig(
        model=model,
        prompt_format=args.prompt_format,
        context="game",
        lora_r=args.lora_r,
        warm_start_games=args.warm_start_games,
        warm_start_epochs=args.warm_start_epochs,
        warm_start_deterministic=args.warm_start_deterministic,
        rl_games=0,
        eval_games=args.eval_games,
        eval_opponents=("random",),
        eval_greedy=False,
        eval_zero_shot=False,
        seed=args.seed,
    )
    (warm_start,) = train_tictactoe_lm(base, output / "warm_start_run")
    figures = {"warm start": {"seconds": warm_start.seconds, **warm_start.results["random, sampled"]}}
    warm_started = str(output / "warm_start_run" / "warm_start")
    learning_rates = {"textppo": args.textppo_learning_rate, "sb3-ppo": args.sb3_learning_rate}
    trials: dict[str, list[StageResult]] = {algo: [] for algo in learning_rates}

    def trial(algo: str) -> Callable[[int], float]:
        def run(pair: int) -> float:
            config = replace(
                base,
                model=warm_started,
                algo=algo,
                warm_start_games=0,
                rl_games=args.rl_games,
                learning_rate=learning_rates[algo],
                seed=args.seed + pair,
            )
            (trained,) = train_tictactoe_lm(config, output / f"{algo}_pair{pair}")
            print(f"{algo}, pair {pair}:\n{results_table([trained])}")
            trials[algo].append(trained)
            return args.rl_games / trained.seconds

        return run

    rates = interleaved_rates({algo: trial(algo) for algo in learning_rates}, args.pairs)
    for algo, runs in trials.items():
        figures[algo] = {
            "seconds": args.rl_games / statistics.median(rates[algo]),
            "games_per_second": statistics.median(rates[algo]),
            "games": runs[0].results["random, sampled"]["games"],
            **{
                key: statistics.fmean(run.results["random, sampled"][key] for run in runs)
                for key in ("illegal", "mean_reward")
            },
        }
    ratio = ratio_summary(rates["textppo"], rates["sb3-ppo"])
    print(f"\n{args.rl_games} RL games a trial, {args.pairs} pairs, after {args.warm_start_games} imitated; {model}")
    print("| trainer | training s | games/s | illegal vs random | mean reward vs random |")
    print("|---|---:|---:|---:|---:|")
    for name, row in figures.items():
        speed = f"{row['games_per_second']:.2f}" if "games_per_second" in row else "–"
        print(f"| {name} | {row['seconds']:.0f} | {speed} | {row['illegal']:.1%} | {row['mean_reward']:+.3f} |")
    low, high = ratio["range"]
    print(f"speed ratio TextPPO / SB3 PPO: {ratio['median']:.2f}x (median of {args.pairs} pairs, {low:.2f}-{high:.2f})")
    result = {
        "args": vars(args),
        "figures": figures,
        "ratio_textppo_over_sb3": ratio["median"],
        "ratio_textppo_over_sb3_range": ratio["range"],
        "ratio_textppo_over_sb3_per_pair": ratio["per_pair"],
    }
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__.strip().split("\n")[0]))
