"""Personalised RLHF with two simulated users (short vs long reviews): the console script ``text-envs-personalise``.

Same flags (``python scripts/personalise.py --help``); the tool is :mod:`text_envs_agents.cli.personalise`.
"""

from text_envs_agents.cli.personalise import main

if __name__ == "__main__":
    main()
