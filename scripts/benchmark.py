"""Benchmark every agent on every env it fits: the console script ``text-envs-benchmark``.

Same flags (``python scripts/benchmark.py --help``); the tool is :mod:`text_envs_agents.cli.benchmark`.
"""

from text_envs_agents.cli.benchmark import main

if __name__ == "__main__":
    main()
