"""Tic-Tac-Toe against a built-in opponent: the classic RL baseline of this package."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from text_envs.actions import check_discrete_action
from text_envs.agent_protocol import Agent, accepts_action_masks, predict_actions
from text_envs.tictactoe import rules
from text_envs.tictactoe.render import render_rgb

BUILT_IN_OPPONENTS = ("random", "minimax")


def check_opponent(opponent: str | Agent) -> str | Agent:
    """Return ``opponent`` if it names a built-in opponent or has a ``predict`` method, else raise."""
    if isinstance(opponent, str):
        if opponent not in BUILT_IN_OPPONENTS:
            raise ValueError(
                f"opponent must be one of {BUILT_IN_OPPONENTS} or an agent with predict(), got {opponent!r}"
            )
    elif not callable(getattr(opponent, "predict", None)):
        raise TypeError(f"opponent {opponent!r} has no predict(observation, ...) method")
    return opponent


class TicTacToeEnv(gym.Env[np.ndarray, np.int64]):
    """Tic-Tac-Toe for one agent against a built-in opponent.

    ## Description
    The agent and the opponent take turns marking cells of a 3×3 board; three in a row wins. One
    ``step`` is the agent's move followed, unless the game ended, by the opponent's reply, so every
    observation is a position where the agent is to move.

    ## Action Space
    ``Discrete(9)``: the cell to mark, row-major (``0`` top-left, ``2`` top-right, ``8`` bottom-right).
    Marking an occupied cell is an *illegal move* (see Rewards); an action outside ``0..8`` or a
    non-integer raises ``ValueError``.

    ## Observation Space
    ``Box(-1, 1, (9,), float32)``, the board row-major from the agent's perspective: ``+1`` the
    agent's own mark, ``-1`` the opponent's, ``0`` empty. The agent never needs to know whether it
    plays X or O: it is X exactly when both players have the same number of marks.

    ## Action Masks
    ``info["action_mask"]`` is a fresh ``int8`` array of shape ``(9,)`` on every ``reset`` and
    ``step``: 1 for the empty cells, and all zeros at a terminal step (no move is legal when the game
    is over). :meth:`action_masks` returns the same mask as a ``bool`` array, which is what
    sb3-contrib's ``MaskablePPO`` calls.

    ## Starting State
    An empty board when the agent moves first; otherwise the board after the opponent's first move.

    ## Rewards
    At the end of the game only, as a Python ``float``: ``+1.0`` win, ``0.0`` draw, ``-1.0`` loss.
    An illegal move ends the episode with ``-1.0`` and ``info["illegal_move"] = True`` (env checkers
    send unmasked actions, so by default it does not raise; ``raise_on_illegal_move=True`` makes it
    raise ``ValueError`` instead). Intermediate steps give ``0.0``.

    ## Episode End
    Terminated when either side completes a line, the board is full, or the agent moves illegally.
    Never truncated (a game lasts at most 5 agent moves). Calling ``step`` after the end raises
    ``RuntimeError``.

    ## Information
    ``action_mask`` (above) and ``illegal_move`` (``bool``) on every reset and step.

    ## Arguments
    - ``opponent``: ``"random"`` (uniform over legal moves), ``"minimax"`` (perfect play, uniform
      among the optimal moves) or any agent with stable-baselines3's ``predict`` (see
      :class:`text_envs.agent_protocol.Agent`); an agent is called with the board from its own
      perspective, ``deterministic=False``, and the mask when it accepts ``action_masks``.
    - ``agent_first``: ``True`` the agent plays X and moves first, ``False`` it plays O, ``None``
      alternate: the side of the first game after a seeded ``reset`` is drawn from the env's
      ``np_random`` and every later ``reset`` switches sides.
    - ``opponent_epsilon``: probability that a built-in ``"minimax"`` opponent plays a uniformly
      random legal move instead (a softer opponent for curricula). Ignored for other opponents.
    - ``raise_on_illegal_move``: raise instead of ending the episode on an occupied cell.
    - ``render_mode``: ``"ansi"`` (text board) or ``"rgb_array"`` (``uint8`` 192×192×3).

    Built-in opponents draw one uniform number from ``self.np_random`` per move (preceded by one
    for the epsilon choice when ``opponent_epsilon > 0``), the same draws the vector env makes for
    one board, so the two agree move by move under the same seed.

    ## Version History
    - v0: initial version.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 2}

    def __init__(
        self,
        opponent: str | Agent = "random",
        agent_first: bool | None = True,
        opponent_epsilon: float = 0.0,
        raise_on_illegal_move: bool = False,
        render_mode: str | None = None,
    ):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        if not 0.0 <= opponent_epsilon <= 1.0:
            raise ValueError(f"opponent_epsilon must lie in [0, 1], got {opponent_epsilon}")
        if agent_first not in (True, False, None):
            raise ValueError(f"agent_first must be True, False or None, got {agent_first!r}")
        self.opponent = check_opponent(opponent)
        self.agent_first = agent_first
        self.opponent_epsilon = float(opponent_epsilon)
        self.raise_on_illegal_move = raise_on_illegal_move
        self.render_mode = render_mode
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(rules.NUM_CELLS,), dtype=np.float32)
        self.action_space = spaces.Discrete(rules.NUM_CELLS)
        self._opponent_takes_masks = not isinstance(opponent, str) and accepts_action_masks(opponent)
        self._state = rules.EMPTY_BOARD
        self._agent_is_x = True
        self._next_agent_first: bool | None = None
        self._done = True

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if self.agent_first is None:
            if seed is not None or self._next_agent_first is None:
                self._next_agent_first = bool(self.np_random.random() < 0.5)
            self._agent_is_x = self._next_agent_first
            self._next_agent_first = not self._next_agent_first
        else:
            self._agent_is_x = self.agent_first
        self._state = rules.EMPTY_BOARD
        self._done = False
        if not self._agent_is_x:
            self._state = rules.play(self._state, self._opponent_move())
        return self._observation(), self._info(illegal_move=False)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._done:
            raise RuntimeError("step() called before reset() or after the episode ended; call reset() first")
        move = check_discrete_action(action, rules.NUM_CELLS, "cell index")
        if not rules.LEGAL_MOVES[self._state, move]:
            if self.raise_on_illegal_move:
                raise ValueError(f"illegal move: cell {move} is occupied\n{rules.render_text(self._state)}")
            self._done = True
            return self._observation(), -1.0, True, False, self._info(illegal_move=True)
        self._state = rules.play(self._state, move)
        if not rules.IS_TERMINAL[self._state]:
            self._state = rules.play(self._state, self._opponent_move())
        reward = 0.0
        if rules.IS_TERMINAL[self._state]:
            self._done = True
            winner = rules.WINNER[self._state]
            if winner != rules.NO_WINNER:
                reward = 1.0 if (winner == rules.X) == self._agent_is_x else -1.0
        return self._observation(), reward, self._done, False, self._info(illegal_move=False)

    def action_masks(self) -> np.ndarray:
        """The legal moves as a ``bool`` array of shape ``(9,)`` (all False once the game is over)."""
        return self._legal_moves().astype(bool)

    def render(self) -> str | np.ndarray | None:
        if self.render_mode == "ansi":
            mark = "X" if self._agent_is_x else "O"
            return f"{rules.render_text(self._state)}\nagent plays {mark}\n"
        if self.render_mode == "rgb_array":
            return render_rgb(self._state)
        return None

    def _observation(self) -> np.ndarray:
        table = rules.OBSERVATION_FOR_X if self._agent_is_x else rules.OBSERVATION_FOR_O
        return table[self._state].copy()

    def _info(self, illegal_move: bool) -> dict[str, Any]:
        return {"action_mask": self._legal_moves(), "illegal_move": illegal_move}

    def _legal_moves(self) -> np.ndarray:
        if self._done:
            return np.zeros(rules.NUM_CELLS, dtype=np.int8)
        return rules.LEGAL_MOVES[self._state].copy()

    def _opponent_move(self) -> int:
        state = self._state
        if isinstance(self.opponent, str):
            moves = rules.LEGAL_MOVE_LISTS[state]
            if self.opponent == "minimax":
                explore = self.opponent_epsilon > 0.0 and self.np_random.random() < self.opponent_epsilon
                if not explore:
                    moves = rules.OPTIMAL_MOVE_LISTS[state]
            return moves[int(self.np_random.random() * len(moves))]
        table = rules.OBSERVATION_FOR_O if self._agent_is_x else rules.OBSERVATION_FOR_X
        actions = predict_actions(
            self.opponent, table[state].copy(), rules.LEGAL_MOVES[state].astype(bool), False, self._opponent_takes_masks
        )
        move = int(actions.reshape(-1)[0])
        if not (0 <= move < rules.NUM_CELLS and rules.LEGAL_MOVES[state, move]):
            raise ValueError(f"opponent {self.opponent!r} chose illegal move {move} on\n{rules.render_text(state)}")
        return move
