"""RLHF on TextGeneration-v0: train an LM policy to maximise a reward model's score, with a KL penalty.

    python scripts/train_text.py                                  # TextPPO on the embedded defaults
    python scripts/train_text.py --algo sb3-ppo --timesteps 20000   # stock stable-baselines3 PPO driving the LM
    python scripts/train_text.py --policy gpt2 --reward-model runs/my_rm --prompts prompts.jsonl --beta 0.1

Picks the policy model (Hub name or path; default the embedded LM), the reward model (``default``:
the embedded trained reward model; ``lexicon``: the gold lexicon itself; a directory written by
scripts/train_reward_model.py; or a Hugging Face sequence classifier with ``--reward-label``), the
prompts, the algorithm (``textppo``, ``sb3-ppo``, ``sb3-a2c``), β and its controller, steps and seed.
Before and after training it samples one completion per held-out prompt and prints the reward-model
score, the gold score (``--gold lexicon``, the default task's independent evaluator), the KL to the
reference model and the completion length, with a few completions side by side; logs go to
TensorBoard and the checkpoint, the metrics and the samples are saved under ``--output``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from cli_args import add_dataclass_arguments, dataclass_from_arguments
from transformers.utils import logging as transformers_logging

from text_envs import TextGenerationVectorEnv
from text_envs.defaults import DEFAULT_PROMPTS_TEST, DEFAULT_PROMPTS_TRAIN
from text_envs.lm import load_causal_lm
from text_envs.rewards.classifier import ClassifierRewardModel
from text_envs.rewards.lexicon import lexicon_sentiment_reward
from text_envs.rewards.trained import default_reward_model, load_reward_model
from text_envs_agents.llm.evaluation import evaluate_lm
from text_envs_agents.llm.rollout import sequence_logprobs
from text_envs_agents.text_ppo.trainer import TextPPO, TextPPOConfig


@dataclass
class Args:
    algo: str = "textppo"
    """textppo, sb3-ppo or sb3-a2c"""
    policy: str = ""
    """policy LM: Hub name or local path (empty: the embedded default LM)"""
    reward_model: str = "default"
    """default, lexicon, a trained reward-model directory, or a Hugging Face classifier"""
    reward_label: str = ""
    """for a Hugging Face classifier: the class whose probability is the reward"""
    gold: str = "lexicon"
    """gold evaluator for over-optimisation checks: lexicon or none"""
    prompts: str = str(DEFAULT_PROMPTS_TRAIN)
    test_prompts: str = str(DEFAULT_PROMPTS_TEST)
    beta: float = 0.1
    """KL coefficient (reward units per nat)"""
    adaptive_kl: bool = False
    target_kl: float = 6.0
    """target KL per sequence (nats) of the adaptive controller"""
    iterations: int = 120
    """TextPPO iterations (batch_size episodes each)"""
    timesteps: int = 20_000
    """environment steps (tokens) for the stable-baselines3 algorithms"""
    batch_size: int = 32
    max_new_tokens: int = 24
    learning_rate: float = 0.0
    """0: the algorithm's default (TextPPO 1e-4, stable-baselines3 3e-4)"""
    seed: int = 0
    output: str = "runs/text"
    threads: int = 1
    """torch.set_num_threads (the embedded LM is too small to gain from more; a busy machine makes them slower)"""
    progress_bar: bool = True


def parse_args() -> Args:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_dataclass_arguments(parser, Args)
    args = dataclass_from_arguments(Args, parser.parse_args())
    if args.algo not in ("textppo", "sb3-ppo", "sb3-a2c"):
        parser.error("--algo must be textppo, sb3-ppo or sb3-a2c")
    return args


def load_reward(spec: str, label: str):
    if spec == "default":
        return default_reward_model()
    if spec == "lexicon":
        return lexicon_sentiment_reward
    if (Path(spec) / "reward_model.json").is_file():
        return load_reward_model(spec)
    return ClassifierRewardModel(spec, label=label or None)


def train_sb3(args: Args, reward, output: Path) -> tuple[list, torch.nn.Module]:
    """Stock stable-baselines3 PPO or A2C driving the LM through ``LMActorCriticPolicy``.

    Each env is wrapped in :class:`~text_envs.shaping.KLPenalty` against the initial LM, and the
    policy sends its per-token log-probs to it (``send_logprobs_to``), so the KL penalty is exact.
    """
    from stable_baselines3 import A2C, PPO
    from stable_baselines3.common.env_util import make_vec_env

    from text_envs import TextGenerationEnv
    from text_envs.shaping import KLPenalty
    from text_envs_agents.sb3.policy import LMActorCriticPolicy, send_logprobs_to

    reference = load_causal_lm(args.policy or None)

    def make_env() -> KLPenalty:
        env = TextGenerationEnv(
            tokenizer=args.policy or None, prompts=args.prompts, reward_model=reward, max_new_tokens=args.max_new_tokens
        )
        return KLPenalty(env, reference_model=reference, beta=args.beta)

    vec_env = make_vec_env(make_env, n_envs=8, seed=args.seed)
    algorithm = PPO if args.algo == "sb3-ppo" else A2C
    settings = dict(n_steps=64, batch_size=128, n_epochs=4) if algorithm is PPO else dict(n_steps=16)
    model = algorithm(
        LMActorCriticPolicy,
        vec_env,
        learning_rate=args.learning_rate or 3e-4,
        seed=args.seed,
        tensorboard_log=str(output / "tensorboard"),
        policy_kwargs=dict(model_name_or_path=args.policy or None),
        **settings,
    )
    model.policy.logprob_callback = send_logprobs_to(vec_env)
    model.learn(total_timesteps=args.timesteps, progress_bar=args.progress_bar)
    model.save(output / f"{args.algo}.zip")
    return [], model.policy.lm.model


def print_comparison(before: dict[str, float], after: dict[str, float]) -> None:
    print("\n| held-out prompts | before | after |")
    print("|---|---:|---:|")
    rows = [
        ("reward-model score (mean)", "score_mean"),
        ("reward-model score (std)", "score_std"),
        ("gold score (mean)", "gold_mean"),
        ("KL to reference (nats/sequence)", "kl"),
        ("completion length (tokens)", "completion_length"),
    ]
    for name, key in rows:
        if key in before:
            print(f"| {name} | {before[key]:.3f} | {after[key]:.3f} |")
    rise = (after["score_mean"] - before["score_mean"]) / max(before["score_std"], 1e-8)
    print(f"\nreward-model score rose by {rise:.2f} standard deviations of its starting distribution")


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    transformers_logging.disable_progress_bar()
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    reward = load_reward(args.reward_model, args.reward_label)
    gold = lexicon_sentiment_reward if args.gold == "lexicon" else None
    tokenizer_source = args.policy or None
    env_kwargs = dict(tokenizer=tokenizer_source, reward_model=reward, max_new_tokens=args.max_new_tokens)
    test_env = TextGenerationVectorEnv(64, prompts=args.test_prompts, **env_kwargs)
    policy_model = load_causal_lm(tokenizer_source)
    reference = load_causal_lm(tokenizer_source).requires_grad_(False)

    def reference_logprobs(batch):
        return sequence_logprobs(reference, batch)

    before, before_batch = evaluate_lm(policy_model, reference_logprobs, test_env, args.seed, gold)
    print(f"{args.algo} on {args.prompts}, reward model {args.reward_model}, beta {args.beta}, seed {args.seed}")
    start = time.perf_counter()
    if args.algo == "textppo":
        env = TextGenerationVectorEnv(args.batch_size, prompts=args.prompts, **env_kwargs)
        config = TextPPOConfig(
            learning_rate=args.learning_rate or TextPPOConfig.learning_rate,
            kl_coef=args.beta,
            adaptive_kl=args.adaptive_kl,
            target_kl=args.target_kl,
            seed=args.seed,
        )
        trainer = TextPPO(env, policy_model, config, tensorboard_log=output / "tensorboard")
        history = trainer.learn(args.iterations, progress_bar=args.progress_bar)
        trainer.save(output / "checkpoint")
        trainer.close()
        trained_model = trainer.policy.model
    else:
        history, trained_model = train_sb3(args, reward, output)
    train_seconds = time.perf_counter() - start
    after, after_batch = evaluate_lm(trained_model, reference_logprobs, test_env, args.seed, gold)
    print(f"\ntrained in {train_seconds:.0f} s")
    print_comparison(before, after)
    print("\nsample completions on held-out prompts (before -> after):")
    for i in range(4):
        print(f"  {before_batch.prompts[i]}|")
        print(f"    before [{before_batch.scores[i]:+.2f}]: {before_batch.completions[i]}")
        print(f"    after  [{after_batch.scores[i]:+.2f}]: {after_batch.completions[i]}")
    samples = [
        {"prompt": p, "before": b, "after": a}
        for p, b, a in zip(before_batch.prompts, before_batch.completions, after_batch.completions, strict=True)
    ]
    (output / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    (output / "metrics.json").write_text(
        json.dumps(
            {
                "args": asdict(args),
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
