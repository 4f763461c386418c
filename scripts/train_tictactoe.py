"""Train and evaluate an agent on TicTacToe-v0: the console script ``text-envs-train-tictactoe``.

Same flags (``python scripts/train_tictactoe.py --help``); the tool is :mod:`text_envs_agents.cli.train_tictactoe`.
"""

from text_envs_agents.cli.train_tictactoe import main

if __name__ == "__main__":
    main()
