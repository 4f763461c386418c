"""Label completions in the terminal (0/1 or A/B) into a feedback JSONL file: the console script ``text-envs-label``.

Same flags (``python scripts/label_feedback.py --help``); the tool is :mod:`text_envs_agents.cli.label`.
"""

from text_envs_agents.cli.label import main

if __name__ == "__main__":
    main()
