"""RLHF on TextGeneration-v0 (TextPPO or stable-baselines3 PPO/A2C): the console script ``text-envs-train``.

Same flags (``python scripts/train_text.py --help``); the tool is :mod:`text_envs_agents.cli.train`.
"""

from text_envs_agents.cli.train import main

if __name__ == "__main__":
    main()
