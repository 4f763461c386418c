"""Evaluating any agent (built-in or a trained stable-baselines3 model) by playing whole episodes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv

from text_envs.agent_protocol import Agent, accepts_action_masks, predict_actions
from text_envs.tictactoe.vector_env import TicTacToeVectorEnv


@dataclass(frozen=True)
class GameResults:
    """Outcome rates over ``games`` games; ``win + draw + loss == 1`` and ``illegal`` counts within ``loss``."""

    games: int
    win: float
    draw: float
    loss: float
    illegal: float
    mean_reward: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_outcomes(cls, rewards: np.ndarray, illegal: np.ndarray) -> GameResults:
        """The rates of games whose final rewards are ``rewards`` and whose ``illegal`` flags are set."""
        return cls(
            games=len(rewards),
            win=float(np.mean(rewards > 0)),
            draw=float(np.mean(rewards == 0)),
            loss=float(np.mean(rewards < 0)),
            illegal=float(np.mean(illegal)),
            mean_reward=float(np.mean(rewards)),
        )


def evaluate_tictactoe(
    agent: Agent,
    opponent: str | Agent = "random",
    games: int = 1000,
    seed: int = 0,
    deterministic: bool = True,
) -> GameResults:
    """Play ``games`` games of ``TicTacToe-v0`` against ``opponent``, half with the agent first.

    All games run at once in :class:`~text_envs.tictactoe.vector_env.TicTacToeVectorEnv` (one batched
    ``agent.predict`` per move), so evaluating 1,000 games costs about nine batched predictions.
    Masks are passed to agents that accept them; an agent without masks may move illegally,
    which counts as a loss and in ``illegal``.
    """
    pass_masks = accepts_action_masks(agent)

    def act(observations: np.ndarray, info: dict[str, Any], playing: np.ndarray) -> np.ndarray:
        # Only boards still in play: a finished board has no legal move to offer the agent.
        actions = np.zeros(len(playing), dtype=np.int64)
        actions[playing] = predict_actions(
            agent, observations[playing], info["action_mask"][playing].astype(bool), deterministic, pass_masks
        ).reshape(-1)
        return actions

    def make_env(count: int, agent_first: bool) -> tuple[TicTacToeVectorEnv, int]:
        env = TicTacToeVectorEnv(
            count, opponent=opponent, agent_first=agent_first, autoreset_mode=AutoresetMode.NEXT_STEP
        )
        return env, seed + int(agent_first)  # one generator for all boards

    return _play_games(games, make_env, act)


def evaluate_tictactoe_text(
    agent: Agent,
    opponent: str | Agent = "random",
    games: int = 200,
    seed: int = 0,
    deterministic: bool = True,
    **env_kwargs: Any,
) -> GameResults:
    """Play ``games`` games of ``TicTacToeText-v0`` against ``opponent``, half with the agent first.

    ``agent`` acts on the env's observations (token contexts, or text with
    ``observation_mode="text"`` in ``env_kwargs``) one token at a time: an LLM policy, or a numeric
    agent behind :class:`agents.TextTicTacToeAgent`. The games run in a ``SyncVectorEnv``, one
    batched ``agent.predict`` per token. A turn without a legal move counts as a loss and in
    ``illegal``, as in :func:`evaluate_tictactoe`, whose results these are comparable with.
    ``env_kwargs`` go to :class:`~text_envs.tictactoe.text_env.TicTacToeTextEnv` (``tokenizer``,
    ``max_move_tokens``, ...).
    """

    def act(observations: Any, info: dict[str, Any], playing: np.ndarray) -> np.ndarray:
        # Every row, finished or not (a batch of a fixed size keeps an LLM's KV cache in step); the
        # env ignores the actions of finished games when it restarts them.
        return predict_actions(agent, observations, None, deterministic, pass_masks=False).reshape(-1)

    def make_env(count: int, agent_first: bool) -> tuple[SyncVectorEnv, list[int]]:
        from text_envs.tictactoe.text_env import TicTacToeTextEnv  # loads a tokenizer: only for this evaluation

        make = functools.partial(TicTacToeTextEnv, opponent=opponent, agent_first=agent_first, **env_kwargs)
        env = SyncVectorEnv([make] * count, autoreset_mode=AutoresetMode.NEXT_STEP)
        return env, side_seeds(seed, agent_first, count)

    return _play_games(games, make_env, act)


def games_of_both_sides(games: int, play: Callable[[int, bool], tuple[np.ndarray, np.ndarray]]) -> GameResults:
    """``games // 2`` games with the agent first and the rest second, each half played by ``play(count,
    agent_first) -> (final rewards, illegal flags)``, combined."""
    if games < 2:
        raise ValueError(f"games must be at least 2 (half as each side), got {games}")
    first, second = play(games // 2, True), play(games - games // 2, False)
    return GameResults.from_outcomes(np.concatenate([first[0], second[0]]), np.concatenate([first[1], second[1]]))


def side_seeds(seed: int, agent_first: bool, count: int) -> list[int]:
    """A reset seed per env from ``(seed, side)``.

    An int seed would give env i seed + i, so the games of seeds s and s + 1 would be the same games
    shifted by one.
    """
    return np.random.SeedSequence([seed, int(agent_first)]).generate_state(count).tolist()


def _play_games(
    games: int,
    make_env: Callable[[int, bool], tuple[VectorEnv, int | list[int]]],
    act: Callable[[Any, dict[str, Any], np.ndarray], np.ndarray],
) -> GameResults:
    """One game in each env of ``make_env(count, agent_first)`` (an env, its reset seed); half the agent first."""

    def play(count: int, agent_first: bool) -> tuple[np.ndarray, np.ndarray]:
        env, reset_seed = make_env(count, agent_first)
        observations, info = env.reset(seed=reset_seed)
        final_reward = np.zeros(count)
        final_illegal = np.zeros(count, dtype=bool)
        playing = np.ones(count, dtype=bool)
        while playing.any():
            observations, reward, terminated, truncated, info = env.step(act(observations, info, playing))
            ended = playing & (terminated | truncated)
            final_reward[ended] = reward[ended]
            final_illegal[ended] = info["illegal_move"][ended]
            playing &= ~ended
        env.close()
        return final_reward, final_illegal

    return games_of_both_sides(games, play)
