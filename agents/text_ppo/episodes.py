"""What TextPPO samples and trains on: completions of TextGeneration-v0, or whole games of TicTacToeText-v0.

Both give one :class:`~text_envs_agents.llm.rollout.RolloutBatch` row per episode: the first prompt, then the
"completion", whose mask marks the tokens the policy chose. For a completion those are all of it; for a game
(``context="game"``) they are the agent's tokens, and the opponent's replies and the boards between them are
context that is read but never trained on (their log-probs, KL and advantages are zero). The episode's reward
(the reward model's score, the game's outcome) sits on its last trained token.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from text_envs.generation.vector_env import TextGenerationVectorEnv
from text_envs.tictactoe.text_env import TicTacToeTextVectorEnv
from text_envs_agents.llm.game_rollout import sample_games
from text_envs_agents.llm.rollout import RolloutBatch, sample_episodes
from text_envs_agents.text_ppo.checkpoint import env_record


class TextCompletions:
    """One completion of a prompt per episode, from a :class:`~text_envs.TextGenerationVectorEnv` (causal)."""

    shapeable = True
    """whether TextPPO's shaping pieces (scoring completions) apply"""
    checkpointable = True

    def __init__(self, env: TextGenerationVectorEnv):
        if env.task.architecture != "causal":
            raise ValueError("TextPPO trains causal LMs; the env is encoder-decoder")
        self.env = env
        self.vocab_size = env.task.vocab_size
        self.max_episode_tokens = env.task.max_new_tokens

    def check_model(self, model: nn.Module) -> None:
        """Nothing to check: the env's context length was checked against the tokenizer."""

    def stopped(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Which completions ended with a stop token (the others ran out of tokens)."""
        last_ids = ids[np.arange(len(ids)), np.maximum(lengths - 1, 0)]
        return np.isin(last_ids, list(self.env.task.stop_token_ids)) & (lengths > 0)

    def completion_text(self, completion_ids: np.ndarray, stopped: bool) -> str:
        return self.env.task.completion_text(completion_ids, stopped)

    def sample(self, model: nn.Module, seed: int | None, generator: torch.Generator, **kwargs: Any) -> RolloutBatch:
        return sample_episodes(model, self.env, seed, generator, **kwargs)

    def record(self) -> dict[str, Any]:
        return env_record(self.env)


class TextGames:
    """One whole game per episode, from a :class:`~text_envs.TicTacToeTextVectorEnv` with ``context="game"``.

    The policy keeps its KV cache across the game's turns
    (:func:`~text_envs_agents.llm.game_rollout.sample_games`); a checkpoint cannot rebuild this env, so
    ``TextPPO.save`` refuses it (export with ``save_pretrained``). A game's reward is its outcome: no
    shaping pieces.
    """

    shapeable = False
    checkpointable = False

    def __init__(self, env: TicTacToeTextVectorEnv):
        if env.context != "game":
            raise ValueError(
                "TextPPO trains on whole games: make the TicTacToeText env with context='game' "
                f"(got context={env.context!r}, where each turn's prompt replaces the context)"
            )
        self.env = env
        self.vocab_size = int(env.single_action_space.n)
        self.max_episode_tokens = env.envs[0].unwrapped.max_move_tokens * 5  # at most five turns a game

    def check_model(self, model: nn.Module) -> None:
        """Refuse a model whose positions cannot hold the longest game (a bare index error in its embeddings)."""
        positions = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None)
        if positions is not None and positions < self.env.context_length:
            raise ValueError(
                f"a whole game (context='game') takes up to {self.env.context_length} tokens of this env's prompts, "
                f"more than the model's {positions} positions: use a model with a longer window, or context='turn' "
                "with a trainer of single turns (stable-baselines3 PPO)"
            )

    def stopped(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Every game ended: with its last move, or an illegal one."""
        return lengths > 0

    def completion_text(self, completion_ids: np.ndarray, stopped: bool) -> str:
        return self.env.prompt_format.decode_context(completion_ids)

    def sample(self, model: nn.Module, seed: int | None, generator: torch.Generator, **kwargs: Any) -> RolloutBatch:
        return sample_games(model, self.env, seed, generator, **kwargs).batch

    def record(self) -> dict[str, Any]:
        return {"unrecorded": "a TicTacToeText game env"}


def episodes_for(env: TextGenerationVectorEnv | TicTacToeTextVectorEnv) -> TextCompletions | TextGames:
    """The episode source of a training env; anything else raises ``TypeError`` naming what TextPPO takes."""
    if isinstance(env, TextGenerationVectorEnv):
        return TextCompletions(env)
    if isinstance(env, TicTacToeTextVectorEnv):
        return TextGames(env)
    raise TypeError(
        f"TextPPO trains on a TextGenerationVectorEnv or a TicTacToeTextVectorEnv (context='game'), "
        f"got {type(env).__name__}"
    )
