"""Rollout throughput (generated tokens/s) of the embedded LM: ``generate`` vs the SB3 policy acting through the env.

    python scripts/bench_rollout.py [--num-envs 16] [--max-new-tokens 32] [--rounds 4] [--repeats 3]
                                    [--model NAME] [--threads 1] [--json PATH]

Four ways to sample ``--num-envs`` completions of ``--max-new-tokens`` tokens at a time, in one
process with ``torch.set_num_threads(--threads)``:

1. ``generate``: Hugging Face ``model.generate`` with its KV cache on a batch of left-padded prompts
   (``do_sample=True, top_k=0``: plain sampling). Counted as batch x new tokens generated (rows
   that hit EOS early are padded, and count: that is what the batch cost).
2. ``policy, cached``: :class:`text_envs_agents.sb3.policy.LMActorCriticPolicy` called as stable-baselines3's
   ``collect_rollouts`` calls it (``policy(obs_tensor)`` under ``torch.no_grad()``, giving actions,
   values and log-probs) on a :class:`TextGenerationVectorEnv`, whose KV cache
   (:class:`text_envs_agents.llm.incremental.IncrementalLM`) feeds one token per env per step and recomputes
   the envs that restart. The env autoresets in the same step (SB3's ``VecEnv`` convention), so
   every step generates one token per env; all of them count, restarts included.
3. ``TextPPO rollout``: :func:`text_envs_agents.llm.rollout.sample_episodes`, the rollout of
   :class:`text_envs_agents.text_ppo.trainer.TextPPO`: the batch starts together, one KV-cached token per env per step
   through the env, finished envs fed a filler token until the batch is done (as ``generate`` pads
   them); counted like ``generate``, batch x steps.
4. ``policy, no cache``: the SB3 policy with ``use_cache=False``: a full forward of every context per step.

The reward model is a constant (zeros) so that the figures are the LM's and the env's cost, not a
reward model's. Each path runs ``--rounds`` batches of completions per trial (the env paths run the
same number of steps: rounds x max new tokens), after one warm-up trial; the best of
``--repeats`` trials counts (the machine may be shared). Target: cached policy and TextPPO >= 0.8x generate.

Why the env paths can beat ``generate`` here (a 2-core CPU, 1 thread, the embedded LM): a step of
this small model is mostly fixed cost, and for GPT-2 models both env paths decode with
:class:`text_envs_agents.llm.gpt2_decoding.GPT2Decoder` (keys and values written into preallocated slots instead of
a ``DynamicCache`` that is concatenated every token, plain tensor functions instead of module calls,
one fused GELU) and sample by inverse CDF instead of ``torch.multinomial``. The cached policy path
still pays a second LM call on steps where some env restarted (the last line prints the calls per
step) and a value head; the TextPPO rollout records log-probs on the way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import tyro
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.utils import obs_as_tensor

from text_envs import TextGenerationVectorEnv
from text_envs.lm import load_tokenizer
from text_envs_agents.llm.rollout import sample_episodes
from text_envs_agents.sb3.policy import LMActorCriticPolicy


def zero_reward(prompts: list[str], completions: list[str]) -> np.ndarray:
    return np.zeros(len(completions))


def generate_trial(model, inputs: dict, max_new_tokens: int, pad_token_id: int, rounds: int) -> tuple[int, float]:
    """Tokens generated and seconds taken by ``rounds`` calls of ``model.generate``."""
    tokens = 0
    start = time.perf_counter()
    for _ in range(rounds):
        output = model.generate(
            **inputs,
            do_sample=True,
            top_k=0,
            top_p=1.0,
            max_new_tokens=max_new_tokens,
            pad_token_id=pad_token_id,
        )
        tokens += output.shape[0] * (output.shape[1] - inputs["input_ids"].shape[1])
    return tokens, time.perf_counter() - start


def policy_trial(policy: LMActorCriticPolicy, env: TextGenerationVectorEnv, steps: int, seed: int) -> tuple[int, float]:
    """Tokens generated and seconds taken by ``steps`` policy-and-env steps, as SB3's ``collect_rollouts`` does them."""
    observations, _ = env.reset(seed=seed)
    policy.lm.reset_cache()
    device = policy.device
    start = time.perf_counter()
    for _ in range(steps):
        with torch.no_grad():
            actions, _values, _log_probs = policy(obs_as_tensor(observations, device))
        observations, _, _, _, _ = env.step(actions.cpu().numpy())
    return steps * env.num_envs, time.perf_counter() - start


def textppo_trial(model, env: TextGenerationVectorEnv, rounds: int, seed: int) -> tuple[int, float]:
    """Tokens generated and seconds taken by ``rounds`` TextPPO rollouts (batch x steps each)."""
    generator = torch.Generator().manual_seed(seed)
    tokens = 0
    start = time.perf_counter()
    for round_index in range(rounds):
        batch = sample_episodes(model, env, seed * 1000 + round_index, generator)
        tokens += env.num_envs * int(batch.completion_mask.sum(1).max())
    return tokens, time.perf_counter() - start


def best_rate(trial: Callable[[int], tuple[int, float]], repeats: int) -> tuple[float, int]:
    """Best tokens/s over ``repeats`` trials after one warm-up, and the tokens one trial counts."""
    trial(-1)
    rates, tokens = [], 0
    for repeat in range(repeats):
        tokens, seconds = trial(repeat)
        rates.append(tokens / seconds)
    return max(rates), tokens


@dataclass
class Args:
    num_envs: int = 16
    """batch size: envs, and prompts per generate call"""
    max_new_tokens: int = 32
    """tokens per completion"""
    rounds: int = 4
    """batches of completions per timed trial"""
    repeats: int = 3
    """timed trials per path; the best counts"""
    model: str = ""
    """the LM of every path: Hugging Face Hub name or local folder (empty: the embedded LM)"""
    threads: int = 1
    """torch.set_num_threads"""
    json: str = ""
    """write the figures to this path (empty: print only)"""


def main() -> None:
    args = tyro.cli(Args, description=__doc__.split("\n")[0])
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    env = TextGenerationVectorEnv(
        args.num_envs,
        tokenizer=args.model or None,
        reward_model=zero_reward,
        max_new_tokens=args.max_new_tokens,
        autoreset_mode=AutoresetMode.SAME_STEP,
    )
    policy = LMActorCriticPolicy(
        env.single_observation_space, env.single_action_space, lambda _: 0.0, model_name_or_path=args.model or None
    )
    policy.set_training_mode(False)
    model = policy.lm.model  # the same weights for every path

    tokenizer = load_tokenizer(args.model or None)
    tokenizer.padding_side = "left"
    prompts = [env.task.prompts[i % len(env.task.prompts)] for i in range(args.num_envs)]
    inputs = dict(tokenizer(prompts, return_tensors="pt", padding=True))
    pad_token_id = env.task.pad_token_id
    steps = args.rounds * args.max_new_tokens

    def run_generate(_: int) -> tuple[int, float]:
        with torch.no_grad():
            return generate_trial(model, inputs, args.max_new_tokens, pad_token_id, args.rounds)

    def run_policy(use_cache: bool) -> Callable[[int], tuple[int, float]]:
        def trial(repeat: int) -> tuple[int, float]:
            policy.lm.use_cache = use_cache
            return policy_trial(policy, env, steps, seed=repeat + 1)

        return trial

    rows = {"generate": best_rate(run_generate, args.repeats)}
    lm = policy.lm
    lm_calls, continued, recomputed = lm.lm_calls, lm.continued_rows, lm.recomputed_rows
    rows["policy, cached"] = best_rate(run_policy(True), args.repeats)
    cached_steps = (args.repeats + 1) * steps
    lm_calls_per_step = (lm.lm_calls - lm_calls) / cached_steps
    recomputed_share = (lm.recomputed_rows - recomputed) / (
        lm.recomputed_rows - recomputed + lm.continued_rows - continued
    )
    lockstep_env = TextGenerationVectorEnv(
        args.num_envs, tokenizer=args.model or None, reward_model=zero_reward, max_new_tokens=args.max_new_tokens
    )
    rows["TextPPO rollout"] = best_rate(
        lambda repeat: textppo_trial(model, lockstep_env, args.rounds, seed=repeat + 2), args.repeats
    )
    rows["policy, no cache"] = best_rate(run_policy(False), args.repeats)
    reference = rows["generate"][0]
    print(
        f"{args.model or 'embedded LM'}, batch {args.num_envs}, {args.max_new_tokens} new tokens, "
        f"torch threads {args.threads}, best of {args.repeats} trials"
    )
    print("| path | tokens per trial | tokens/s | vs generate |")
    print("|---|---:|---:|---:|")
    for name, (rate, tokens) in rows.items():
        print(f"| {name} | {tokens} | {rate:,.0f} | {rate / reference:.2f}x |")
    print(
        f"cached path: {lm_calls_per_step:.2f} LM calls per step, {recomputed_share:.1%} of rows recomputed "
        "(envs that restarted; each step with a restart costs a second LM call on CPU)"
    )
    if args.json:
        figures = {
            "num_envs": args.num_envs,
            "max_new_tokens": args.max_new_tokens,
            "threads": args.threads,
            "tokens_per_s": {name: rate for name, (rate, _) in rows.items()},
            "ratio_to_generate": {name: rate / reference for name, (rate, _) in rows.items()},
            "cached_lm_calls_per_step": lm_calls_per_step,
            "cached_recomputed_row_share": recomputed_share,
        }
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    main()
