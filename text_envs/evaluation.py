"""Evaluating any agent (built-in or a trained stable-baselines3 model) by playing whole episodes."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from gymnasium.vector import AutoresetMode

from text_envs.agent_protocol import Agent, accepts_action_masks, predict_actions
from text_envs.tictactoe_vector import TicTacToeVectorEnv


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


def evaluate_tictactoe(
    agent: Agent,
    opponent: str | Agent = "random",
    games: int = 1000,
    seed: int = 0,
    deterministic: bool = True,
) -> GameResults:
    """Play ``games`` games of ``TicTacToe-v0`` against ``opponent``, half with the agent first.

    All games run at once in :class:`~text_envs.tictactoe_vector.TicTacToeVectorEnv` (one batched
    ``agent.predict`` per move), so evaluating 1,000 games costs about nine batched predictions.
    Masks are passed to agents that accept them; an agent without masks may move illegally,
    which counts as a loss and in ``illegal``.
    """
    if games < 2:
        raise ValueError(f"games must be at least 2 (half as each side), got {games}")
    pass_masks = accepts_action_masks(agent)
    rewards, illegal = [], []
    for agent_first, count in ((True, games // 2), (False, games - games // 2)):
        env = TicTacToeVectorEnv(
            count, opponent=opponent, agent_first=agent_first, autoreset_mode=AutoresetMode.NEXT_STEP
        )
        observations, info = env.reset(seed=seed + int(agent_first))
        final_reward = np.zeros(count)
        final_illegal = np.zeros(count, dtype=bool)
        playing = np.ones(count, dtype=bool)
        while playing.any():
            actions = np.zeros(count, dtype=np.int64)
            actions[playing] = predict_actions(
                agent, observations[playing], info["action_mask"][playing].astype(bool), deterministic, pass_masks
            ).reshape(-1)
            observations, reward, terminated, truncated, info = env.step(actions)
            ended = playing & (terminated | truncated)
            final_reward[ended] = reward[ended]
            final_illegal[ended] = info["illegal_move"][ended]
            playing &= ~ended
        rewards.append(final_reward)
        illegal.append(final_illegal)
    all_rewards, all_illegal = np.concatenate(rewards), np.concatenate(illegal)
    return GameResults(
        games=games,
        win=float(np.mean(all_rewards > 0)),
        draw=float(np.mean(all_rewards == 0)),
        loss=float(np.mean(all_rewards < 0)),
        illegal=float(np.mean(all_illegal)),
        mean_reward=float(np.mean(all_rewards)),
    )
