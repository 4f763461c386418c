"""Training throughput (completions/s, generation and updates included) of TextPPO beside TRL's GRPOTrainer.

    python scripts/bench_ppo.py [--batch-size 16] [--max-new-tokens 24] [--iterations 2] [--pairs 5] [--warmup 1]
                                [--ppo-epochs 4] [--minibatch-size 16] [--num-generations 4] [--lora-rank 0]
                                [--reward-model lexicon|default] [--model NAME] [--device auto|cpu|cuda]
                                [--dtype float32|bfloat16] [--threads 1] [--memory] [--json PATH]

Both trainers are built once in this one process, each on its own copy of ``--model`` (default: the
embedded LM, ``DEFAULT_LM_DIR``; or a registered name such as ``smollm2-135m-instruct``, a Hub name or a
folder), on one device, with ``torch.set_num_threads(--threads)``, and kept alive between trials. An
*iteration* is one rollout of ``--batch-size`` completions followed by all the optimisation passes over
them: one :meth:`TextPPO.learn` round, and for TRL ``num_iterations x steps_per_generation`` optimiser
steps on one generation batch. A *trial* is ``--iterations`` iterations of one trainer. After
``--warmup`` untimed iterations of each, ``--pairs`` rounds run one trial of each trainer, TextPPO
first in even rounds and TRL first in odd ones (:mod:`paired_trials`), so that the machine's speed
swings fall on both sides of a pair. Throughput = ``batch_size x iterations / seconds`` per trial;
``ratio_text_ppo_over_trl`` is the median over pairs of the within-pair ratio, with
``ratio_text_ppo_over_trl_range`` (``[min, max]``) and ``ratio_text_ppo_over_trl_per_pair``. Targets:
TextPPO / TRL >= 1.5x on the embedded LM, >= 1.3x on SmolLM2-135M (CPU, float32), >= 2x on a GPU.

How TRL is driven one trial at a time: its ``trainer.train()`` runs unchanged in a worker thread, and a
``TrainerCallback`` blocks it in ``on_step_end`` after the last optimiser step of each trial until the
next trial of TRL starts (``TRLRun``). The main thread waits meanwhile, so only one trainer computes at
a time; grad mode and autocast are per thread, so neither trainer's settings leak into the other.
This keeps TRL's own loop (its generation buffer, ``num_iterations`` reuse, dataloader and optimiser,
built once) instead of calling its private step functions, which change between versions; stopping
and restarting ``train()`` would rebuild the optimiser and the dataloader every trial.

``--memory``: instead of timing, run ``--warmup + --iterations`` iterations of each trainer in its own
fresh process (``multiprocessing`` spawn) and report each process's peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``, MiB; on CUDA also ``torch.cuda.max_memory_allocated``),
e.g. ``--memory --lora-rank 16 --model smollm2-135m-instruct``.

TRL is a comparison-only dev dependency (``pip install trl``, in the ``dev`` extra); it is imported
only by ``TRLRun``. Without it, or if its trainer fails to start here, the TextPPO figures are still
printed with the reason TRL did not run.

## Settings, matched (TextPPO | TRL GRPOTrainer)

- model: ``--model``, its weights in float32 | the same.
- device and precision: ``--device``; ``--dtype bfloat16`` sets ``mixed_precision="bf16"`` (bf16
  autocast, float32 master weights and optimiser state) | ``use_cpu`` on the CPU; ``bf16=True`` (the
  Trainer's autocast, float32 master weights), ``fp16=False``.
- LoRA: ``--lora-rank r > 0`` gives both ``peft.LoraConfig(task_type="CAUSAL_LM", r=r, lora_alpha=2r,
  lora_dropout=0)`` (peft's default target modules for the architecture); the reference model is the
  policy with its adapters disabled on both sides.
- prompts: ``DEFAULT_PROMPTS_TRAIN`` as plain text, no chat template | the same, in an in-memory
  ``Dataset.from_list``; tokenizer with ``padding_side="left"`` and its pad token (EOS if it has none).
- completions per iteration: ``--batch-size`` (the env's ``num_envs``) | ``generation_batch_size``.
- completion length, one stop rule: ``--max-new-tokens``, stop at the tokenizer's EOS and the model's
  ``generation_config.eos_token_id`` (given to the env as ``stop_tokens``) | ``max_completion_length``,
  stop at the same tokens (TRL's ``eos_token_ids`` are the tokenizer's EOS and the generation config's).
  EOS is not suppressed: TextPPO's rollout takes no logits processor.
- sampling: temperature 1, no top-k / top-p | ``temperature=1, top_k=0, top_p=1``, Hugging Face
  ``generate`` (``use_vllm=False``).
- reward: the ``--reward-model`` callable, through the env | the same callable in a Python reward function.
- passes over each batch: ``ppo_epochs = --ppo-epochs`` | ``num_iterations``.
- sequences per optimiser step: ``minibatch_size = --minibatch-size`` | ``per_device_train_batch_size``,
  ``gradient_accumulation_steps=1``, ``steps_per_generation = batch_size / minibatch_size``.
- optimiser: AdamW (fused), constant lr (``--learning-rate``, default 1e-6: see below), weight decay
  0.01, grad-norm clip 1.0 | ``optim="adamw_torch_fused"``, the same lr with
  ``lr_scheduler_type="constant"``, ``weight_decay=0.01``, ``max_grad_norm=1.0``.
- ratio clipping: ``clip_range`` 0.2 | ``epsilon=0.2``.
- KL to the reference: a frozen copy (or the adapters disabled), ``kl_coef`` 0.05 | a frozen reference
  model (or the adapters disabled), ``beta=0.05``.
- policy-loss normalisation: mean over the minibatch's completion tokens | ``loss_type="bnpo"`` (the
  same; TRL's default ``"dapo"`` divides by the generation batch's mean tokens per step instead).
- overhead off: no TensorBoard, checkpoints or evaluation | ``report_to="none"``,
  ``logging_strategy="no"``, ``save_strategy="no"``, ``eval_strategy="no"``, ``log_completions=False``,
  ``disable_tqdm=True``; ``gradient_checkpointing=False`` on both (TRL's default is on, TextPPO's off).

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
  before the update and dropout is off (under ``--dtype bfloat16`` it recomputes them with one
  teacher-forced forward, as the two bf16 paths differ by about 1e-2); TRL computes them with one extra
  policy forward per iteration (when ``num_iterations x steps_per_generation > 1``, true by default).
- Dropout (0.1 in the default LM): off on both sides, in sampling and updates (TextPPO always;
  TRL with ``disable_dropout=True``, not its default), so both sample the same distribution.
- Generation: TextPPO steps a ``TextGenerationVectorEnv`` one token at a time with its own KV
  cache (a slot decoder, :func:`text_envs_agents.llm.slot_decoding.slot_decoder`, for GPT-2 and Llama-family
  models: preallocated, no per-token concatenation) and inverse-CDF sampling, and scores completions as
  they finish (one reward call per step in which some end); TRL calls ``model.generate`` (a
  ``DynamicCache``, ``torch.multinomial``) on the whole batch and scores all completions in one reward call.
- Teacher-forced forwards: TextPPO packs the sequences two to a row without padding
  (:func:`text_envs_agents.llm.rollout.pack_sequences`), swaps GPT-2's five-op ``gelu_new`` for the fused kernel
  of the same function, and builds the entropy's graph only when ``entropy_coef`` is non-zero; TRL
  runs the padded batch through the model as it is.
- Completion lengths drift apart as the two policies learn: at lr 3e-4 with the lexicon reward,
  TextPPO's per-token KL penalty shortens its completions to ~12 tokens within ~20 iterations while
  GRPO's stay near 18, which flatters TextPPO's completions/s. The compute of an iteration does not
  depend on the learning rate, so the default ``--learning-rate 1e-6`` (neither policy moves) keeps
  both sampling the initial model's lengths; ``--learning-rate 3e-4`` shows the drift.
  Finished rows keep being computed until the batch is done on both sides.
- Minibatch order: TextPPO reshuffles the batch every epoch; TRL shuffles once per generation and
  walks the same slices each of its ``num_iterations`` passes (identical when minibatch = batch).
- Bookkeeping: TRL computes and keeps per-step metrics in memory (entropy, clip ratios, reward and
  length statistics) even with logging off, and cannot be told to skip them; TextPPO keeps its own
  per-iteration statistics (losses, clip fraction, approximate KL).
- The two sides sample their own completions, so their lengths differ by sampling noise (and by
  learning, above); the table reports the mean completion length of each side.
"""

from __future__ import annotations

import json
import multiprocessing
import resource
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal

import numpy as np
import torch
import tyro
from paired_trials import (
    DTYPES,
    DeviceName,
    DtypeName,
    bench_device,
    generation_eos_ids,
    interleaved_rates,
    ratio_summary,
    synchronize,
)

from text_envs import TextGenerationVectorEnv
from text_envs.defaults import DEFAULT_LM_DIR, DEFAULT_PROMPTS_TRAIN
from text_envs.generation.prompts import load_prompts
from text_envs.generation.task import RewardModel
from text_envs.lm import load_causal_lm, load_tokenizer
from text_envs.rewards.lexicon import lexicon_sentiment_reward
from text_envs.rewards.trained import default_reward_model
from text_envs_agents.text_ppo import TextPPO, TextPPOConfig

TrainerName = Literal["text_ppo", "trl"]


@dataclass
class Args:
    batch_size: int = 16
    """completions per iteration"""
    max_new_tokens: int = 24
    """completion length limit in tokens (both stop at the same stop tokens)"""
    iterations: int = 2
    """iterations per trial, per trainer (--memory: iterations after the warm-up)"""
    pairs: int = 5
    """timed trials per trainer, interleaved; the ratio is the median over pairs"""
    warmup: int = 1
    """untimed iterations of each trainer first (at least 1)"""
    ppo_epochs: int = 4
    """passes over each batch (TRL num_iterations)"""
    minibatch_size: int = 16
    """completions per optimiser step"""
    num_generations: int = 4
    """TRL: completions per prompt (GRPO group)"""
    learning_rate: float = 1e-6
    """both trainers' constant learning rate (1e-6: neither policy moves, so completion lengths stay matched)"""
    kl_coef: float = 0.05
    """TextPPO kl_coef and TRL beta"""
    clip_range: float = 0.2
    """TextPPO clip_range and TRL epsilon"""
    max_grad_norm: float = 1.0
    """gradient-norm clipping of both trainers"""
    lora_rank: int = 0
    """LoRA rank of both trainers (0: full fine-tuning)"""
    reward_model: Literal["lexicon", "default"] = "lexicon"
    """reward model both trainers use: the lexicon (cheap) or the packaged MiniLM reward model"""
    model: str = ""
    """policy LM of both trainers: registered name, Hugging Face Hub name or local folder (empty: the embedded LM)"""
    device: DeviceName = "auto"
    """where both trainers run (auto: CUDA when present)"""
    dtype: DtypeName = "float32"
    """compute precision of both (bfloat16: autocast, float32 master weights)"""
    seed: int = 0
    """seeds both trainers"""
    threads: int = 1
    """torch.set_num_threads for both trainers"""
    memory: bool = False
    """report each trainer's peak resident memory, each in its own process, instead of timing"""
    json: str = ""
    """write the figures to this path (empty: print only)"""


def load_reward(name: str) -> RewardModel:
    """``lexicon``: the rule-based sentiment score (cheap); ``default``: the packaged MiniLM reward model."""
    return lexicon_sentiment_reward if name == "lexicon" else default_reward_model()


def lora_arguments(rank: int) -> dict[str, Any] | None:
    """The ``peft.LoraConfig`` arguments both trainers get (None: full fine-tuning)."""
    return None if rank == 0 else {"r": rank, "lora_alpha": 2 * rank, "lora_dropout": 0.0}


class TextPPORun:
    """A TextPPO trainer built once; :meth:`run` trains it a few iterations and returns the seconds taken."""

    def __init__(self, args: Args, reward_model: RewardModel, device: torch.device, dtype: torch.dtype):
        model = load_causal_lm(args.model or DEFAULT_LM_DIR)
        env = TextGenerationVectorEnv(
            args.batch_size,
            tokenizer=args.model or None,
            prompts=DEFAULT_PROMPTS_TRAIN,
            reward_model=reward_model,
            max_new_tokens=args.max_new_tokens,
            stop_tokens=generation_eos_ids(model),
        )
        config = TextPPOConfig(
            learning_rate=args.learning_rate,
            ppo_epochs=args.ppo_epochs,
            minibatch_size=args.minibatch_size,
            clip_range=args.clip_range,
            kl_coef=args.kl_coef,
            max_grad_norm=args.max_grad_norm,
            temperature=1.0,
            lora=lora_arguments(args.lora_rank),
            mixed_precision="bf16" if dtype == torch.bfloat16 else "no",
            seed=args.seed,
        )
        self.agent = TextPPO(env, model, config, sample_log_interval=None, device=device)
        self.device = device

    def run(self, iterations: int) -> float:
        start = time.perf_counter()
        self.agent.learn(iterations=iterations)
        synchronize(self.device)
        return time.perf_counter() - start

    @property
    def completion_tokens(self) -> list[float]:
        """Mean completion length of every iteration so far."""
        return [metrics["completion_length"] for metrics in self.agent.history]

    @property
    def scores(self) -> list[float]:
        return [metrics["score"] for metrics in self.agent.history]

    def close(self) -> None:
        self.agent.close()


class TRLRun:
    """TRL's ``GRPOTrainer.train()`` in a worker thread that pauses after each trial (see the module doc).

    ``total_iterations`` sets the trainer's ``max_steps``: the sum of the iterations :meth:`run` will be asked for.
    """

    def __init__(
        self,
        args: Args,
        reward_model: RewardModel,
        device: torch.device,
        dtype: torch.dtype,
        total_iterations: int,
    ):
        from datasets import Dataset
        from peft import LoraConfig
        from transformers import TrainerCallback
        from transformers.trainer_callback import PrinterCallback
        from trl import GRPOConfig, GRPOTrainer

        steps_per_generation = args.batch_size // args.minibatch_size
        self.steps_per_iteration = steps_per_generation * args.ppo_epochs
        self.completion_tokens: list[float] = []
        self.scores: list[float] = []
        self.device = device
        run = self

        def reward(
            prompts: list[str], completions: list[str], completion_ids: list[list[int]], **kwargs
        ) -> list[float]:
            values = np.asarray(reward_model(prompts, completions), dtype=np.float64)
            run.completion_tokens.append(float(np.mean([len(ids) for ids in completion_ids])))
            run.scores.append(float(values.mean()))
            return values.tolist()

        class PauseAfterTrial(TrainerCallback):
            def on_step_end(self, _args, state, control, **kwargs):
                if state.global_step == run._pause_step:
                    synchronize(device)
                    run._paused_at = time.perf_counter()
                    run._paused.release()
                    run._resume.acquire()
                    control.should_training_stop = run._stopping

        tokenizer = load_tokenizer(args.model or DEFAULT_LM_DIR)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        dataset = Dataset.from_list([{"prompt": p} for p in load_prompts(DEFAULT_PROMPTS_TRAIN)])
        lora = lora_arguments(args.lora_rank)
        self._output_dir = tempfile.TemporaryDirectory()
        config = GRPOConfig(
            output_dir=self._output_dir.name,
            use_cpu=device.type == "cpu",
            bf16=dtype == torch.bfloat16,
            fp16=False,
            seed=args.seed,
            max_steps=total_iterations * self.steps_per_iteration,
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
        self.trainer = GRPOTrainer(
            model=load_causal_lm(args.model or DEFAULT_LM_DIR),
            reward_funcs=reward,
            args=config,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=None if lora is None else LoraConfig(task_type="CAUSAL_LM", **lora),
            callbacks=[PauseAfterTrial()],
        )
        self.trainer.remove_callback(PrinterCallback)  # its end-of-training summary is all it would print
        self._pause_step = 0
        self._paused_at = 0.0
        self._paused = threading.Semaphore(0)
        self._resume = threading.Semaphore(0)
        self._error: BaseException | None = None
        self._finished = False
        self._stopping = False
        self._thread = threading.Thread(target=self._train, name="trl-train", daemon=True)

    def _train(self) -> None:
        try:
            self.trainer.train()
        except BaseException as error:  # noqa: BLE001  (handed to the main thread by run)
            self._error = error
        finally:
            self._finished = True
            self._paused.release()  # wakes run() when train() ends or fails

    def run(self, iterations: int) -> float:
        self._pause_step += iterations * self.steps_per_iteration
        start = time.perf_counter()
        if self._thread.ident is None:
            self._thread.start()
        else:
            self._resume.release()
        self._paused.acquire()
        if self._error is not None:
            raise RuntimeError(
                f"TRL's GRPOTrainer failed: {type(self._error).__name__}: {self._error}"
            ) from self._error
        if self._finished:
            raise RuntimeError(f"TRL's train() ended before step {self._pause_step} (max_steps too small)")
        return self._paused_at - start

    def close(self) -> None:
        """Let ``train()`` end (at once, if it was paused before its last step)."""
        if self._thread.is_alive():
            self._stopping = True
            self._resume.release()
            self._thread.join()
        self._output_dir.cleanup()


def build(trainer: TrainerName, args: Args, reward_model: RewardModel, total_iterations: int) -> TextPPORun | TRLRun:
    """One trainer on ``args.device`` in ``args.dtype``; the thread count set after building it, as accelerate or
    the Trainer may change it."""
    device, dtype = bench_device(args.device), DTYPES[args.dtype]
    if trainer == "text_ppo":
        run = TextPPORun(args, reward_model, device, dtype)
    else:
        run = TRLRun(args, reward_model, device, dtype, total_iterations)
    torch.set_num_threads(args.threads)
    return run


def side_figures(rates: list[float], run: TextPPORun | TRLRun, args: Args) -> dict[str, object]:
    """A trainer's median throughput over its timed trials, and its timed iterations' completion lengths and scores."""
    return {
        "completions_per_second": statistics.median(rates),
        "completions_per_second_per_pair": rates,
        "seconds_per_iteration": statistics.median(args.batch_size / rate for rate in rates),
        "mean_completion_tokens": float(np.mean(run.completion_tokens[args.warmup :])),
        "mean_score": float(np.mean(run.scores[args.warmup :])),
    }


def measure(args: Args) -> dict[str, object]:
    """Interleaved trials of both trainers (see the module doc); the figures :func:`report` prints."""
    torch.set_num_threads(args.threads)
    reward_model = load_reward(args.reward_model)
    total_iterations = args.warmup + args.pairs * args.iterations
    start = time.perf_counter()
    figures: dict[str, object] = {"device": str(bench_device(args.device))}
    runs: dict[str, TextPPORun | TRLRun] = {"text_ppo": build("text_ppo", args, reward_model, total_iterations)}
    runs["text_ppo"].run(args.warmup)
    try:
        runs["trl"] = build("trl", args, reward_model, total_iterations)
        runs["trl"].run(args.warmup)
    except ImportError as error:
        figures["trl_error"] = f"TRL could not be imported ({error}); install it with: pip install trl"
    except Exception as error:  # noqa: BLE001  (report any TRL failure and keep the TextPPO figures)
        figures["trl_error"] = f"TRL's GRPOTrainer failed: {type(error).__name__}: {error}"
    if "trl_error" in figures and "trl" in runs:
        runs.pop("trl").close()
    completions = args.batch_size * args.iterations
    rates = interleaved_rates(
        {name: lambda _, run=run: completions / run.run(args.iterations) for name, run in runs.items()}, args.pairs
    )
    for name, run in runs.items():
        figures[name] = side_figures(rates[name], run, args)
        run.close()
    if "trl" in runs:
        ratio = ratio_summary(rates["text_ppo"], rates["trl"])
        figures["ratio_text_ppo_over_trl"] = ratio["median"]
        figures["ratio_text_ppo_over_trl_range"] = ratio["range"]
        figures["ratio_text_ppo_over_trl_per_pair"] = ratio["per_pair"]
    figures["wall_seconds"] = time.perf_counter() - start
    return figures


def peak_memory_of(trainer: TrainerName, args: Args, results: multiprocessing.Queue) -> None:
    """In a fresh process: ``args.warmup + args.iterations`` iterations of ``trainer``, then its peak memory (MiB)."""
    iterations = args.warmup + args.iterations
    try:
        run = build(trainer, args, load_reward(args.reward_model), iterations)
        run.run(iterations)
        run.close()
    except Exception as error:  # noqa: BLE001  (reported beside the other trainer's figure)
        results.put({"error": f"{type(error).__name__}: {error}"})
        return
    figures = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if torch.cuda.is_available():
        figures["cuda_peak_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    results.put(figures)


def measure_memory(args: Args) -> dict[str, object]:
    """Each trainer's peak memory, each in its own spawned process (one after the other, so they do not compete)."""
    context = multiprocessing.get_context("spawn")
    figures: dict[str, object] = {}
    for trainer in ("text_ppo", "trl"):
        results = context.Queue()
        process = context.Process(target=peak_memory_of, args=(trainer, args, results))
        process.start()
        figures[trainer] = results.get()
        process.join()
    return figures


def package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def refuse(message: str) -> None:
    print(f"bench_ppo.py: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def check(args: Args) -> None:
    """Refuse settings that one of the trainers cannot run."""
    if args.warmup < 1 or args.iterations < 1 or args.pairs < 1:
        refuse("--warmup, --iterations and --pairs must be at least 1")
    if args.batch_size % args.minibatch_size:
        refuse("--batch-size must be a multiple of --minibatch-size (TRL splits each batch into equal steps)")
    if args.batch_size % args.num_generations or args.num_generations < 2:
        refuse("--batch-size must be a multiple of --num-generations, which must be at least 2 (GRPO groups)")
    if args.lora_rank < 0:
        refuse("--lora-rank must be 0 (full fine-tuning) or positive")


def settings_line(args: Args) -> str:
    lora = f"LoRA rank {args.lora_rank}" if args.lora_rank else "full fine-tuning"
    return (
        f"{args.model or 'embedded LM'} on {bench_device(args.device)} in {args.dtype}, {lora}, "
        f"{args.batch_size} completions of <= {args.max_new_tokens} tokens, {args.ppo_epochs} passes of minibatch "
        f"{args.minibatch_size}, lr {args.learning_rate:g}, reward {args.reward_model}, torch threads {args.threads}"
    )


def report(figures: dict[str, object], args: Args) -> None:
    """Print the table of :func:`measure`'s figures."""
    print(
        f"{settings_line(args)}; {args.pairs} interleaved pairs of {args.iterations} iterations each after "
        f"{args.warmup} warm-up"
    )
    print("| trainer | completions/s | s/iteration | mean completion tokens | mean score |")
    print("|---|---:|---:|---:|---:|")
    titles = {
        "text_ppo": "TextPPO",
        "trl": f"TRL {package_version('trl')} GRPOTrainer (num_generations {args.num_generations})",
    }
    for name, title in titles.items():
        if name in figures:
            side = figures[name]
            print(
                f"| {title} | {side['completions_per_second']:.2f} | {side['seconds_per_iteration']:.2f} | "
                f"{side['mean_completion_tokens']:.1f} | {side['mean_score']:.3f} |"
            )
    if "ratio_text_ppo_over_trl" in figures:
        low, high = figures["ratio_text_ppo_over_trl_range"]
        print(
            f"TextPPO / TRL: {figures['ratio_text_ppo_over_trl']:.2f}x median, {low:.2f}..{high:.2f} over pairs "
            "(target >= 1.5x embedded LM, >= 1.3x SmolLM2-135M)"
        )
    else:
        print(f"TRL did not run: {figures['trl_error']}")
    print(f"wall time of both trainers (set-up and warm-up included): {figures['wall_seconds']:.1f} s")


def report_memory(figures: dict[str, object], args: Args) -> None:
    print(f"{settings_line(args)}; peak memory of {args.warmup + args.iterations} iterations, one process each")
    print("| trainer | peak resident MiB | CUDA peak allocated MiB |")
    print("|---|---:|---:|")
    for name, title in (("text_ppo", "TextPPO"), ("trl", f"TRL {package_version('trl')} GRPOTrainer")):
        side = figures[name]
        if "error" in side:
            print(f"| {title} | failed: {side['error']} | |")
        else:
            cuda = side.get("cuda_peak_allocated_mib")
            print(f"| {title} | {side['peak_rss_mib']:,.0f} | {'' if cuda is None else f'{cuda:,.0f}'} |")


def main() -> None:
    args = tyro.cli(Args, description=__doc__.split("\n")[0])
    check(args)
    figures = measure_memory(args) if args.memory else measure(args)
    (report_memory if args.memory else report)(figures, args)
    if args.json:
        settings = {key: value for key, value in asdict(args).items() if key != "json"}
        versions = {name: package_version(name) for name in ("trl", "torch", "transformers", "accelerate", "datasets")}
        with open(args.json, "w") as f:
            json.dump({**figures, "settings": settings, "versions": versions}, f, indent=2)


if __name__ == "__main__":
    main()
