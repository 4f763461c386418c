"""The RLHF loop (K rounds of sample -> label -> reward model -> RL): the console script ``text-envs-rlhf-loop``.

Same flags (``python scripts/rlhf_loop.py --help``); the tool is :mod:`text_envs_agents.cli.rlhf_loop`.
"""

from text_envs_agents.cli.rlhf_loop import main

if __name__ == "__main__":
    main()
