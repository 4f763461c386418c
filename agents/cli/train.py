"""RLHF on TextGeneration-v0: train an LM policy to maximise a reward model's score, with a KL penalty.

    text-envs-train                                          # TextPPO on the embedded defaults (make demo's run)
    text-envs-train --algo sb3-ppo --timesteps 20000         # stock stable-baselines3 PPO driving the LM
    text-envs-train --model gpt2 --reward-model runs/reward_model --prompts prompts.jsonl --beta 0.1
    text-envs-train --model smollm2-135m-instruct --device cuda   # a registered model (text_envs.models) on a GPU
    text-envs-train --ppo.learning-rate 3e-5 --ppo.ppo-epochs 2 --lora-r 8   # any TextPPO setting; LoRA

Picks the policy model (``--model``: registered name, Hub name or local folder; empty: the embedded LM), the
device everything runs on (``--device``: ``auto`` is CUDA when present), the reward model
(``default``: the embedded trained reward model; ``lexicon``: the gold lexicon itself; a directory written
by ``text-envs-train-reward-model``; or a Hugging Face sequence classifier with ``--reward-label``), the
prompts, the algorithm (``textppo``, ``sb3-ppo``, ``sb3-a2c``), β, steps and seed. Every TextPPO setting is
a ``--ppo.*`` flag (β is ``--beta`` and the seed ``--seed``, shared with the SB3 algorithms), the SB3 ones
``--sb3-ppo.*`` / ``--sb3-a2c.*``.

Before and after training, :func:`~text_envs_agents.llm.evaluation.evaluate_text_policy` samples
``--eval-samples-per-prompt`` completions of every held-out prompt (temperature 1, both times) and reports the
reward-model score, the gold score (``--gold lexicon``, the default task's independent evaluator), the KL to the
reference model and the completion length beside the independent judges of :mod:`text_envs.judges` (VADER
sentiment, perplexity under ``--judge-lm``, broken text, distinct-1/2, words), with a few completions side by
side. The figures go to ``metrics.json`` and to TensorBoard (``evaluation/*`` at the first and last step), the
completions to ``samples.jsonl``, the checkpoint and training logs under ``--output-dir``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from text_envs.defaults import DEFAULT_PROMPTS_TEST, DEFAULT_PROMPTS_TRAIN
from text_envs.judges import DEFAULT_JUDGE_LM, JUDGED, judge_label
from text_envs_agents.cli.common import hiding_fields, load_reward_model_by_name, parse
from text_envs_agents.sb3.rlhf import SB3A2CSettings, SB3PPOSettings
from text_envs_agents.text_ppo.config import FLUENT_RLHF, TextPPOConfig

# Set from this tool's own flags: --beta and --seed (shared with the SB3 algorithms), --lora-* (tyro cannot
# render a dict of peft arguments).
FROM_OWN_FLAGS = ("kl_coef", "seed", "lora")


@dataclass
class Args:
    algo: Literal["textppo", "sb3-ppo", "sb3-a2c"] = "textppo"
    """TextPPO (sequence-level PPO), or stock stable-baselines3 PPO / A2C with LMActorCriticPolicy"""
    model: str = ""
    """policy LM: registered name (e.g. smollm2-135m-instruct), Hub name or local folder (empty: the embedded LM)"""
    device: str = "auto"
    """where the policy, the reference model and the reward model run: auto (CUDA when present), cpu, cuda, cuda:1"""
    reward_model: str = "default"
    """default (the embedded trained one), default-round1 (its round-1 predecessor), lexicon, a trained
    reward-model directory, or a Hugging Face classifier"""
    also_score: tuple[str, ...] = ()
    """reward models (names as --reward-model) whose scores of the held-out completions are reported beside it,
    never trained on, e.g. default-round1 (the round-1 model the default replaced)"""
    reward_label: str = ""
    """for a Hugging Face classifier: the class whose probability is the reward (empty: its last class)"""
    allow_external_backbone: bool = False
    """load a reward-model folder whose backbone is a Hub id or a path outside the folder"""
    gold: Literal["lexicon", "none"] = "lexicon"
    """gold evaluator of the held-out completions, never trained on (over-optimisation check)"""
    judge_lm: str = DEFAULT_JUDGE_LM
    """LM that judges the held-out completions' fluency (perplexity given their prompts); never trained
    (empty: no perplexity judge)"""
    prompts: str = str(DEFAULT_PROMPTS_TRAIN)
    """training prompts: a .txt/.jsonl file or a Hugging Face dataset"""
    test_prompts: str = str(DEFAULT_PROMPTS_TEST)
    """held-out prompts of the before/after evaluation"""
    eval_samples_per_prompt: int = 4
    """completions sampled per held-out prompt, before and after (64 at a time)"""
    beta: float = 0.2
    """KL coefficient β (reward units per nat): TextPPO's kl_coef, or the KLPenalty wrapper's β for SB3"""
    shaping: str = ""
    """shaping beyond the KL term, e.g. "LengthTerm(coef=0.01); MissingEOSTerm(penalty=1.0)" (text_envs.shaping
    pieces; TextPPO shapes its batches with them, each SB3 env is wrapped in its own: the same rewards, with a
    stateful piece's statistics per env there)"""
    iterations: int = 120
    """textppo: iterations (--batch-size episodes each)"""
    timesteps: int = 20_000
    """sb3-ppo, sb3-a2c: environment steps (tokens), over all envs"""
    batch_size: int = 32
    """textppo: episodes per iteration (the vector env's num_envs)"""
    n_envs: int = 8
    """sb3-ppo, sb3-a2c: envs stepped together"""
    max_new_tokens: int = 32
    """most tokens per completion"""
    prompt_format: Literal["plain", "chat"] = "plain"
    """plain: the prompt text continued as it is; chat: the prompt as a user turn in the tokenizer's chat
    template (an instruction-tuned --model), the reward model still scoring the plain prompt and the reply"""
    system_prompt: str = ""
    """chat: the system turn before each prompt (empty: none)"""
    seed: int = 0
    """seeds the training (TextPPO's seed, the SB3 envs and algorithm) and the evaluation's prompts"""
    output_dir: str = "runs/text"
    """checkpoint, metrics.json, samples.jsonl and TensorBoard logs"""
    threads: int = 1
    """torch.set_num_threads (the embedded LM is too small to gain from more; a busy machine makes them slower)"""
    progress_bar: bool = True
    """show a progress bar while training"""
    wandb_project: str = ""
    """textppo: also log to this Weights & Biases project (needs text_envs[wandb]; empty: TensorBoard only)"""
    export_dir: str = ""
    """textppo: also export the trained policy as a folder Hugging Face loads (save_pretrained, LoRA merged)"""
    lora_r: int = 0
    """LoRA rank (0: no LoRA, the whole LM trains); needs peft"""
    lora_alpha: int = 16
    """LoRA scaling numerator (the update is scaled by alpha / r)"""
    lora_dropout: float = 0.0
    """dropout on the LoRA inputs (the trainers keep modules in eval mode, so it has no effect there)"""
    lora_target_modules: tuple[str, ...] = ()
    """module names to adapt, e.g. c_attn c_proj (empty: peft's default for the model type, c_attn for GPT-2)"""
    ppo: TextPPOConfig = field(default_factory=lambda: dataclasses.replace(FLUENT_RLHF))
    """TextPPO hyper-parameters (--algo textppo); the defaults are the fluent-RLHF recipe (README, Results)"""
    sb3_ppo: SB3PPOSettings = field(default_factory=SB3PPOSettings)
    """stable-baselines3 PPO keyword arguments (--algo sb3-ppo)"""
    sb3_a2c: SB3A2CSettings = field(default_factory=SB3A2CSettings)
    """stable-baselines3 A2C keyword arguments (--algo sb3-a2c)"""


def parse_args(argv: Sequence[str] | None = None) -> Args:
    return parse(Args, argv, __doc__, registry=hiding_fields(TextPPOConfig, FROM_OWN_FLAGS))


def lora_kwargs(args: Args) -> dict[str, Any] | None:
    """``peft.LoraConfig`` keyword arguments from the ``--lora-*`` flags, or ``None`` with ``--lora-r 0``."""
    if args.lora_r <= 0:
        return None
    lora: dict[str, Any] = {"r": args.lora_r, "lora_alpha": args.lora_alpha, "lora_dropout": args.lora_dropout}
    if args.lora_target_modules:
        lora["target_modules"] = list(args.lora_target_modules)
    return lora


def text_ppo_config(args: Args) -> TextPPOConfig:
    """``--ppo.*`` with β, the seed and LoRA from this tool's own flags."""
    return dataclasses.replace(args.ppo, kl_coef=args.beta, seed=args.seed, lora=lora_kwargs(args))


def also_score_key(name: str) -> str:
    """The scorer name of ``--also-score name`` in the evaluation's figures (``<key>_mean``, ``<key>_std``)."""
    return f"score[{name}]"


def also_scored(figures: dict[str, float]) -> list[str]:
    """The ``--also-score`` reward models whose figures ``figures`` holds."""
    return [
        key[len("score[") : -len("]_mean")] for key in figures if key.startswith("score[") and key.endswith("]_mean")
    ]


def print_comparison(before: dict[str, float], after: dict[str, float], judge_name: str = "") -> None:
    print("\n| held-out prompts | before | after |")
    print("|---|---:|---:|")
    rows = [
        ("reward-model score (mean)", "score_mean"),
        ("reward-model score (std)", "score_std"),
        ("gold score (mean)", "gold_mean"),
        ("KL to reference (nats/sequence)", "kl"),
        ("completion length (tokens)", "completion_length"),
    ]
    rows += [(f"score of reward model {name} (mean)", f"{also_score_key(name)}_mean") for name in also_scored(before)]
    rows += [(judge_label(key, judge_name), key) for key in JUDGED]
    for name, key in rows:
        if key in before:
            print(f"| {name} | {before[key]:.3f} | {after[key]:.3f} |")
    rise = (after["score_mean"] - before["score_mean"]) / max(before["score_std"], 1e-8)
    print(f"\nreward-model score rose by {rise:.2f} standard deviations of its starting distribution")


def log_evaluation(log_dir: Path, before: dict[str, float], after: dict[str, float], last_step: int) -> None:
    """The before/after figures as TensorBoard scalars ``evaluation/<key>``, at step 0 and ``last_step`` (the
    trainer's generated tokens, the x axis of its own curves)."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir)
    for step, figures in ((0, before), (last_step, after)):
        for key, value in figures.items():
            writer.add_scalar(f"evaluation/{key}", value, step)
    writer.close()


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    import torch
    from transformers.utils import logging as transformers_logging

    from text_envs import TextGenerationVectorEnv
    from text_envs.judges import NO_VADER, load_perplexity_judge, vader_available
    from text_envs.lm import load_causal_lm, resolve_device
    from text_envs.rewards.lexicon import lexicon_sentiment_reward
    from text_envs.shaping import parse_shaping
    from text_envs_agents.llm.evaluation import evaluate_text_policy
    from text_envs_agents.llm.rollout import sequence_logprobs

    shaping = parse_shaping(args.shaping)  # a bad spec fails before any model loads
    if args.eval_samples_per_prompt < 1:
        raise SystemExit(f"--eval-samples-per-prompt must be at least 1, got {args.eval_samples_per_prompt}")
    torch.set_num_threads(args.threads)
    transformers_logging.disable_progress_bar()
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    device = resolve_device(args.device)
    reward = load_reward_model_by_name(
        args.reward_model, args.reward_label, str(device), allow_external_backbone=args.allow_external_backbone
    )
    scorers = {"gold": lexicon_sentiment_reward} if args.gold == "lexicon" else {}
    for name in args.also_score:
        scorers[also_score_key(name)] = load_reward_model_by_name(
            name, device=str(device), allow_external_backbone=args.allow_external_backbone
        )
    model_source = args.model or None
    env_kwargs = dict(
        tokenizer=model_source,
        reward_model=reward,
        max_new_tokens=args.max_new_tokens,
        prompt_format=args.prompt_format,
        system_prompt=args.system_prompt or None,
    )
    test_env = TextGenerationVectorEnv(64, prompts=args.test_prompts, **env_kwargs)
    policy_model = load_causal_lm(model_source).to(device)
    reference = load_causal_lm(model_source).to(device).requires_grad_(False)

    def reference_logprobs(batch):
        return sequence_logprobs(reference, batch)

    perplexity_judge, judge_name = load_perplexity_judge(args.judge_lm, str(device))
    if perplexity_judge is None:
        print(f"no perplexity: {judge_name}")
    elif args.judge_lm == (args.model or None):
        print(f"warning: the judge LM {judge_name} is the policy's own starting model; judge with another (--judge-lm)")

    def evaluate(model):
        return evaluate_text_policy(
            model,
            reference_logprobs,
            test_env,
            seed=args.seed,
            samples_per_prompt=args.eval_samples_per_prompt,
            scorers=scorers,
            perplexity_judge=perplexity_judge,
        )

    before_eval = evaluate(policy_model)
    print(f"{args.algo} on {args.prompts}, reward model {args.reward_model}, beta {args.beta}, seed {args.seed}")
    start = time.perf_counter()
    history: list = []
    if args.algo == "textppo":
        from text_envs_agents.text_ppo import TextPPO

        env = TextGenerationVectorEnv(args.batch_size, prompts=args.prompts, **env_kwargs)
        trainer = TextPPO(
            env,
            policy_model,
            text_ppo_config(args),
            tensorboard_log=output / "tensorboard",
            report_to=("tensorboard", "wandb") if args.wandb_project else None,
            wandb_project=args.wandb_project or None,
            shaping=shaping,
            device=str(device),
        )
        trainer.learn(iterations=args.iterations, progress_bar=args.progress_bar)
        history = trainer.history
        trainer.save(output / "checkpoint")
        if args.export_dir:
            trainer.save_pretrained(args.export_dir)
        trainer.close()
        trained_model = trainer.policy.model
        last_step = trainer.num_timesteps
    else:
        from text_envs_agents.sb3.rlhf import train_sb3_rlhf

        algo = "ppo" if args.algo == "sb3-ppo" else "a2c"
        sb3_model, trained_model = train_sb3_rlhf(
            algo,
            env_kwargs={**env_kwargs, "prompts": args.prompts},
            model=model_source,
            beta=args.beta,
            shaping=args.shaping,
            timesteps=args.timesteps,
            seed=args.seed,
            n_envs=args.n_envs,
            settings=args.sb3_ppo if algo == "ppo" else args.sb3_a2c,
            lora=lora_kwargs(args),
            tensorboard_log=output / "tensorboard",
            progress_bar=args.progress_bar,
            device=str(device),
        )
        sb3_model.save(output / f"{args.algo}.zip")
        last_step = sb3_model.num_timesteps
    train_seconds = time.perf_counter() - start
    after_eval = evaluate(trained_model)
    before, after = before_eval.metrics, after_eval.metrics
    print(f"\ntrained in {train_seconds:.0f} s")
    print_comparison(before, after, judge_name)
    log_evaluation(output / "tensorboard" / "evaluation", before, after, last_step)
    if not vader_available():
        print(NO_VADER)
    print("\nsample completions on held-out prompts (before -> after):")
    for i in range(4):
        print(f"  {before_eval.prompts[i]}|")
        print(f"    before [{before_eval.scores[i]:+.2f}]: {before_eval.completions[i]}")
        print(f"    after  [{after_eval.scores[i]:+.2f}]: {after_eval.completions[i]}")
    samples = [
        {"prompt": p, "before": b, "after": a}
        for p, b, a in zip(before_eval.prompts, before_eval.completions, after_eval.completions, strict=True)
    ]
    (output / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    (output / "metrics.json").write_text(
        json.dumps(
            {
                "args": {**asdict(args), "ppo": asdict(text_ppo_config(args))},  # the TextPPO settings used
                "before": before,
                "after": after,
                "train_seconds": train_seconds,
                "history": history,
            },
            indent=2,
        )
    )
    print(f"\ncheckpoint, metrics.json, samples.jsonl and TensorBoard logs in {output}/")


if __name__ == "__main__":
    main()
