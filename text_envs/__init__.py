"""text_envs: LLM text generation and classic baselines as Gymnasium environments.

Importing the package registers every env under the ``text_envs/`` namespace; ``gym.make(
"text_envs:text_envs/TicTacToe-v0")`` imports it first, which is the form Ray's workers need.
"""

import os

import torch
from gymnasium.envs.registration import register, registry

from text_envs.text_generation import TextGenerationEnv
from text_envs.text_generation_vector import TextGenerationVectorEnv
from text_envs.tictactoe import TicTacToeEnv
from text_envs.tictactoe_text import TicTacToeTextEnv
from text_envs.tictactoe_vector import TicTacToeVectorEnv

__all__ = [
    "ENV_IDS",
    "TextGenerationEnv",
    "TextGenerationVectorEnv",
    "TicTacToeEnv",
    "TicTacToeTextEnv",
    "TicTacToeVectorEnv",
]
__version__ = "0.1.0"

# Envs score with torch models (the default reward model, KLPenalty's reference). A process forked after
# the parent used torch's OpenMP pool (AsyncVectorEnv workers on Linux) can hang in its first parallel
# op; one thread in forked children avoids it, as PyTorch's own DataLoader workers do.
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: torch.set_num_threads(1))

_ENTRY_POINTS = {
    "text_envs/TicTacToe-v0": ("text_envs.tictactoe:TicTacToeEnv", "text_envs.tictactoe_vector:TicTacToeVectorEnv"),
    "text_envs/TextGeneration-v0": (
        "text_envs.text_generation:TextGenerationEnv",
        "text_envs.text_generation_vector:TextGenerationVectorEnv",
    ),
    "text_envs/TicTacToeText-v0": ("text_envs.tictactoe_text:TicTacToeTextEnv", None),
}
ENV_IDS = tuple(_ENTRY_POINTS)

for _env_id, (_entry_point, _vector_entry_point) in _ENTRY_POINTS.items():
    if _env_id not in registry:
        register(id=_env_id, entry_point=_entry_point, vector_entry_point=_vector_entry_point)
