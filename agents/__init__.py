"""Agents and policies that act in text_envs environments through stable-baselines3's ``predict``."""

from agents.base import BaseAgent
from agents.incremental_lm import IncrementalLM, NextToken
from agents.lm_policy import LMActorCriticPolicy, send_logprobs_to
from agents.minimax_agent import MinimaxAgent
from agents.q_learning import QLearningAgent
from agents.random_agent import RandomAgent
from agents.sampling import sample_completions
from agents.text_ppo import TextPPO, TextPPOConfig
from agents.text_tictactoe_agent import TextTicTacToeAgent

__all__ = [
    "BaseAgent",
    "IncrementalLM",
    "LMActorCriticPolicy",
    "MinimaxAgent",
    "NextToken",
    "QLearningAgent",
    "RandomAgent",
    "TextPPO",
    "TextPPOConfig",
    "TextTicTacToeAgent",
    "sample_completions",
    "send_logprobs_to",
]
