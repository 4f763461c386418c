"""text_envs: LLM text generation and classic baselines as Gymnasium environments.

Importing the package registers every env under the ``text_envs/`` namespace; ``gym.make(
"text_envs:text_envs/TicTacToe-v0")`` imports it first, which is the form Ray's workers need.
"""

from gymnasium.envs.registration import register, registry

from text_envs.tictactoe import TicTacToeEnv
from text_envs.tictactoe_vector import TicTacToeVectorEnv

__all__ = ["TicTacToeEnv", "TicTacToeVectorEnv", "ENV_IDS"]
__version__ = "0.1.0"

ENV_IDS = ("text_envs/TicTacToe-v0",)

if "text_envs/TicTacToe-v0" not in registry:
    register(
        id="text_envs/TicTacToe-v0",
        entry_point="text_envs.tictactoe:TicTacToeEnv",
        vector_entry_point="text_envs.tictactoe_vector:TicTacToeVectorEnv",
    )
