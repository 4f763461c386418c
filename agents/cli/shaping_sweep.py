"""Reward-shaping study: sweep the KL coefficient β and any shaping stack, plot every judged figure against KL.

    text-envs-shaping-sweep                                   # the default grid and the reference: 8 cells
    text-envs-shaping-sweep --betas 0.01 0.1 1 --stacks --seeds 0 1 2 --iterations 120
    text-envs-shaping-sweep --betas --stacks "MissingEOSTerm(penalty=1.0)" "LengthTerm(coef=0.1); ReturnStdScaling()"
    text-envs-shaping-sweep --judge-lm ""                     # no perplexity judge

Each cell trains TextPPO on the embedded defaults (the default reward model, training prompts; the settings of
``text-envs-train``, :data:`~text_envs_agents.text_ppo.config.FLUENT_RLHF`, with the cell's β) for
``--iterations`` iterations, then samples ``--samples-per-prompt`` completions of every held-out prompt
(temperature 1, no token bans, as it trains: 4 x 64 = 256 by default) and measures them with
:func:`~text_envs_agents.llm.evaluation.evaluate_text_policy`: the reward-model score; the gold score
(the lexicon evaluator no model is trained on); the independent judges of :mod:`text_envs.judges`
(VADER's compound score; the perplexity of the completions given their prompts under ``--judge-lm``,
an LM no training step sees, loaded once per sweep; the share of completions with broken bytes or
control characters; distinct-1/2; words per completion); the KL to the initial LM (nats per sequence)
and the completion length (tokens). The **reference** row (β = ∞) is the untrained LM measured the same
way, so every figure has its starting point. The β sweep runs with no further shaping; each of
``--stacks`` (a :func:`text_envs.shaping.parse_shaping` spec: any pieces of :mod:`text_envs.shaping`,
the ones the single env's wrappers hold) runs at ``--stack-beta``. Plotting the scores against KL gives
the over-optimisation curve of Gao et al. (2022): the reward model's score keeps rising with KL while
the gold scores flatten or fall once the policy exploits the reward model; the fluency and diversity
panels show what the scores cannot.

Results are appended to ``results.jsonl`` as each cell finishes (the reference first), so an interrupted
sweep resumes where it stopped (finished cells are skipped, rows of older sweeps without the judged
figures included: their columns stay blank); ``results.csv`` and ``sweep.png`` are rewritten at the end.

Time: a cell's training took about 50 s on one thread here; measuring it about 8 s, and the SmolLM2 judge
about 50 s more (256 completions; ``--samples-per-prompt 1`` or ``--judge-lm ""`` for a quicker sweep).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from text_envs.defaults import DEFAULT_LM_DIR, DEFAULT_PROMPTS_TEST, DEFAULT_PROMPTS_TRAIN
from text_envs.durable import append_line
from text_envs.judges import DEFAULT_JUDGE_LM, JUDGED, judge_label
from text_envs_agents.cli.common import parse

if TYPE_CHECKING:  # torch and the models load only when a sweep runs
    import torch
    from torch import nn

    from text_envs.rewards.protocol import RewardModel
    from text_envs_agents.llm.rollout import RolloutBatch

REFERENCE: dict[str, Any] = {"beta": math.inf, "shaping": "", "seed": None}
"""The reference row's cell: the untrained LM, where β → ∞ pins the policy (not trained, so no seed)."""
KEY = ("beta", "shaping", "seed")
COLUMNS = (
    *KEY,
    "score_mean",
    "score_std",
    "gold_mean",
    *JUDGED,
    "judge_lm",
    "kl",
    "completion_length",
    "completions",
    "train_seconds",
)
PLOTTED = ("score_mean", "gold_mean", "vader_mean", "perplexity", "broken_share", "distinct_2", "words_mean")
"""The figures of ``sweep.png``, a panel each against KL."""
HELD_OUT_ENVS = 64
"""Held-out completions sampled together (one per held-out prompt); the other samples follow in rounds."""


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
    max_new_tokens: int = 32
    """most tokens per completion"""
    samples_per_prompt: int = 4
    """completions of every held-out prompt per cell (the 64 held-out prompts: 256 completions by default)"""
    judge_lm: str = DEFAULT_JUDGE_LM
    """LM that judges fluency (perplexity of the completions given their prompts), never trained: a registered
    name, Hub name or folder (empty: no perplexity)"""
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


class HeldOut:
    """How every cell is measured, loaded once per sweep: the held-out env, the untrained LM (the KL reference
    and the reference row) and the perplexity judge, a model of its own that no trainer holds."""

    def __init__(self, args: Args, reward_model: RewardModel) -> None:
        from text_envs import TextGenerationVectorEnv
        from text_envs.judges import load_perplexity_judge
        from text_envs.lm import load_causal_lm, resolve_device

        self.device = resolve_device("auto")
        self.reward_model = reward_model
        self.samples_per_prompt = args.samples_per_prompt
        self.env = TextGenerationVectorEnv(
            HELD_OUT_ENVS,
            prompts=str(DEFAULT_PROMPTS_TEST),
            reward_model=reward_model,
            max_new_tokens=args.max_new_tokens,
        )
        self.reference = load_causal_lm().to(self.device).requires_grad_(False)
        self.perplexity_judge, self.judge_lm = load_perplexity_judge(args.judge_lm, str(self.device))

    def reference_logprobs(self, batch: RolloutBatch) -> torch.Tensor:
        from text_envs_agents.llm.rollout import sequence_logprobs

        return sequence_logprobs(self.reference, batch)

    def measure(self, model: nn.Module) -> dict[str, float | str]:
        """Every figure of ``model`` on the held-out prompts (evaluation seed 0, as every cell), and its judge LM."""
        from text_envs.rewards.lexicon import lexicon_sentiment_reward
        from text_envs_agents.llm.evaluation import evaluate_text_policy

        evaluation = evaluate_text_policy(
            model,
            self.reference_logprobs,
            self.env,
            seed=0,
            samples_per_prompt=self.samples_per_prompt,
            scorers={"gold": lexicon_sentiment_reward},
            perplexity_judge=self.perplexity_judge,
        )
        return {**evaluation.metrics, "judge_lm": self.judge_lm}


def run_cell(cell: dict[str, Any], args: Args, held_out: HeldOut) -> dict[str, Any]:
    """Train one cell's policy from the embedded LM, then measure it; the reference cell is the untrained LM."""
    from text_envs import TextGenerationVectorEnv
    from text_envs.shaping import parse_shaping
    from text_envs_agents.text_ppo import TextPPO
    from text_envs_agents.text_ppo.config import FLUENT_RLHF

    if cell == REFERENCE:
        return {**cell, **held_out.measure(held_out.reference), "train_seconds": 0.0}
    env = TextGenerationVectorEnv(
        args.batch_size,
        prompts=str(DEFAULT_PROMPTS_TRAIN),
        reward_model=held_out.reward_model,
        max_new_tokens=args.max_new_tokens,
    )
    config = dataclasses.replace(FLUENT_RLHF, kl_coef=cell["beta"], seed=int(cell["seed"]))
    trainer = TextPPO(env, config=config, shaping=parse_shaping(cell["shaping"]), device=held_out.device)
    start = time.perf_counter()
    trainer.learn(iterations=args.iterations)
    train_seconds = time.perf_counter() - start
    metrics = held_out.measure(trainer.policy.model)
    trainer.close()
    return {**cell, **metrics, "train_seconds": train_seconds}


def is_reference(row: dict[str, Any]) -> bool:
    return row["beta"] == math.inf


def _sort_key(row: dict[str, Any]) -> tuple:
    return (not is_reference(row), row["shaping"], row["beta"], -1 if row["seed"] is None else row["seed"])


def headings(rows: Sequence[dict[str, Any]], why_no_perplexity: str) -> dict[str, str]:
    """Each figure's table heading and axis label, naming its judge: the judge LMs of the rows' perplexities,
    or ``why_no_perplexity`` when no row has one."""
    judges = sorted({str(r["judge_lm"]) for r in rows if "perplexity" in r and "judge_lm" in r})
    labels = {
        "score_mean": "reward-model score (the default reward model, logit)",
        "gold_mean": "gold score (the lexicon, [-1, 1])",
        **{key: judge_label(key, ", ".join(judges)) for key in JUDGED},
        "kl": "KL to the initial LM (nats per sequence)",
        "completion_length": "length (tokens)",
    }
    if not judges:
        labels["perplexity"] = f"{JUDGED['perplexity']}: none ({why_no_perplexity})"
    return labels


def plot(rows: list[dict[str, Any]], path: Path, labels: dict[str, str]) -> None:
    """A panel per figure of :data:`PLOTTED` against KL; the reference drawn as a horizontal line."""
    try:
        import matplotlib
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError('plotting the sweep needs matplotlib: pip install "text_envs[plot]"') from error

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reference = next((r for r in rows if is_reference(r)), None)
    trained = [r for r in rows if not is_reference(r)]
    figure, axes = plt.subplots(2, 4, figsize=(20, 8.5), constrained_layout=True)
    for axis, key in zip(axes.flat, PLOTTED, strict=False):
        for name, selected, marker in (
            ("β sweep", [r for r in trained if not r["shaping"] and key in r], "o"),
            ("shaping stacks", [r for r in trained if r["shaping"] and key in r], "s"),
        ):
            if not selected:
                continue
            axis.scatter([r["kl"] for r in selected], [r[key] for r in selected], marker=marker, label=name)
            for r in selected:
                label = f"β={r['beta']:g}" + (f", {r['shaping']}" if r["shaping"] else "")
                axis.annotate(label, (r["kl"], r[key]), fontsize=7)
        if reference is not None and key in reference:
            axis.axhline(reference[key], color="grey", linestyle="--", label="reference (the untrained LM)")
        axis.set(xlabel=labels["kl"])
        axis.set_title(labels[key], fontsize=9, wrap=True)
        if not axis.has_data():
            axis.text(0.5, 0.5, "not measured", ha="center", va="center", transform=axis.transAxes)
            continue
        if key == "perplexity":
            axis.set_yscale("log")  # a policy that degenerates multiplies it
        axis.legend(fontsize=7)
    axes.flat[-1].axis("off")
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _cell_text(row: dict[str, Any], key: str) -> str:
    decimals = {"score_mean": 2, "kl": 1, "completion_length": 1, "perplexity": 1, "words_mean": 1}.get(key, 3)
    return f"{row[key]:.{decimals}f}" if key in row else "-"


def markdown_table(rows: Sequence[dict[str, Any]], labels: dict[str, str]) -> str:
    """The sweep as a Markdown table, a figure per column headed by what judged it (:func:`headings`); ``-``: not
    measured."""
    figures = ("score_mean", "gold_mean", *JUDGED, "kl", "completion_length")
    lines = [
        "| β | shaping | seed | " + " | ".join(labels[key] for key in figures) + " |",
        "|---:|---|---:|" + "---:|" * len(figures),
    ]
    for r in rows:
        beta = "∞ (reference: the untrained LM)" if is_reference(r) else f"{r['beta']:g}"
        seed = "-" if r["seed"] is None else str(r["seed"])
        shaping = f"`{r['shaping']}`" if r["shaping"] else "-"
        lines.append(f"| {beta} | {shaping} | {seed} | " + " | ".join(_cell_text(r, key) for key in figures) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(Args, argv, __doc__)
    import torch
    from transformers.utils import logging as transformers_logging

    from text_envs.judges import NO_VADER, vader_available
    from text_envs.rewards.trained import default_reward_model

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
    finished = {tuple(row[k] for k in KEY) for row in done}
    todo = [cell for cell in [REFERENCE, *cells(args)] if tuple(cell[k] for k in KEY) not in finished]
    print(f"{len(todo)} cells to run, {len(done)} already in {results_path}")
    if not vader_available():
        print(NO_VADER)
    why_no_perplexity = "no judge LM in these results"
    if todo:
        held_out = HeldOut(args, default_reward_model())
        if held_out.perplexity_judge is None:
            why_no_perplexity = held_out.judge_lm
            print(f"no perplexity: {why_no_perplexity}")
        elif Path(args.judge_lm).expanduser().resolve() == DEFAULT_LM_DIR.resolve():
            print(
                "the judge LM is a copy of the embedded LM every cell starts from: its perplexity favours the reference"
            )
    for index, cell in enumerate(todo, start=1):
        row = run_cell(cell, args, held_out)
        append_line(results_path, json.dumps(row))  # durable before the next cell starts
        done.append(row)
        name = (
            "reference"
            if is_reference(row)
            else f"β={row['beta']:g} shaping={row['shaping'] or '-'} seed={row['seed']}"
        )
        print(
            f"[{index}/{len(todo)}] {name}: score {row['score_mean']:.2f}, "
            f"gold {row['gold_mean']:.3f}, VADER {_cell_text(row, 'vader_mean')}, "
            f"perplexity {_cell_text(row, 'perplexity')}, KL {row['kl']:.1f}, "
            f"length {row['completion_length']:.1f} ({row['train_seconds']:.0f} s)",
            flush=True,
        )
    rows = sorted(done, key=_sort_key)
    with open(output / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    labels = headings(rows, why_no_perplexity)
    plot(rows, output / "sweep.png", labels)
    print("\n" + markdown_table(rows, labels))
    print(f"results.jsonl, results.csv and sweep.png in {output}/")


if __name__ == "__main__":
    main()
