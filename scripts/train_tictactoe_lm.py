"""Teach a causal LM Tic-Tac-Toe through text: the console script ``text-envs-train-tictactoe-lm``.

Same flags (``python scripts/train_tictactoe_lm.py --help``); the tool is
:mod:`text_envs_agents.cli.train_tictactoe_lm`.
"""

from text_envs_agents.cli.train_tictactoe_lm import main

if __name__ == "__main__":
    main()
