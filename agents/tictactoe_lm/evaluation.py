"""Games of a causal LM on TicTacToeText-v0 against an opponent, its moves sampled at temperature 1 or greedy.

Sampled means from the LM's own full next-token distribution: no token is masked or favoured, in the
policy or here (the env has no action mask on purpose), so an illegal move costs a game as it would in
training. ``greedy`` takes the most likely token instead. Half the games the LM moves first.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from text_envs.lm import accepts_logits_to_keep, load_tokenizer, positions_from_mask
from text_envs.tictactoe.evaluation import GameResults, evaluate_tictactoe_text, games_of_both_sides, side_seeds
from text_envs.tictactoe.text_env import TicTacToeTextVectorEnv
from text_envs_agents.llm.game_rollout import sample_games
from text_envs_agents.llm.sampling import next_tokens


class CausalLMAgent:
    """A causal LM as a TicTacToeText-v0 agent (stable-baselines3's ``predict``): one full forward per token.

    Sampled from a generator seeded with ``seed`` (``deterministic=True``: the most likely token); only
    the tokenizer's ``vocab_size`` logits are read.
    """

    def __init__(self, model: nn.Module, vocab_size: int, seed: int = 0):
        self.model, self.vocab_size = model, vocab_size
        self.device = next(model.parameters()).device
        self.generator = torch.Generator(device=self.device).manual_seed(seed)

    @torch.no_grad()
    def predict(
        self,
        observation: dict[str, np.ndarray],
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, None]:
        ids = torch.as_tensor(np.atleast_2d(observation["input_ids"]), device=self.device)
        mask = torch.as_tensor(np.atleast_2d(observation["attention_mask"]), device=self.device)
        width = int(mask.sum(1).max())  # the env pads to its whole window; only the longest context matters
        ids, mask = ids[:, -width:], mask[:, -width:]
        extra = {"logits_to_keep": 1} if accepts_logits_to_keep(self.model) else {}
        output = self.model(input_ids=ids, attention_mask=mask, position_ids=positions_from_mask(mask), **extra)
        tokens, _ = next_tokens(output.logits[:, -1, : self.vocab_size], greedy=deterministic, generator=self.generator)
        actions = tokens.cpu().numpy().astype(np.int64)
        return (actions[0] if np.ndim(observation["input_ids"]) == 1 else actions), None


def evaluate_lm_tictactoe(
    model: nn.Module,
    opponent: str = "random",
    games: int = 400,
    seed: int = 0,
    greedy: bool = False,
    **env_kwargs: Any,
) -> GameResults:
    """``games`` games of ``model`` on TicTacToeText-v0 against ``opponent``, half as each side.

    ``env_kwargs`` go to the env (``tokenizer``, ``prompt_format``, ``context``, ...). With
    ``context="game"`` the games run in :func:`~text_envs_agents.llm.game_rollout.sample_games` (one KV
    cache per game, as TextPPO samples); with ``"turn"`` in
    :func:`~text_envs.tictactoe.evaluation.evaluate_tictactoe_text` with a :class:`CausalLMAgent`. Either
    way the envs of the two halves are seeded from ``(seed, side)``.
    """
    if env_kwargs.get("context", "turn") != "game":
        agent = CausalLMAgent(model, len(load_tokenizer(env_kwargs.get("tokenizer"))), seed)
        return evaluate_tictactoe_text(agent, opponent, games, seed, deterministic=greedy, **env_kwargs)
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)

    def play(count: int, agent_first: bool) -> tuple[np.ndarray, np.ndarray]:
        env = TicTacToeTextVectorEnv(count, opponent=opponent, agent_first=agent_first, **env_kwargs)
        played = sample_games(model, env, side_seeds(seed, agent_first, count), generator, greedy=greedy)
        env.close()
        return played.batch.scores.cpu().numpy(), played.illegal

    return games_of_both_sides(games, play)
