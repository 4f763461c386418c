"""``python -m text_envs_agents.hyperparams [ALGO]``: print the path of ALGO's RL Zoo configuration file."""

import sys

from text_envs_agents.hyperparams import conf_file

if __name__ == "__main__":
    print(conf_file(*sys.argv[1:2]))
