"""The main job on the embedded defaults, offline: what `make demo` runs: the console script ``text-envs-demo``.

Same flags (``python scripts/demo.py --help``); the tool is :mod:`text_envs_agents.cli.demo`.
"""

from text_envs_agents.cli.demo import main

if __name__ == "__main__":
    main()
