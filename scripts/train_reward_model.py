"""Train a reward model from human feedback: the console script ``text-envs-train-reward-model``.

Same flags (``python scripts/train_reward_model.py --help``); the tool is
:mod:`text_envs_agents.cli.train_reward_model`.
"""

from text_envs_agents.cli.train_reward_model import main

if __name__ == "__main__":
    main()
