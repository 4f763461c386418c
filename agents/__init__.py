"""text_envs_agents: agents and policies that act in text_envs environments, for any RL library.

Installed under the import name ``text_envs_agents`` (the repository keeps the folder ``agents/``; see
the README for why). Names are imported on first use, so ``from text_envs_agents import TextPPO``
loads neither stable-baselines3 nor Ray.

- Tic-Tac-Toe agents with stable-baselines3's ``predict``: :class:`RandomAgent`, :class:`MinimaxAgent`,
  :class:`QLearningAgent`, :class:`TextTicTacToeAgent` (plays through text).
- LM policies: :class:`TextPPO` (:mod:`text_envs_agents.text_ppo`), :class:`LMActorCriticPolicy`
  for stock stable-baselines3 algorithms (:mod:`text_envs_agents.sb3`), RLlib modules
  (:mod:`text_envs_agents.rllib`), and the LM plumbing they share (:mod:`text_envs_agents.llm`).
- :mod:`text_envs_agents.benchmark`: every agent on every env it fits.
"""

from text_envs.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "BaseAgent": "text_envs_agents.base",
        "MinimaxAgent": "text_envs_agents.minimax_agent",
        "QLearningAgent": "text_envs_agents.q_learning",
        "RandomAgent": "text_envs_agents.random_agent",
        "TextTicTacToeAgent": "text_envs_agents.text_tictactoe_agent",
        "IncrementalLM": "text_envs_agents.llm.incremental",
        "NextToken": "text_envs_agents.llm.incremental",
        "evaluate_lm": "text_envs_agents.llm.evaluation",
        "sample_completions": "text_envs_agents.llm.sampling",
        "LMActorCriticPolicy": "text_envs_agents.sb3.policy",
        "send_logprobs_to": "text_envs_agents.sb3.policy",
        "TextPPO": "text_envs_agents.text_ppo",
        "TextPPOConfig": "text_envs_agents.text_ppo",
    },
)
