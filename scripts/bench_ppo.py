"""Training throughput (completions/s, generation and updates included) of TextPPO beside TRL's GRPOTrainer.

    python scripts/bench_ppo.py [--batch-size 16] [--max-new-tokens 24] [--iterations 10] [--warmup 1]
                                [--ppo-epochs 4] [--minibatch-size 16] [--num-generations 4]
                                [--reward-model lexicon|default] [--model NAME] [--threads 1] [--json PATH]

Both trainers run in this one process, one after the other (TextPPO first, then TRL), each on a
fresh copy of ``--model`` (default: the embedded LM, ``DEFAULT_LM_DIR``), in float32 on the CPU, with
``torch.set_num_threads(--threads)``. An *iteration* is one rollout of ``--batch-size`` completions
followed by all the optimisation passes over them: one :meth:`TextPPO.learn` round, and for TRL
``num_iterations x steps_per_generation`` optimiser steps on one generation batch. ``--warmup``
iterations run first and are not timed; the next ``--iterations`` are, from the end of the last
warm-up iteration to the end of the last timed one (TRL: a ``TrainerCallback.on_step_end`` clock).
Throughput = ``batch_size x iterations / seconds``; the target is TextPPO / TRL >= 1.5x.

TRL is a comparison-only dev dependency (``pip install trl``, in the ``dev`` extra); it is imported
only by :func:`bench_trl`. Without it, or if its trainer fails here, the TextPPO figures are still
printed with the reason TRL did not run.

## Settings, matched (TextPPO | TRL GRPOTrainer)

- model: ``--model`` (default: ``DEFAULT_LM_DIR``), float32, CPU | the same (``bf16=False``, ``use_cpu=True``).
- prompts: ``DEFAULT_PROMPTS_TRAIN`` as plain text, no chat template | the same, in an in-memory
  ``Dataset.from_list``; tokenizer with ``padding_side="left"`` and its ``<|pad|>`` token.
- completions per iteration: ``--batch-size`` (the env's ``num_envs``) | ``generation_batch_size``.
- completion length: ``--max-new-tokens``, stop at EOS | ``max_completion_length``, stop at EOS.
- sampling: temperature 1, no top-k / top-p | ``temperature=1, top_k=0, top_p=1``, Hugging Face
  ``generate`` (``use_vllm=False``).
- reward: the ``--reward-model`` callable, through the env | the same callable in a Python reward function.
- passes over each batch: ``ppo_epochs = --ppo-epochs`` | ``num_iterations``.
- sequences per optimiser step: ``minibatch_size = --minibatch-size`` | ``per_device_train_batch_size``,
  ``gradient_accumulation_steps=1``, ``steps_per_generation = batch_size / minibatch_size``.
- optimiser: AdamW (fused), constant lr 3e-4, weight decay 0.01, grad-norm clip 1.0 |
  ``optim="adamw_torch_fused"``, the same lr with ``lr_scheduler_type="constant"``, ``weight_decay=0.01``,
  ``max_grad_norm=1.0``.
- ratio clipping: ``clip_range`` 0.2 | ``epsilon=0.2``.
- KL to the reference: a frozen copy, ``kl_coef`` 0.05 | a frozen reference model, ``beta=0.05``.
- policy-loss normalisation: mean over the minibatch's completion tokens | ``loss_type="bnpo"`` (the
  same; TRL's default ``"dapo"`` divides by the generation batch's mean tokens per step instead).
- overhead off: no TensorBoard, checkpoints or evaluation | ``report_to="none"``,
  ``logging_strategy="no"``, ``save_strategy="no"``, ``eval_strategy="no"``, ``log_completions=False``,
  ``disable_tqdm=True``; ``gradient_checkpointing=False`` (TRL's default is on, TextPPO has none).

## Mismatches the two algorithms leave

- GRPO samples ``--num-generations`` completions of each prompt (``batch / num_generations``
  distinct prompts per iteration, drawn by TRL's shuffling sampler, each prompt once per epoch);
  TextPPO samples ``batch`` prompts uniformly with replacement, one completion each.
- GRPO has no value head and no GAE: advantages are group-normalised rewards. TextPPO adds a linear
  value head (one ``hidden_size -> 1`` layer on the last hidden states), a clipped value loss and
  GAE over the completion tokens; the extra compute is that head and a backward through it.
- KL: TextPPO puts ``-kl_coef * (log pi - log pi_ref)`` (k1) into the per-token rewards; GRPO adds
  ``beta * k3`` to the loss. Both need one reference forward per sequence per iteration.
- Old log-probs: TextPPO records them (and the values) while sampling, as the weights do not change
  before the update and dropout is off; TRL computes them with one extra policy forward per
  iteration (when ``num_iterations x steps_per_generation > 1``, true by default).
- Dropout (0.1 in the default LM): off on both sides, in sampling and updates (TextPPO always;
  TRL with ``disable_dropout=True``, not its default), so both sample the same distribution.
- Generation: TextPPO steps a ``TextGenerationVectorEnv`` one token at a time with its own KV
  cache (:class:`text_envs_agents.llm.gpt2_decoding.GPT2Decoder` for GPT-2 models: preallocated, no per-token
  concatenation) and inverse-CDF sampling, and scores completions as they finish (one reward call
  per step in which some end); TRL calls ``model.generate`` (a ``DynamicCache``, ``torch.multinomial``)
  on the whole batch and scores all completions in one reward call.
- Teacher-forced forwards: TextPPO packs the sequences two to a row without padding
  (:func:`text_envs_agents.llm.rollout.pack_sequences`), swaps GPT-2's five-op ``gelu_new`` for the fused kernel
  of the same function, and builds the entropy's graph only when ``entropy_coef`` is non-zero; TRL
  runs the padded batch through the model as it is.
- Completion lengths drift apart as the two policies learn: at lr 3e-4 with the lexicon reward,
  TextPPO's per-token KL penalty shortens its completions to ~12 tokens within ~20 iterations while
  GRPO's stay near 18, which flatters TextPPO's completions/s. The compute of an iteration does not
  depend on the learning rate, so ``--learning-rate 1e-6`` (neither policy moves) compares the two at
  the same completion lengths; the README reports both.
  Finished rows keep being computed until the batch is done on both sides.
- Minibatch order: TextPPO reshuffles the batch every epoch; TRL shuffles once per generation and
  walks the same slices each of its ``num_iterations`` passes (identical when minibatch = batch).
- Bookkeeping: TRL computes and keeps per-step metrics in memory (entropy, clip ratios, reward and
  length statistics) even with logging off, and cannot be told to skip them; TextPPO keeps its own
  per-iteration statistics (losses, clip fraction, approximate KL).
- The two policies drift apart while training, so their completion lengths (and so their
  generation cost) can differ; the table reports the mean completion length of each side.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Literal

import numpy as np
import torch
import tyro

from text_envs import TextGenerationVectorEnv
from text_envs.defaults import DEFAULT_LM_DIR, DEFAULT_PROMPTS_TRAIN
from text_envs.generation.prompts import load_prompts
from text_envs.generation.task import RewardModel
from text_envs.lm import load_causal_lm, load_tokenizer
from text_envs.rewards.lexicon import lexicon_sentiment_reward
from text_envs.rewards.trained import default_reward_model
from text_envs_agents.text_ppo import TextPPO, TextPPOConfig


@dataclass
class Args:
    batch_size: int = 16
    """completions per iteration"""
    max_new_tokens: int = 24
    """completion length limit in tokens"""
    iterations: int = 10
    """timed iterations per trainer"""
    warmup: int = 1
    """untimed iterations before them (at least 1)"""
    ppo_epochs: int = 4
    """passes over each batch (TRL num_iterations)"""
    minibatch_size: int = 16
    """completions per optimiser step"""
    num_generations: int = 4
    """TRL: completions per prompt (GRPO group)"""
    learning_rate: float = 3e-4
    """both trainers' constant learning rate"""
    kl_coef: float = 0.05
    """TextPPO kl_coef and TRL beta"""
    clip_range: float = 0.2
    """TextPPO clip_range and TRL epsilon"""
    max_grad_norm: float = 1.0
    """gradient-norm clipping of both trainers"""
    reward_model: Literal["lexicon", "default"] = "lexicon"
    """reward model both trainers use: the lexicon (cheap) or the packaged MiniLM reward model"""
    model: str = ""
    """policy LM of both trainers: Hugging Face Hub name or local folder (empty: the embedded LM)"""
    seed: int = 0
    """seeds both trainers"""
    threads: int = 1
    """torch.set_num_threads for both trainers"""
    json: str = ""
    """write the figures to this path (empty: print only)"""


def load_reward(name: str) -> RewardModel:
    """``lexicon``: the rule-based sentiment score (cheap); ``default``: the packaged MiniLM reward model."""
    return lexicon_sentiment_reward if name == "lexicon" else default_reward_model()


def throughput(batch_size: int, iterations: int, seconds: float) -> dict[str, float]:
    return {
        "seconds": seconds,
        "seconds_per_iteration": seconds / iterations,
        "completions_per_second": batch_size * iterations / seconds,
    }


def bench_text_ppo(args: Args, reward_model: RewardModel) -> dict[str, float]:
    """Time ``args.iterations`` TextPPO iterations after ``args.warmup`` untimed ones."""
    env = TextGenerationVectorEnv(
        args.batch_size,
        tokenizer=args.model or None,
        prompts=DEFAULT_PROMPTS_TRAIN,
        reward_model=reward_model,
        max_new_tokens=args.max_new_tokens,
    )
    config = TextPPOConfig(
        learning_rate=args.learning_rate,
        ppo_epochs=args.ppo_epochs,
        minibatch_size=args.minibatch_size,
        clip_range=args.clip_range,
        kl_coef=args.kl_coef,
        max_grad_norm=args.max_grad_norm,
        temperature=1.0,
        seed=args.seed,
    )
    agent = TextPPO(env, load_causal_lm(args.model or DEFAULT_LM_DIR), config)
    agent.learn(iterations=args.warmup)
    start = time.perf_counter()
    agent.learn(iterations=args.iterations)
    history = agent.history[-args.iterations :]  # the timed iterations' metrics
    seconds = time.perf_counter() - start
    agent.close()
    return {
        **throughput(args.batch_size, args.iterations, seconds),
        "mean_completion_tokens": float(np.mean([m["completion_length"] for m in history])),
        "mean_score": float(np.mean([m["score"] for m in history])),
    }


def bench_trl(args: Args, reward_model: RewardModel) -> dict[str, float]:
    """Time ``args.iterations`` GRPOTrainer iterations after ``args.warmup`` untimed ones (see the module doc)."""
    from datasets import Dataset
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

    steps_per_generation = args.batch_size // args.minibatch_size
    steps_per_iteration = steps_per_generation * args.ppo_epochs
    lengths: list[float] = []
    scores: list[float] = []

    def reward(prompts: list[str], completions: list[str], completion_ids: list[list[int]], **kwargs) -> list[float]:
        values = np.asarray(reward_model(prompts, completions), dtype=np.float64)
        lengths.append(float(np.mean([len(ids) for ids in completion_ids])))
        scores.append(float(values.mean()))
        return values.tolist()

    class IterationClock(TrainerCallback):
        """``perf_counter`` at the end of every iteration (the last optimiser step on a generation batch)."""

        def __init__(self) -> None:
            self.ends: list[float] = []

        def on_step_end(self, _args, state, control, **kwargs):
            if state.global_step % steps_per_iteration == 0:
                self.ends.append(time.perf_counter())

    tokenizer = load_tokenizer(args.model or DEFAULT_LM_DIR)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dataset = Dataset.from_list([{"prompt": p} for p in load_prompts(DEFAULT_PROMPTS_TRAIN)])
    clock = IterationClock()
    with tempfile.TemporaryDirectory() as output_dir:
        config = GRPOConfig(
            output_dir=output_dir,
            use_cpu=True,
            bf16=False,
            fp16=False,
            seed=args.seed,
            max_steps=(args.warmup + args.iterations) * steps_per_iteration,
            per_device_train_batch_size=args.minibatch_size,
            gradient_accumulation_steps=1,
            steps_per_generation=steps_per_generation,
            num_generations=args.num_generations,
            num_iterations=args.ppo_epochs,
            max_completion_length=args.max_new_tokens,
            temperature=1.0,
            top_k=0,
            top_p=1.0,
            use_vllm=False,
            beta=args.kl_coef,
            epsilon=args.clip_range,
            loss_type="bnpo",
            learning_rate=args.learning_rate,
            lr_scheduler_type="constant",
            optim="adamw_torch_fused",
            weight_decay=0.01,
            max_grad_norm=args.max_grad_norm,
            gradient_checkpointing=False,
            disable_dropout=True,  # TextPPO keeps dropout off too: both sample from the same distribution
            report_to="none",
            logging_strategy="no",
            save_strategy="no",
            eval_strategy="no",
            disable_tqdm=True,
            log_completions=False,
            dataloader_num_workers=0,
            dataloader_pin_memory=False,
        )
        trainer = GRPOTrainer(
            model=load_causal_lm(args.model or DEFAULT_LM_DIR),
            reward_funcs=reward,
            args=config,
            train_dataset=dataset,
            processing_class=tokenizer,
            callbacks=[clock],
        )
        trainer.remove_callback(PrinterCallback)  # its end-of-training summary is all it would print
        torch.set_num_threads(args.threads)  # in case accelerate or the Trainer changed it
        trainer.train()
    timed = clock.ends[args.warmup - 1 :]  # the end of the last warm-up iteration, then one per timed iteration
    if len(timed) != args.iterations + 1:
        raise RuntimeError(f"expected {args.warmup + args.iterations} iteration ends, got {len(clock.ends)}")
    return {
        **throughput(args.batch_size, args.iterations, timed[-1] - timed[0]),
        "mean_completion_tokens": float(np.mean(lengths[args.warmup :])),
        "mean_score": float(np.mean(scores[args.warmup :])),
    }


def package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def refuse(message: str) -> None:
    print(f"bench_ppo.py: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def main() -> None:
    args = tyro.cli(Args, description=__doc__.split("\n")[0])
    if args.warmup < 1 or args.iterations < 1:
        refuse("--warmup and --iterations must be at least 1")
    if args.batch_size % args.minibatch_size:
        refuse("--batch-size must be a multiple of --minibatch-size (TRL splits each batch into equal steps)")
    if args.batch_size % args.num_generations or args.num_generations < 2:
        refuse("--batch-size must be a multiple of --num-generations, which must be at least 2 (GRPO groups)")
    torch.set_num_threads(args.threads)

    reward_model = load_reward(args.reward_model)
    start = time.perf_counter()
    figures: dict[str, object] = {"text_ppo": bench_text_ppo(args, reward_model)}
    trl_version = package_version("trl")
    try:
        figures["trl"] = bench_trl(args, reward_model)
    except ImportError as error:
        figures["trl_error"] = f"TRL could not be imported ({error}); install it with: pip install trl"
    except Exception as error:  # noqa: BLE001  (report any TRL failure and keep the TextPPO figures)
        figures["trl_error"] = f"TRL's GRPOTrainer failed: {type(error).__name__}: {error}"
    wall = time.perf_counter() - start

    ppo = figures["text_ppo"]
    print(
        f"{args.iterations} timed iterations after {args.warmup} warm-up, {args.batch_size} completions of <= "
        f"{args.max_new_tokens} tokens each, {args.ppo_epochs} passes of minibatch {args.minibatch_size}, "
        f"reward {args.reward_model}, torch threads {args.threads}"
    )
    print("| trainer | completions/s | s/iteration | mean completion tokens | mean score |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| TextPPO | {ppo['completions_per_second']:.2f} | {ppo['seconds_per_iteration']:.2f} | "
        f"{ppo['mean_completion_tokens']:.1f} | {ppo['mean_score']:.3f} |"
    )
    if "trl" in figures:
        trl = figures["trl"]
        print(
            f"| TRL {trl_version} GRPOTrainer (num_generations {args.num_generations}) | "
            f"{trl['completions_per_second']:.2f} | {trl['seconds_per_iteration']:.2f} | "
            f"{trl['mean_completion_tokens']:.1f} | {trl['mean_score']:.3f} |"
        )
        figures["ratio_text_ppo_over_trl"] = ppo["completions_per_second"] / trl["completions_per_second"]
        print(f"TextPPO / TRL: {figures['ratio_text_ppo_over_trl']:.2f}x (target >= 1.5x)")
    else:
        print(f"TRL did not run: {figures['trl_error']}")
    print(f"wall time of both trainers (set-up and warm-up included): {wall:.1f} s")
    if args.json:
        settings = {key: value for key, value in asdict(args).items() if key != "json"}
        versions = {name: package_version(name) for name in ("trl", "torch", "transformers", "accelerate", "datasets")}
        with open(args.json, "w") as f:
            json.dump({**figures, "wall_seconds": wall, "settings": settings, "versions": versions}, f, indent=2)


if __name__ == "__main__":
    main()
