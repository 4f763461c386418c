"""The main job on the embedded defaults, offline: what `make demo` runs.

1. Trains the default Tic-Tac-Toe agent (scripts/train_tictactoe.py with its defaults) and prints
   its win/draw/loss table against the random and the minimax opponent.
2. Lets the embedded pretrained LM write completions in TextGeneration-v0 (sampling, one token per
   env step, all episodes batched in the vector env) and prints each with its reward.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from transformers.utils import logging as transformers_logging

from text_envs import TextGenerationVectorEnv
from text_envs.defaults import DEFAULT_PROMPTS_TEST
from text_envs.loading import load_causal_lm

SCRIPTS = Path(__file__).resolve().parent


@torch.no_grad()
def sample_completions(episodes: int = 6, seed: int = 0) -> None:
    torch.manual_seed(seed)
    model = load_causal_lm()
    envs = TextGenerationVectorEnv(episodes, prompts=str(DEFAULT_PROMPTS_TEST), max_new_tokens=40)
    observations, _ = envs.reset(seed=seed)
    results: list[tuple[str, str, float] | None] = [None] * episodes
    while any(r is None for r in results):
        ids = torch.as_tensor(observations["input_ids"])
        mask = torch.as_tensor(observations["attention_mask"])
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left-padded contexts
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, -1]
        actions = torch.multinomial(torch.softmax(logits, -1), 1)[:, 0].numpy()
        observations, rewards, terminated, truncated, info = envs.step(actions)
        for i in np.flatnonzero(terminated | truncated):
            if results[i] is None:
                results[i] = (info["prompt"][i], info["completion"][i], float(rewards[i]))
    print("\nThe embedded LM writing in TextGeneration-v0 (reward: lexicon sentiment in [-1, 1]):")
    for prompt, completion, reward in results:
        print(f"  [{reward:+.2f}] {prompt}|{completion}")


def main() -> None:
    torch.set_num_threads(1)
    transformers_logging.disable_progress_bar()
    subprocess.run([sys.executable, str(SCRIPTS / "train_tictactoe.py")], check=True)
    sample_completions()


if __name__ == "__main__":
    main()
