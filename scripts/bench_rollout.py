"""Rollout throughput (generated tokens/s): ``generate`` beside the SB3 policy and the TextPPO rollout through the env.

    python scripts/bench_rollout.py [--num-envs 16] [--max-new-tokens 32] [--rounds 4] [--pairs 5]
                                    [--model NAME] [--device auto|cpu|cuda] [--dtype float32|bfloat16]
                                    [--paths policy-cached text-ppo policy-uncached] [--threads 1] [--json PATH]

Ways to sample ``--num-envs`` completions of up to ``--max-new-tokens`` tokens at a time, all from one
model object (``--model``: the embedded LM by default, or a registered name such as
``smollm2-135m-instruct``, a Hub name or a folder) on one device in one dtype (its weights cast to
``--dtype``), in one process with ``torch.set_num_threads(--threads)``:

1. ``generate``: Hugging Face ``model.generate`` with its KV cache on the env's own left-padded
   prompts (``do_sample=True, temperature=1, top_k=0, top_p=1``: plain sampling). Counted as batch x
   new tokens generated (rows that stop early are padded, and count: that is what the batch cost).
2. ``policy, cached`` (``policy-cached``): :class:`text_envs_agents.sb3.policy.LMActorCriticPolicy`
   called as stable-baselines3's ``collect_rollouts`` calls it (``policy(obs_tensor)`` under
   ``torch.no_grad()``, giving actions, values and log-probs) on a :class:`TextGenerationVectorEnv`,
   whose KV cache (:class:`text_envs_agents.llm.incremental.IncrementalLM`) feeds one token per env per
   step and recomputes the envs that restart. The env autoresets in the same step (SB3's ``VecEnv``
   convention), so every step generates one token per env; all of them count, restarts included.
3. ``TextPPO rollout`` (``text-ppo``): :func:`text_envs_agents.llm.rollout.sample_episodes`, the rollout
   of :class:`text_envs_agents.text_ppo.trainer.TextPPO`: the batch starts together, one KV-cached token
   per env per step through the env, finished envs fed a filler token until the batch is done (as
   ``generate`` pads them); counted like ``generate``, batch x steps.
4. ``policy, no cache`` (``policy-uncached``): the SB3 policy with ``use_cache=False``: a full forward
   of every context per step.

``--paths`` picks which of 2-4 run beside ``generate`` (stable-baselines3 is imported only for the
policy paths). The reward model is a constant (zeros), so that the figures are the LM's and the env's
cost, not a reward model's.

Matched work: the same prompts (the env's, left-truncated to its prompt window), the same sampling
settings, and the same stop rule on every path: a row stops at the tokenizer's EOS or one of the
model's ``generation_config.eos_token_id`` (the env is given those as ``stop_tokens``, ``generate`` the
env's stop set as ``eos_token_id``), the batch runs until every row has stopped or reached
``--max-new-tokens``, and every step costs batch tokens. EOS is not suppressed: the TextPPO rollout
takes no logits processor. The JSON's ``steps_per_batch`` shows the mean steps the batched paths ran,
which agree up to sampling noise.

Timing: one untimed warm-up trial per path, then ``--pairs`` rounds of one trial per path
(``--rounds`` batches each; the policy paths run the same number of steps, rounds x max new tokens),
``generate`` first and the others after it in even rounds, the reverse order in odd rounds, so that
each path's trial sits next to a ``generate`` trial (:mod:`paired_trials`). A path's ratio to
``generate`` is taken within each round; the table and the JSON give the median over rounds and its
range (``ratio_to_generate``: medians; ``ratio_to_generate_range``: ``[min, max]``;
``ratio_to_generate_per_pair``: every round's). Target: cached policy and TextPPO >= 1.0x generate on
the CPU (2x on a GPU).

Why the env paths can beat ``generate`` (a 2-core CPU, 1 thread, the embedded LM): a step of this
small model is mostly fixed cost, and for GPT-2 and Llama-family models both env paths decode with a slot
decoder (:func:`text_envs_agents.llm.slot_decoding.slot_decoder`: keys and values written into preallocated
slots instead of a ``DynamicCache`` that is concatenated every token, plain tensor functions instead of
module calls, one fused GELU for GPT-2) and sample by inverse CDF instead of ``torch.multinomial``. The
cached policy path still pays a second LM call on steps where some env restarted (the last line prints the
calls per step) and a value head; the TextPPO rollout records log-probs on the way.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import torch
import tyro
from gymnasium.vector import AutoresetMode
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
from text_envs.lm import load_causal_lm
from text_envs_agents.llm.rollout import sample_episodes

PathName = Literal["policy-cached", "text-ppo", "policy-uncached"]
PATH_TITLES: dict[str, str] = {
    "generate": "generate",
    "policy-cached": "policy, cached",
    "text-ppo": "TextPPO rollout",
    "policy-uncached": "policy, no cache",
}
Trial = Callable[[int], tuple[int, float]]
"""a round index (-1: warm-up) to (tokens generated, seconds)"""


@dataclass
class Args:
    num_envs: int = 16
    """batch size: envs, and prompts per generate call"""
    max_new_tokens: int = 32
    """completion length limit in tokens (every path stops at the same stop tokens)"""
    rounds: int = 4
    """batches of completions per timed trial"""
    pairs: int = 5
    """timed trials per path, interleaved with generate's; ratios are medians over them"""
    model: str = ""
    """the LM of every path: registered name, Hugging Face Hub name or local folder (empty: the embedded LM)"""
    device: DeviceName = "auto"
    """where the LM runs (auto: CUDA when present)"""
    dtype: DtypeName = "float32"
    """the LM's weights on every path"""
    paths: tuple[PathName, ...] = ("policy-cached", "text-ppo", "policy-uncached")
    """the paths compared with generate"""
    threads: int = 1
    """torch.set_num_threads"""
    json: str = ""
    """write the figures to this path (empty: print only)"""


def zero_reward(prompts: list[str], completions: list[str]) -> np.ndarray:
    return np.zeros(len(completions))


def generate_trial(model, inputs: dict, stop_ids: list[int], max_new_tokens: int, pad_token_id: int, rounds: int):
    """Tokens generated and seconds taken by ``rounds`` calls of ``model.generate``."""
    tokens = 0
    start = time.perf_counter()
    for _ in range(rounds):
        output = model.generate(
            **inputs,
            do_sample=True,
            temperature=1.0,
            top_k=0,
            top_p=1.0,
            max_new_tokens=max_new_tokens,
            eos_token_id=stop_ids,
            pad_token_id=pad_token_id,
        )
        tokens += output.shape[0] * (output.shape[1] - inputs["input_ids"].shape[1])
    synchronize(model.device)
    return tokens, time.perf_counter() - start


def policy_trial(policy, env: TextGenerationVectorEnv, steps: int, seed: int) -> tuple[int, float]:
    """Tokens generated and seconds taken by ``steps`` policy-and-env steps, as SB3's ``collect_rollouts`` does them."""
    from stable_baselines3.common.utils import obs_as_tensor

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
    generator = torch.Generator(device=model.device).manual_seed(seed)
    tokens = 0
    start = time.perf_counter()
    for round_index in range(rounds):
        batch = sample_episodes(model, env, seed * 1000 + round_index, generator)
        tokens += env.num_envs * int(batch.completion_mask.sum(1).max())
    synchronize(model.device)
    return tokens, time.perf_counter() - start


def build_policy(env: TextGenerationVectorEnv, model_name: str | None):
    """The SB3 policy on ``env``'s spaces (imports stable-baselines3)."""
    from text_envs_agents.sb3.policy import LMActorCriticPolicy

    policy = LMActorCriticPolicy(
        env.single_observation_space, env.single_action_space, lambda _: 0.0, model_name_or_path=model_name
    )
    policy.set_training_mode(False)
    return policy


def measure(args: Args) -> dict[str, object]:
    """Build the paths, run the interleaved trials, and return the figures (see the module doc)."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device, dtype = bench_device(args.device), DTYPES[args.dtype]
    model_name = args.model or None
    policy_paths = [path for path in args.paths if path.startswith("policy")]
    env_arguments = {"tokenizer": model_name, "reward_model": zero_reward, "max_new_tokens": args.max_new_tokens}
    policy = policy_env = None
    if policy_paths:
        # The env's spaces come first; its stop tokens are set below, once the model is loaded.
        policy = build_policy(TextGenerationVectorEnv(1, **env_arguments), model_name)
        model = policy.lm.model  # the same weights for every path
        policy.to(device=device, dtype=dtype)
    else:
        model = load_causal_lm(model_name).to(device=device, dtype=dtype)
    env_arguments["stop_tokens"] = generation_eos_ids(model)
    lockstep_env = TextGenerationVectorEnv(args.num_envs, **env_arguments)
    if policy_paths:
        policy_env = TextGenerationVectorEnv(args.num_envs, autoreset_mode=AutoresetMode.SAME_STEP, **env_arguments)

    observations, _ = lockstep_env.reset(seed=0)
    width = int(observations["attention_mask"].sum(1).max())
    inputs = {
        key: torch.as_tensor(observations[key][:, -width:], device=device) for key in ("input_ids", "attention_mask")
    }
    stop_ids = sorted(lockstep_env.task.stop_token_ids)
    steps = args.rounds * args.max_new_tokens

    def run_generate(_: int) -> tuple[int, float]:
        with torch.no_grad():
            return generate_trial(
                model, inputs, stop_ids, args.max_new_tokens, lockstep_env.task.pad_token_id, args.rounds
            )

    cached_counts = {"lm_calls": 0, "continued_rows": 0, "recomputed_rows": 0, "steps": 0}

    def run_policy(use_cache: bool) -> Trial:
        def trial(index: int) -> tuple[int, float]:
            policy.lm.use_cache = use_cache
            before = {key: getattr(policy.lm, key) for key in cached_counts if key != "steps"}
            result = policy_trial(policy, policy_env, steps, seed=index + 1)
            if use_cache:
                for key, value in before.items():
                    cached_counts[key] += getattr(policy.lm, key) - value
                cached_counts["steps"] += steps
            return result

        return trial

    trials: dict[str, Trial] = {"generate": run_generate}
    for path in args.paths:
        if path == "text-ppo":
            trials[path] = lambda index: textppo_trial(model, lockstep_env, args.rounds, seed=index + 2)
        else:
            trials[path] = run_policy(path == "policy-cached")

    tokens: dict[str, list[int]] = {path: [] for path in trials}

    def rate(path: str) -> Callable[[int], float]:
        def timed(index: int) -> float:
            generated, seconds = trials[path](index)
            tokens[path].append(generated)
            return generated / seconds

        return timed

    for path in trials:
        trials[path](-1)  # warm-up, untimed
    rates = interleaved_rates({path: rate(path) for path in trials}, args.pairs)
    ratios = {path: ratio_summary(rates[path], rates["generate"]) for path in trials}
    figures: dict[str, object] = {
        "settings": {key: value for key, value in asdict(args).items() if key != "json"},
        "device": str(device),
        "tokens_per_s": {PATH_TITLES[path]: statistics.median(rates[path]) for path in trials},
        "tokens_per_s_per_pair": {PATH_TITLES[path]: rates[path] for path in trials},
        "tokens_per_trial": {PATH_TITLES[path]: statistics.median(tokens[path]) for path in trials},
        # the batched paths' mean steps per batch: equal up to sampling noise when the stop rule is shared
        "steps_per_batch": {
            PATH_TITLES[path]: statistics.mean(tokens[path]) / (args.num_envs * args.rounds)
            for path in trials
            if not path.startswith("policy")
        },
        "ratio_to_generate": {PATH_TITLES[path]: ratios[path]["median"] for path in trials},
        "ratio_to_generate_range": {PATH_TITLES[path]: ratios[path]["range"] for path in trials},
        "ratio_to_generate_per_pair": {PATH_TITLES[path]: ratios[path]["per_pair"] for path in trials},
    }
    if cached_counts["steps"]:
        rows = cached_counts["continued_rows"] + cached_counts["recomputed_rows"]
        figures["cached_lm_calls_per_step"] = cached_counts["lm_calls"] / cached_counts["steps"]
        figures["cached_recomputed_row_share"] = cached_counts["recomputed_rows"] / rows
    return figures


def report(figures: dict[str, object]) -> None:
    """Print the table of :func:`measure`'s figures."""
    settings = figures["settings"]
    print(
        f"{settings['model'] or 'embedded LM'} on {figures['device']} in {settings['dtype']}, batch "
        f"{settings['num_envs']}, <= {settings['max_new_tokens']} new tokens, torch threads {settings['threads']}, "
        f"median (min..max) over {settings['pairs']} interleaved pairs"
    )
    print("| path | tokens per trial | tokens/s | vs generate |")
    print("|---|---:|---:|---:|")
    for title, rate in figures["tokens_per_s"].items():
        low, high = figures["ratio_to_generate_range"][title]
        print(
            f"| {title} | {figures['tokens_per_trial'][title]:.0f} | {rate:,.0f} | "
            f"{figures['ratio_to_generate'][title]:.2f}x ({low:.2f}..{high:.2f}) |"
        )
    steps = ", ".join(f"{title} {value:.1f}" for title, value in figures["steps_per_batch"].items())
    print(f"steps per batch (same stop rule): {steps}")
    if "cached_lm_calls_per_step" in figures:
        print(
            f"cached path: {figures['cached_lm_calls_per_step']:.2f} LM calls per step, "
            f"{figures['cached_recomputed_row_share']:.1%} of rows recomputed "
            "(envs that restarted; each step with a restart costs a second LM call on CPU)"
        )


def main() -> None:
    args = tyro.cli(Args, description=__doc__.split("\n")[0])
    figures = measure(args)
    report(figures)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    main()
