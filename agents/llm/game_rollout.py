"""Whole games of TicTacToeText-v0 (``context="game"``) played through its vector env, one sequence per game.

A game context only grows: each step adds the agent's token and, at the end of a turn, the opponent's
reply and the new board. :func:`play_games` records every game as one
:class:`~text_envs_agents.llm.rollout.RolloutBatch` row: the first prompt, then everything after it as the
"completion", whose mask marks the agent's tokens only (the env's text is context, never trained on), and
the game's reward as the score. :func:`sample_games` plays with a causal LM that keeps its KV cache across
turns, feeding each step only what the step added; the same rows then train TextPPO and the warm start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from torch import nn

from text_envs.agent_protocol import Agent, predict_actions
from text_envs.lm import output_with_cache, positions_from_mask
from text_envs.tictactoe.evaluation import GameResults
from text_envs.tictactoe.text_env import TicTacToeTextVectorEnv
from text_envs_agents.llm.rollout import RolloutBatch
from text_envs_agents.llm.sampling import next_tokens


@dataclass
class PlayedGames:
    """One game per env: the games as rows of ``batch`` (the score is the game's reward) and which ended illegally."""

    batch: RolloutBatch
    illegal: np.ndarray

    def results(self) -> GameResults:
        return GameResults.from_outcomes(self.batch.scores.cpu().numpy(), self.illegal)


class Player(Protocol):
    """Who chooses the agent's tokens in :func:`play_games`."""

    device: torch.device

    def start(self, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor) -> None:
        """The games' first prompts, left-padded ``(n, width)``."""

    def act(self, observations: dict[str, np.ndarray]) -> tuple[np.ndarray, torch.Tensor | None, torch.Tensor | None]:
        """The next token of every row, and their log-probs and values ``(n,)`` on the device (or None)."""

    def feed(self, ids: torch.Tensor, mask: torch.Tensor) -> None:
        """What the last step added to each context, right-aligned ``(n, width)``; ``mask`` 1 on real tokens."""


def play_games(env: TicTacToeTextVectorEnv, player: Player, seed: int | list[int] | None) -> PlayedGames:
    """One game in each env of ``env`` (``context="game"``, reset with ``seed``), the agent's tokens from ``player``.

    Rows whose game ended keep being stepped (the env restarts them; those games are ignored) until every
    game is over, so the batch stays in lock-step. With ``agent_first=None`` each env alternates sides per
    game, the ignored ones included, so a row's side in the next call's game depends on how many it played.
    """
    if env.envs[0].unwrapped.raise_on_illegal_move:
        raise ValueError("play_games steps finished games on stale tokens: use raise_on_illegal_move=False")
    if env.context != "game" or env.autoreset_mode is not AutoresetMode.NEXT_STEP:
        raise ValueError(
            "play_games needs a TicTacToeText vector env with context='game' and next-step autoreset, got "
            f"context={env.context!r}, autoreset_mode={env.autoreset_mode}"
        )
    device, n = player.device, env.num_envs
    pad = env.envs[0].unwrapped.pad_token_id
    observations, _ = env.reset(seed=seed)
    lengths = observations["attention_mask"].sum(1)
    width = int(lengths.max())
    prompt_ids = torch.as_tensor(observations["input_ids"][:, -width:], device=device)
    prompt_mask = torch.as_tensor(observations["attention_mask"][:, -width:], device=device)
    player.start(prompt_ids, prompt_mask)
    span = env.context_length  # more than a game ever adds after its first prompt
    ids = np.full((n, span), pad, dtype=np.int64)
    trained = np.zeros((n, span), dtype=np.int64)
    used = np.zeros(n, dtype=np.int64)
    logprobs = torch.zeros((n, span), device=device)
    values = None
    scores, illegal = np.zeros(n), np.zeros(n, dtype=bool)
    running = np.ones(n, dtype=bool)
    while running.any():
        tokens, token_logprobs, token_values = player.act(observations)
        live = np.flatnonzero(running)
        ids[live, used[live]], trained[live, used[live]] = tokens[live], 1
        at = (torch.as_tensor(live, device=device), torch.as_tensor(used[live], device=device))
        if token_logprobs is not None:
            logprobs[at] = token_logprobs[at[0]].float()
        if token_values is not None:
            values = torch.zeros((n, span), device=device) if values is None else values
            values[at] = token_values[at[0]].float()
        used[live] += 1
        observations, rewards, terminated, truncated, info = env.step(tokens)
        ended = running & (terminated | truncated)
        scores[ended], illegal[ended] = rewards[ended], info["illegal_move"][ended]
        running &= ~ended
        new_lengths = observations["attention_mask"].sum(1)
        added = np.where(running, new_lengths - lengths - 1, 0)  # the env's tokens after the agent's
        lengths = new_lengths
        if not running.any():
            break
        block = 1 + int(added.max())
        block_ids = np.full((n, block), pad, dtype=np.int64)
        block_mask = np.zeros((n, block), dtype=np.int64)
        for i in np.flatnonzero(running):
            new = observations["input_ids"][i, len(observations["input_ids"][i]) - 1 - added[i] :]
            block_ids[i, block - len(new) :], block_mask[i, block - len(new) :] = new, 1
            ids[i, used[i] : used[i] + added[i]] = new[1:]
        used += added
        player.feed(torch.as_tensor(block_ids, device=device), torch.as_tensor(block_mask, device=device))
    kept = int(used.max())
    completion_mask = torch.as_tensor(trained[:, :kept], device=device)
    decode = env.prompt_format.decode_context
    prompt_rows = zip(prompt_ids.cpu().numpy(), prompt_mask.cpu().numpy(), strict=True)
    return PlayedGames(
        RolloutBatch(
            prompt_ids,
            prompt_mask,
            torch.as_tensor(ids[:, :kept], device=device),
            completion_mask,
            torch.as_tensor(scores, dtype=torch.float32, device=device),
            [decode(row[mask == 1]) for row, mask in prompt_rows],
            [decode(row[:length]) for row, length in zip(ids, used, strict=True)],
            prompt_mask.sum(1).tolist(),
            used.tolist(),
            logprobs[:, :kept] * completion_mask,
            None if values is None else values[:, :kept] * completion_mask,
        ),
        illegal,
    )


class LMPlayer:
    """A causal LM sampling the agent's tokens with one KV cache for the whole game.

    Tokens come from the LM's full next-token distribution at ``temperature`` (no token is masked or
    favoured), or its most likely token with ``greedy``; log-probs are at ``temperature``, and the values
    of ``value_head`` on the final hidden states are recorded when it is given. Only the logits of the
    tokenizer's ``vocab_size`` ids are read (a model may pad its embeddings).
    """

    def __init__(
        self,
        model: nn.Module,
        vocab_size: int,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        value_head: nn.Module | None = None,
        greedy: bool = False,
    ):
        self.model, self.vocab_size, self.generator = model, vocab_size, generator
        self.temperature, self.value_head, self.greedy = temperature, value_head, greedy
        self.device = next(model.parameters()).device

    def start(self, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor) -> None:
        self.mask, self.kv_cache = prompt_mask, None
        self._forward(prompt_ids, positions_from_mask(prompt_mask))

    def act(self, observations: dict[str, np.ndarray]) -> tuple[np.ndarray, torch.Tensor, torch.Tensor | None]:
        tokens, logprobs = next_tokens(self.logits, self.temperature, self.greedy, self.generator)
        values = None if self.value_head is None else self.value_head(self.hidden).squeeze(-1)
        return tokens.cpu().numpy(), logprobs, values

    def feed(self, ids: torch.Tensor, mask: torch.Tensor) -> None:
        self.mask = torch.cat([self.mask, mask], dim=1)
        self._forward(ids, positions_from_mask(self.mask)[:, -ids.shape[1] :])

    def _forward(self, ids: torch.Tensor, positions: torch.Tensor) -> None:
        output, self.kv_cache = output_with_cache(
            self.model, ids, self.kv_cache, attention_mask=self.mask, position_ids=positions, output_hidden_states=True
        )
        self.logits = output.logits[:, -1, : self.vocab_size]
        self.hidden = output.hidden_states[-1][:, -1]


class AgentPlayer:
    """Any agent of TicTacToeText-v0 (its ``predict`` on the env's observations) as a :class:`Player`."""

    def __init__(self, agent: Agent, deterministic: bool = True, device: str | torch.device = "cpu"):
        self.agent, self.deterministic, self.device = agent, deterministic, torch.device(device)

    def start(self, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor) -> None:
        pass  # the agent reads each step's observation

    def act(self, observations: dict[str, np.ndarray]) -> tuple[np.ndarray, None, None]:
        tokens = predict_actions(self.agent, observations, None, self.deterministic, pass_masks=False)
        return np.asarray(tokens, dtype=np.int64).reshape(-1), None, None

    def feed(self, ids: torch.Tensor, mask: torch.Tensor) -> None:
        pass


@torch.no_grad()
def sample_games(
    model: nn.Module,
    env: TicTacToeTextVectorEnv,
    seed: int | list[int] | None,
    generator: torch.Generator | None = None,
    temperature: float = 1.0,
    value_head: nn.Module | None = None,
    greedy: bool = False,
) -> PlayedGames:
    """:func:`play_games` with ``model`` as the agent (an :class:`LMPlayer`)."""
    vocab_size = int(env.single_action_space.n)
    return play_games(env, LMPlayer(model, vocab_size, generator, temperature, value_head, greedy), seed)
