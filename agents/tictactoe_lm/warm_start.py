"""The supervised warm start: the minimax agent's moves, written through TicTacToeText-v0's own prompts, imitated.

A sampling policy starts RL where its sampled moves are, and a zero-shot LLM's sampled moves are mostly
illegal, so RL first gets a policy that names legal cells: behaviour cloning of the solved game's moves
(what RL for LLM agents commonly starts from, as SFT precedes RLHF). The demonstrations are games of
:class:`~text_envs_agents.MinimaxAgent` through :class:`~text_envs_agents.TextTicTacToeAgent`: it reads
each prompt's board and writes its move's digit as one token, so the data is exactly the contexts the
env shows and the tokens the minimax agent answers with.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from text_envs.tictactoe.text_env import TicTacToeTextVectorEnv
from text_envs_agents.llm.game_rollout import AgentPlayer, play_games
from text_envs_agents.llm.model import check_mixed_precision
from text_envs_agents.llm.rollout import RolloutBatch, completion_outputs
from text_envs_agents.minimax_agent import MinimaxAgent
from text_envs_agents.text_ppo.config import MIXED_PRECISION, MixedPrecision
from text_envs_agents.text_tictactoe_agent import TextTicTacToeAgent


def minimax_demonstrations(
    games: int, seed: int = 0, deterministic: bool = False, distinct: bool = False, **env_kwargs: Any
) -> RolloutBatch:
    """``games`` games of the minimax agent on TicTacToeText-v0.

    Among its optimal moves the agent picks at random (by its ``seed``), or with ``deterministic=True`` the
    lowest cell (:class:`~text_envs_agents.MinimaxAgent`): one answer per position, which a model imitates to
    a low-entropy policy whose sampled moves are close to its greedy ones (the opponent's moves still vary
    the games). ``env_kwargs`` go to :class:`~text_envs.TicTacToeTextEnv` (``tokenizer``, ``prompt_format``,
    ``opponent``, ``context``, ...; ``agent_first`` defaults to alternating). With ``context="game"`` a
    row is a whole game (the agent's moves trained, the rest masked, as TextPPO's rows); with
    ``context="turn"`` a row is one turn: its prompt, then the move's token.

    ``distinct=True`` keeps each different row once (in the order first played), so imitation weighs every
    game (or turn) alike instead of by how often the opponent led to it. The deterministic teacher can play
    only 642 games against any opponent (73 as X, 569 as O), so enough sampled games against an opponent
    that can make every move (random, or minimax with ``opponent_epsilon``) hold every one of them, and
    the distinct rows are then the whole of what it would ever show.
    """
    env = TicTacToeTextVectorEnv(games, **{"agent_first": None, **env_kwargs})
    agent = TextTicTacToeAgent(MinimaxAgent(seed=seed), env.tokenizer)
    seeds = np.random.SeedSequence([seed, games]).generate_state(games).tolist()
    try:
        if env.context == "game":
            batch = play_games(env, AgentPlayer(agent, deterministic), seeds).batch
        else:
            batch = _turn_rows(env, agent, seeds, deterministic)
    finally:
        env.close()
    return _distinct_rows(batch) if distinct else batch


def _distinct_rows(batch: RolloutBatch) -> RolloutBatch:
    """Each different row of ``batch`` once (its prompt and completion tokens), in first-seen order."""
    first_seen: dict[tuple[int, ...], int] = {}
    for row, tokens in enumerate(torch.cat([batch.prompt_ids, batch.completion_ids], dim=1).tolist()):
        first_seen.setdefault(tuple(tokens), row)
    return batch.select(torch.tensor(sorted(first_seen.values())))


def _turn_rows(
    env: TicTacToeTextVectorEnv, agent: TextTicTacToeAgent, seeds: list[int], deterministic: bool
) -> RolloutBatch:
    """Every turn of one game per env as its own row: the turn's context, then the agent's one-token move."""
    observations, _ = env.reset(seed=seeds)
    running = np.ones(env.num_envs, dtype=bool)
    contexts, moves = [], []
    while running.any():
        tokens, _ = agent.predict(observations, deterministic=deterministic)
        for i in np.flatnonzero(running):
            contexts.append(observations["input_ids"][i][observations["attention_mask"][i] == 1])
            moves.append(int(tokens[i]))
        observations, _, terminated, truncated, _ = env.step(tokens)
        running &= ~(terminated | truncated)
    width, pad = max(map(len, contexts)), env.envs[0].unwrapped.pad_token_id
    prompt_ids = torch.full((len(contexts), width), pad, dtype=torch.long)
    prompt_mask = torch.zeros((len(contexts), width), dtype=torch.long)
    for row, context in enumerate(contexts):
        prompt_ids[row, width - len(context) :], prompt_mask[row, width - len(context) :] = torch.as_tensor(context), 1
    decode = env.prompt_format.decode_context
    count = len(moves)
    return RolloutBatch(
        prompt_ids,
        prompt_mask,
        torch.tensor(moves)[:, None],
        torch.ones((count, 1), dtype=torch.long),
        torch.zeros(count),
        [decode(context) for context in contexts],
        [decode([move]) for move in moves],
        [len(context) for context in contexts],
        [1] * count,
        torch.zeros((count, 1)),
    )


def imitate(
    model: nn.Module,
    demonstrations: RolloutBatch,
    epochs: int = 2,
    learning_rate: float = 1e-3,
    minibatch_size: int = 32,
    seed: int = 0,
    on_minibatch: Callable[[int, float], None] | None = None,
    mixed_precision: MixedPrecision = "no",
) -> list[float]:
    """Behaviour cloning: ``epochs`` passes of cross-entropy on the demonstrations' trained tokens (the moves).

    AdamW over ``model``'s trainable parameters (its LoRA adapters, if it has them), shuffled minibatches
    of rows, gradient norm clipped at 1; dropout stays off, as in TextPPO. ``mixed_precision="bf16"`` runs
    the forwards under bf16 autocast over the float32 weights, as
    :attr:`~text_envs_agents.TextPPOConfig.mixed_precision` does (the loss in float32).
    ``on_minibatch(step, loss)`` sees every minibatch's loss (nats per move). Returns each epoch's mean loss.
    """
    if mixed_precision not in MIXED_PRECISION:
        raise ValueError(f"mixed_precision must be one of {MIXED_PRECISION}, got {mixed_precision!r}")
    device = next(model.parameters()).device
    check_mixed_precision(model, mixed_precision, device)
    batch = demonstrations.to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=learning_rate)
    order_rng = torch.Generator().manual_seed(seed)
    model.eval()
    epoch_losses, step = [], 0
    for _ in range(epochs):
        losses = []
        order = torch.randperm(len(batch.prompts), generator=order_rng)
        for start in range(0, len(order), minibatch_size):
            rows = order[start : start + minibatch_size].sort().values
            sub = batch.select(rows)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=mixed_precision == "bf16"):
                logits, _ = completion_outputs(model, sub)
            log_probs = torch.log_softmax(logits.float(), dim=-1).gather(-1, sub.completion_ids.unsqueeze(-1))
            mask = sub.completion_mask.float()
            loss = -(log_probs.squeeze(-1) * mask).sum() / mask.sum()
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            losses.append(loss.item())
            if on_minibatch is not None:
                on_minibatch(step, losses[-1])
            step += 1
        epoch_losses.append(float(np.mean(losses)))
    return epoch_losses
