"""Train with Ray RLlib's PPO, locally or on a Ray cluster: the console script ``text-envs-train-rllib``.

Same flags (``python scripts/train_rllib.py --help``); the tool is :mod:`text_envs_agents.cli.train_rllib`.
"""

from text_envs_agents.cli.train_rllib import main

if __name__ == "__main__":
    main()
