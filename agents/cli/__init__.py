"""The command-line tools, one module each; setup.cfg installs each module's ``main`` as a console script.

| console script | module | scripts/ wrapper |
|---|---|---|
| ``text-envs-train`` | :mod:`text_envs_agents.cli.train` | ``train_text.py`` |
| ``text-envs-benchmark`` | :mod:`text_envs_agents.cli.benchmark` | ``benchmark.py`` |
| ``text-envs-label`` | :mod:`text_envs_agents.cli.label` | ``label_feedback.py`` |
| ``text-envs-train-reward-model`` | :mod:`text_envs_agents.cli.train_reward_model` | ``train_reward_model.py`` |
| ``text-envs-train-tictactoe`` | :mod:`text_envs_agents.cli.train_tictactoe` | ``train_tictactoe.py`` |
| ``text-envs-train-rllib`` | :mod:`text_envs_agents.cli.train_rllib` | ``train_rllib.py`` |
| ``text-envs-shaping-sweep`` | :mod:`text_envs_agents.cli.shaping_sweep` | ``shaping_sweep.py`` |
| ``text-envs-demo`` | :mod:`text_envs_agents.cli.demo` | ``demo.py`` |
| ``text-envs-rlhf-loop`` | :mod:`text_envs_agents.cli.rlhf_loop` | ``rlhf_loop.py`` |
| ``text-envs-personalise`` | :mod:`text_envs_agents.cli.personalise` | ``personalise.py`` |

Every ``main(argv=None)`` parses its flags with tyro from an ``Args`` dataclass (the field docstrings
are the help text) before it imports anything heavy, so ``--help`` answers at once and starts no work.
One spelling per concept across the tools: ``--model`` (the policy LM: a Hub name, a local folder, or
empty for the embedded LM), ``--reward-model``, ``--threads`` (torch threads), ``--output-dir``,
``--seed``/``--seeds 0 1 2``, ``--progress-bar/--no-progress-bar``.
"""
