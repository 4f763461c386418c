"""Reward-shaping study: sweep the KL coefficient β and any shaping stack, plot reward and gold score against KL.

    text-envs-shaping-sweep                                   # the default grid, ~6 minutes here
    text-envs-shaping-sweep --betas 0.01 0.1 1 --stacks --seeds 0 1 2 --iterations 120
    text-envs-shaping-sweep --betas --stacks "MissingEOSTerm(penalty=1.0)" "LengthTerm(coef=0.1); ReturnStdScaling()"

Each cell trains TextPPO on the embedded defaults (the default reward model, training prompts) for
``--iterations`` iterations, then samples one completion per held-out prompt and records the
reward-model score, the gold score (the lexicon evaluator no model is trained on), the KL to the
initial LM (nats per sequence) and the completion length. The β sweep runs with no further shaping;
each of ``--stacks`` (a :func:`text_envs.shaping.parse_shaping` spec: any pieces of
:mod:`text_envs.shaping`, the ones the single env's wrappers hold) runs at ``--stack-beta``.
Plotting both scores against KL gives the over-optimisation curve of Gao et al. (2022): the reward
model's score keeps rising with KL while the gold score flattens or falls once the policy exploits the reward model.

Results are appended to ``results.jsonl`` as each cell finishes, so an interrupted sweep resumes where
it stopped (finished cells are skipped); ``results.csv`` and ``sweep.png`` are rewritten at the end.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from text_envs.defaults import DEFAULT_PROMPTS_TEST, DEFAULT_PROMPTS_TRAIN
from text_envs_agents.cli.common import parse

COLUMNS = (
    "beta",
    "shaping",
    "seed",
    "score_mean",
    "score_std",
    "gold_mean",
    "kl",
    "completion_length",
    "train_seconds",
)


@dataclass
class Args:
    betas: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0)
    """KL coefficients β of the β sweep (no further shaping)"""
    stacks: tuple[str, ...] = ("LengthTerm(coef=0.1)", "LengthTerm(coef=0.3)")
    """shaping stacks beyond the KL term, each a cell at --stack-beta, e.g. "LengthTerm(coef=0.1); ClipTransform(-5,
    5)" (LengthTerm(coef) is -coef per completion token, on the last token)"""
    stack_beta: float = 0.1
    """β of the shaping-stack cells"""
    seeds: tuple[int, ...] = (0,)
    """seeds of every cell"""
    iterations: int = 60
    """TextPPO iterations per cell"""
    batch_size: int = 32
    """episodes per iteration"""
    max_new_tokens: int = 24
    """most tokens per completion"""
    threads: int = 1
    """torch.set_num_threads"""
    output_dir: str = "runs/shaping_sweep"
    """results.jsonl (finished cells there are skipped), results.csv and sweep.png"""


def cells(args: Args) -> list[dict[str, float | str]]:
    from text_envs.shaping import parse_shaping

    for stack in args.stacks:
        parse_shaping(stack)  # a bad spec fails before the first cell trains
    grid = [{"beta": beta, "shaping": ""} for beta in args.betas]
    grid += [{"beta": args.stack_beta, "shaping": stack.strip()} for stack in args.stacks if stack.strip()]
    return [{**cell, "seed": seed} for cell in grid for seed in args.seeds]


def run_cell(cell: dict[str, float], args: Args) -> dict[str, float]:
    from text_envs import TextGenerationVectorEnv
    from text_envs.rewards.lexicon import lexicon_sentiment_reward
    from text_envs.rewards.trained import default_reward_model
    from text_envs.shaping import parse_shaping
    from text_envs_agents.text_ppo import TextPPO, TextPPOConfig

    reward = default_reward_model()
    env = TextGenerationVectorEnv(
        args.batch_size, prompts=str(DEFAULT_PROMPTS_TRAIN), reward_model=reward, max_new_tokens=args.max_new_tokens
    )
    held_out = TextGenerationVectorEnv(
        64, prompts=str(DEFAULT_PROMPTS_TEST), reward_model=reward, max_new_tokens=args.max_new_tokens
    )
    config = TextPPOConfig(kl_coef=cell["beta"], seed=int(cell["seed"]))
    trainer = TextPPO(env, config=config, shaping=parse_shaping(cell["shaping"]))
    start = time.perf_counter()
    trainer.learn(iterations=args.iterations)
    metrics, _ = trainer.evaluate(held_out, seed=0, gold=lexicon_sentiment_reward)
    return {**cell, **metrics, "train_seconds": time.perf_counter() - start}


def plot(rows: list[dict[str, float]], path: Path) -> None:
    try:
        import matplotlib
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError('plotting the sweep needs matplotlib: pip install "text_envs[plot]"') from error

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (reward_axis, gold_axis) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for name, selected, marker in (
        ("β sweep", [r for r in rows if not r["shaping"]], "o"),
        ("shaping stacks", [r for r in rows if r["shaping"]], "s"),
    ):
        if not selected:
            continue
        kl = [r["kl"] for r in selected]
        reward_axis.scatter(kl, [r["score_mean"] for r in selected], marker=marker, label=name)
        gold_axis.scatter(kl, [r["gold_mean"] for r in selected], marker=marker, label=name)
        for r in selected:
            label = f"β={r['beta']:g}" + (f", {r['shaping']}" if r["shaping"] else "")
            reward_axis.annotate(label, (r["kl"], r["score_mean"]), fontsize=7)
            gold_axis.annotate(label, (r["kl"], r["gold_mean"]), fontsize=7)
    reward_axis.set(
        xlabel="KL to the initial LM (nats per sequence)",
        ylabel="reward-model score (logit)",
        title="what the policy is trained on",
    )
    gold_axis.set(
        xlabel="KL to the initial LM (nats per sequence)",
        ylabel="gold score (lexicon, [-1, 1])",
        title="the independent evaluator",
    )
    reward_axis.legend()
    figure.savefig(path, dpi=120)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(Args, argv, __doc__)
    import torch
    from transformers.utils import logging as transformers_logging

    torch.set_num_threads(args.threads)
    transformers_logging.disable_progress_bar()
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    results_path = output / "results.jsonl"
    done = [json.loads(line) for line in results_path.read_text().splitlines()] if results_path.exists() else []
    older = [row for row in done if "shaping" not in row]
    if older:  # rows of the sweep before shaping stacks (a length_penalty column): other cells, set aside
        print(f"{len(older)} rows in {results_path} predate shaping stacks (length_penalty); they are not resumed")
        done = [row for row in done if "shaping" in row]
    key = ("beta", "shaping", "seed")
    finished = {tuple(row[k] for k in key) for row in done}
    todo = [cell for cell in cells(args) if tuple(cell[k] for k in key) not in finished]
    print(f"{len(todo)} cells to run, {len(done)} already in {results_path}")
    for index, cell in enumerate(todo, start=1):
        row = run_cell(cell, args)
        with open(results_path, "a") as f:
            f.write(json.dumps(row) + "\n")
        done.append(row)
        print(
            f"[{index}/{len(todo)}] β={row['beta']:g} shaping={row['shaping'] or '-'} seed={row['seed']}: "
            f"score {row['score_mean']:.2f}, gold {row['gold_mean']:.3f}, KL {row['kl']:.1f}, "
            f"length {row['completion_length']:.1f} ({row['train_seconds']:.0f} s)",
            flush=True,
        )
    rows = sorted(done, key=lambda r: (r["shaping"], r["beta"], r["seed"]))
    with open(output / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, output / "sweep.png")
    print("\n| β | shaping | seed | reward-model score | gold score | KL (nats) | length |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['beta']:g} | {r['shaping'] or '-'} | {r['seed']} | {r['score_mean']:.2f} | "
            f"{r['gold_mean']:.3f} | {r['kl']:.1f} | {r['completion_length']:.1f} |"
        )
    print(f"\nresults.jsonl, results.csv and sweep.png in {output}/")


if __name__ == "__main__":
    main()
