"""text_envs: LLM text generation and classic baselines as Gymnasium environments.

Importing the package registers every env under the ``text_envs/`` namespace; ``gym.make(
"text_envs:text_envs/TicTacToe-v0")`` imports it first, which is the form Ray's workers need.
The env classes are imported on first use, so ``import text_envs`` loads neither torch nor transformers.

Subpackages, one concept each: :mod:`text_envs.generation` (TextGeneration-v0), :mod:`text_envs.tictactoe`
(TicTacToe-v0, TicTacToeText-v0), :mod:`text_envs.rewards` (reward models), :mod:`text_envs.feedback`
(human labels and preferences), :mod:`text_envs.shaping` (KL penalty and other reward shaping), and
:mod:`text_envs.lm` (loading language models).
"""

import os
import sys

from gymnasium.envs.registration import register, registry

from text_envs.lazy import lazy_exports

__version__ = "0.1.0"

_ENTRY_POINTS = {
    "text_envs/TicTacToe-v0": (
        "text_envs.tictactoe.env:TicTacToeEnv",
        "text_envs.tictactoe.vector_env:TicTacToeVectorEnv",
    ),
    "text_envs/TextGeneration-v0": (
        "text_envs.generation.env:TextGenerationEnv",
        "text_envs.generation.vector_env:TextGenerationVectorEnv",
    ),
    "text_envs/TicTacToeText-v0": (
        "text_envs.tictactoe.text_env:TicTacToeTextEnv",
        "text_envs.tictactoe.text_env:TicTacToeTextVectorEnv",
    ),
}
ENV_IDS = tuple(_ENTRY_POINTS)

for _env_id, (_entry_point, _vector_entry_point) in _ENTRY_POINTS.items():
    if _env_id not in registry:
        register(id=_env_id, entry_point=_entry_point, vector_entry_point=_vector_entry_point)

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "TextGenerationEnv": "text_envs.generation.env",
        "TextGenerationVectorEnv": "text_envs.generation.vector_env",
        "TicTacToeEnv": "text_envs.tictactoe.env",
        "TicTacToeTextEnv": "text_envs.tictactoe.text_env",
        "TicTacToeTextVectorEnv": "text_envs.tictactoe.text_env",
        "TicTacToeVectorEnv": "text_envs.tictactoe.vector_env",
    },
)
__all__ = ["ENV_IDS", *__all__]


def _one_torch_thread_in_forked_child() -> None:
    # Envs score with torch models (the default reward model, KLPenalty's reference). A process forked after
    # the parent used torch's OpenMP pool (AsyncVectorEnv workers on Linux) can hang in its first parallel
    # op; one thread in forked children avoids it, as PyTorch's own DataLoader workers do.
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_one_torch_thread_in_forked_child)
