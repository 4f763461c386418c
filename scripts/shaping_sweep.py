"""Reward-shaping study: sweep β and shaping stacks, every judged figure against KL: ``text-envs-shaping-sweep``.

Same flags (``python scripts/shaping_sweep.py --help``); the tool is :mod:`text_envs_agents.cli.shaping_sweep`.
"""

from text_envs_agents.cli.shaping_sweep import main

if __name__ == "__main__":
    main()
