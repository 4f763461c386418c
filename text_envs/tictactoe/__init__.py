"""Tic-Tac-Toe, the classic RL baseline: rules as lookup tables, the numeric env, its vector form, the
text env an LLM plays through its context window, rendering and evaluation against fixed opponents.

``rules`` and the numeric envs need only numpy; :class:`TicTacToeTextEnv` loads a tokenizer.
"""

from text_envs.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "TicTacToeEnv": "text_envs.tictactoe.env",
        "TicTacToeVectorEnv": "text_envs.tictactoe.vector_env",
        "TicTacToeTextEnv": "text_envs.tictactoe.text_env",
        "GameResults": "text_envs.tictactoe.evaluation",
        "evaluate_tictactoe": "text_envs.tictactoe.evaluation",
        "evaluate_tictactoe_text": "text_envs.tictactoe.evaluation",
    },
)
