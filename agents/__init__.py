"""Agents and policies that act in text_envs environments through stable-baselines3's ``predict``."""

from agents.base import BaseAgent
from agents.minimax_agent import MinimaxAgent
from agents.q_learning import QLearningAgent
from agents.random_agent import RandomAgent
from agents.sampling import sample_completions

__all__ = ["BaseAgent", "MinimaxAgent", "QLearningAgent", "RandomAgent", "sample_completions"]
