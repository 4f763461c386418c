"""An LLM that learns Tic-Tac-Toe through its context window (TicTacToeText-v0).

- :mod:`~text_envs_agents.tictactoe_lm.warm_start`: the minimax agent's moves written through the env's own
  prompts, and the supervised warm start that imitates them.
- :mod:`~text_envs_agents.tictactoe_lm.evaluation`: games of a causal LM against an opponent, sampled or greedy.
- :mod:`~text_envs_agents.tictactoe_lm.training`: warm start, then RL (multi-turn TextPPO or stable-baselines3
  PPO), evaluated before and after each stage: what ``text-envs-train-tictactoe-lm`` runs.
"""
