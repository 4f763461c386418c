"""Tic-Tac-Toe on N boards at once, stepped with array operations on the shared rule tables."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from text_envs.actions import check_discrete_actions
from text_envs.agent_protocol import Agent, accepts_action_masks, predict_actions
from text_envs.tictactoe import rules
from text_envs.tictactoe.env import TicTacToeEnv, check_opponent
from text_envs.tictactoe.render import render_rgb

_OBSERVATION_TABLES = np.stack([rules.OBSERVATION_FOR_X, rules.OBSERVATION_FOR_O])


class TicTacToeVectorEnv(VectorEnv):
    """``num_envs`` independent games of :class:`~text_envs.tictactoe.env.TicTacToeEnv`, stepped as arrays.

    ## Description
    Same game, rules, observations, rewards, masks and arguments as the single env, but every
    board is a row of an array and each ``step`` advances all boards with a fixed number of numpy
    operations on the rule tables of :mod:`text_envs.tictactoe.rules` (no Python loop over boards;
    an agent-object opponent is called once per step with the whole batch). Built with
    ``gym.make_vec("text_envs/TicTacToe-v0", num_envs=N, vectorization_mode="vector_entry_point")``.

    ## Action Space
    ``MultiDiscrete([9] * num_envs)``; ``single_action_space`` is ``Discrete(9)``. Actions must be
    integers in ``0..8`` (``ValueError`` otherwise); occupied cells are illegal moves as in the single env.

    ## Observation Space
    ``Box(-1, 1, (num_envs, 9), float32)``: each row as in the single env.

    ## Information
    Gymnasium's vector convention: ``info["action_mask"]`` is ``int8`` of shape ``(num_envs, 9)`` and
    ``info["illegal_move"]`` is ``bool`` of shape ``(num_envs,)``, each with its ``_key`` mask (all True).

    ## Autoreset
    ``autoreset_mode`` is ``AutoresetMode.NEXT_STEP`` (default, Gymnasium's default): the step after a
    board's episode ends resets that board, ignores its action, and returns the reset observation
    with reward 0. ``AutoresetMode.SAME_STEP``: a finished board is reset within the same step; its
    last observation and info are in ``info["final_obs"]`` (object array) and ``info["final_info"]``,
    with ``_final_obs`` / ``_final_info`` marking which boards finished, as ``SyncVectorEnv`` does.
    ``AutoresetMode.DISABLED``: stepping a finished board raises ``RuntimeError``; call ``reset``.

    ## Arguments
    ``num_envs`` and ``autoreset_mode``, then those of :class:`~text_envs.tictactoe.env.TicTacToeEnv`.
    With ``agent_first=None`` each board alternates sides on its own, starting from a seeded draw.
    Random draws come from ``self.np_random`` board by board in ascending order, so with
    ``num_envs=1`` the vector env reproduces the single env exactly under the same seed.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 2, "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int,
        opponent: str | Agent = "random",
        agent_first: bool | None = True,
        opponent_epsilon: float = 0.0,
        raise_on_illegal_move: bool = False,
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
    ):
        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        # The single env validates the shared arguments and documents them; it is not stepped.
        TicTacToeEnv(
            opponent=opponent,
            agent_first=agent_first,
            opponent_epsilon=opponent_epsilon,
            raise_on_illegal_move=raise_on_illegal_move,
            render_mode=render_mode,
        )
        self.num_envs = num_envs
        self.opponent = check_opponent(opponent)
        self.agent_first = agent_first
        self.opponent_epsilon = float(opponent_epsilon)
        self.raise_on_illegal_move = raise_on_illegal_move
        self.render_mode = render_mode
        self.autoreset_mode = AutoresetMode(autoreset_mode)
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode}
        self.single_observation_space = spaces.Box(-1.0, 1.0, shape=(rules.NUM_CELLS,), dtype=np.float32)
        self.single_action_space = spaces.Discrete(rules.NUM_CELLS)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._opponent_takes_masks = not isinstance(opponent, str) and accepts_action_masks(opponent)
        self._states = np.zeros(num_envs, dtype=np.int64)
        self._agent_is_o = np.zeros(num_envs, dtype=np.int64)  # index into _OBSERVATION_TABLES
        self._next_agent_first: np.ndarray | None = None
        self._done = np.ones(num_envs, dtype=bool)
        self._all = np.ones(num_envs, dtype=bool)
        self._has_reset = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if self.agent_first is None and (seed is not None or self._next_agent_first is None):
            self._next_agent_first = self.np_random.random(self.num_envs) < 0.5
        self._reset_boards(np.arange(self.num_envs))
        self._has_reset = True
        return self._observations(), self._info(np.zeros(self.num_envs, dtype=bool))

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        moves = check_discrete_actions(actions, self.num_envs, rules.NUM_CELLS, "cell index")
        if not self._has_reset:
            raise RuntimeError("step() called before reset()")
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        illegal = np.zeros(self.num_envs, dtype=bool)
        if self.autoreset_mode is AutoresetMode.DISABLED and self._done.any():
            raise RuntimeError(f"step() on finished boards {np.flatnonzero(self._done)}; call reset() first")
        finished_before = np.flatnonzero(self._done)
        playing = np.flatnonzero(~self._done)

        states = self._states[playing]
        agent_moves = moves[playing]
        legal = rules.LEGAL_MOVES[states, agent_moves].astype(bool)
        if self.raise_on_illegal_move and not legal.all():
            board = playing[~legal][0]
            raise ValueError(f"illegal move on board {board}: cell {moves[board]} is occupied")
        illegal[playing[~legal]] = True
        rewards[playing[~legal]] = -1.0
        self._done[playing[~legal]] = True

        movers = playing[legal]
        self._states[movers] += rules.MARK_TO_MOVE[self._states[movers]] * rules.POWERS_OF_3[moves[movers]]
        replying = movers[~rules.IS_TERMINAL[self._states[movers]]]
        self._play_opponent(replying)
        ended = movers[rules.IS_TERMINAL[self._states[movers]]]
        self._done[ended] = True
        winners = rules.WINNER[self._states[ended]]
        agent_mark = np.where(self._agent_is_o[ended] == 1, rules.O, rules.X)
        rewards[ended] = np.where(winners == rules.NO_WINNER, 0.0, np.where(winners == agent_mark, 1.0, -1.0))

        terminated = np.zeros(self.num_envs, dtype=bool)
        terminated[playing] = self._done[playing]
        truncated = np.zeros(self.num_envs, dtype=bool)

        if self.autoreset_mode is AutoresetMode.NEXT_STEP:
            self._reset_boards(finished_before)
            return self._observations(), rewards, terminated, truncated, self._info(illegal)

        observations, info = self._observations(), self._info(illegal)
        if self.autoreset_mode is AutoresetMode.SAME_STEP and terminated.any():
            finished = np.flatnonzero(terminated)
            final_obs = np.full(self.num_envs, None, dtype=object)
            for board in finished:
                final_obs[board] = observations[board].copy()
            info["final_obs"], info["_final_obs"] = final_obs, terminated.copy()
            info["final_info"] = {
                "action_mask": info["action_mask"].copy(),
                "_action_mask": terminated.copy(),
                "illegal_move": illegal.copy(),
                "_illegal_move": terminated.copy(),
            }
            info["_final_info"] = terminated.copy()
            self._reset_boards(finished)
            observations = self._observations()
            info["action_mask"] = self.action_masks().astype(np.int8)
            info["illegal_move"] = np.where(terminated, False, illegal)
        return observations, rewards, terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        """Legal moves of every board as ``bool`` of shape ``(num_envs, 9)`` (all False on finished boards)."""
        return rules.LEGAL_MOVES[self._states].astype(bool) & ~self._done[:, None]

    def render(self) -> tuple[Any, ...] | None:
        if self.render_mode == "ansi":
            return tuple(rules.render_text(int(s)) + "\n" for s in self._states)
        if self.render_mode == "rgb_array":
            return tuple(render_rgb(int(s)) for s in self._states)
        return None

    def _reset_boards(self, boards: np.ndarray) -> None:
        if boards.size == 0:
            return
        if self.agent_first is None:
            agent_first = self._next_agent_first[boards]
            self._next_agent_first[boards] = ~agent_first
        else:
            agent_first = np.full(boards.size, self.agent_first)
        self._agent_is_o[boards] = ~agent_first
        self._states[boards] = rules.EMPTY_BOARD
        self._done[boards] = False
        self._play_opponent(boards[~agent_first])

    def _play_opponent(self, boards: np.ndarray) -> None:
        """The opponent moves on ``boards``, all of which must be in play with the opponent to move."""
        if boards.size == 0:
            return
        states = self._states[boards]
        if isinstance(self.opponent, str):
            allowed = rules.LEGAL_MOVES[states]
            if self.opponent == "minimax":
                optimal = rules.OPTIMAL_MOVES[states]
                if self.opponent_epsilon > 0.0:
                    explore = self.np_random.random(boards.size) < self.opponent_epsilon
                    optimal = np.where(explore[:, None], allowed, optimal)
                allowed = optimal
            moves = rules.nth_allowed_moves(allowed, self.np_random.random(boards.size))
        else:
            observations = _OBSERVATION_TABLES[1 - self._agent_is_o[boards], states]
            masks = rules.LEGAL_MOVES[states].astype(bool)
            moves = predict_actions(self.opponent, observations, masks, False, self._opponent_takes_masks).reshape(-1)
            in_range = moves.shape == (boards.size,) and ((moves >= 0) & (moves < rules.NUM_CELLS)).all()
            if not (in_range and rules.LEGAL_MOVES[states, moves].all()):
                raise ValueError(f"opponent {self.opponent!r} chose illegal moves {moves}")
        self._states[boards] = states + rules.MARK_TO_MOVE[states] * rules.POWERS_OF_3[moves]

    def _observations(self) -> np.ndarray:
        return _OBSERVATION_TABLES[self._agent_is_o, self._states]

    def _info(self, illegal: np.ndarray) -> dict[str, Any]:
        return {
            "action_mask": rules.LEGAL_MOVES[self._states] * ~self._done[:, None],
            "_action_mask": self._all.copy(),
            "illegal_move": illegal,
            "_illegal_move": self._all.copy(),
        }
