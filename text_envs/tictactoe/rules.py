"""Tic-Tac-Toe rules as lookup tables over every board, shared by the env, the vector env and the agents.

A board is a *state index* ``s = sum(cell[i] * 3**i)`` over the nine cells in row-major order
(cell ``i`` is row ``i // 3``, column ``i % 3``), with cell values ``0`` empty, ``1`` X, ``2`` O.
X always moves first, so the player to move follows from the counts of marks.

Every rule is a table indexed by the state (and the move), computed once at import from the eight
win lines. The single env looks rows up in pure Python and the vector env indexes the same tables
with arrays, so both follow the same rules by construction, and neither loops over win lines per move.
"""

from __future__ import annotations

import numpy as np

EMPTY, X, O = 0, 1, 2
NUM_CELLS = 9
NUM_STATES = 3**NUM_CELLS
EMPTY_BOARD = 0

WIN_LINES = np.array(
    [[0, 1, 2], [3, 4, 5], [6, 7, 8], [0, 3, 6], [1, 4, 7], [2, 5, 8], [0, 4, 8], [2, 4, 6]],
    dtype=np.int64,
)
POWERS_OF_3 = 3 ** np.arange(NUM_CELLS, dtype=np.int64)

# Outcome codes of WINNER: no winner yet (or a draw), X has a line, O has a line.
NO_WINNER = 0

# -128 marks an illegal move in MOVE_VALUES; real values lie in [-10, 10].
ILLEGAL_VALUE = -128


def _cells() -> np.ndarray:
    states = np.arange(NUM_STATES, dtype=np.int64)
    return ((states[:, None] // POWERS_OF_3[None, :]) % 3).astype(np.int8)


CELLS: np.ndarray = _cells()
"""``CELLS[s]`` is the board of state ``s`` as nine cell values (0 empty, 1 X, 2 O)."""

_x_count = (CELLS == X).sum(axis=1)
_o_count = (CELLS == O).sum(axis=1)
MARK_TO_MOVE: np.ndarray = np.where(_x_count == _o_count, X, O).astype(np.int8)
"""``MARK_TO_MOVE[s]`` is X when the counts are equal, else O."""

_lines = CELLS[:, WIN_LINES]  # (states, 8 lines, 3 cells)
_x_wins = (_lines == X).all(axis=2).any(axis=1)
_o_wins = (_lines == O).all(axis=2).any(axis=1)
WINNER: np.ndarray = np.where(_x_wins, X, np.where(_o_wins, O, NO_WINNER)).astype(np.int8)
"""``WINNER[s]`` is the mark holding a complete line (X if both do, which no legal game reaches)."""

IS_TERMINAL: np.ndarray = (WINNER != NO_WINNER) | (CELLS != EMPTY).all(axis=1)
"""``IS_TERMINAL[s]``: someone has a line or the board is full."""

IS_REACHABLE: np.ndarray = ((_x_count == _o_count) | (_x_count == _o_count + 1)) & ~(_x_wins & _o_wins)
"""States with consistent mark counts and at most one winner (a superset of those legal play reaches)."""

LEGAL_MOVES: np.ndarray = ((CELLS == EMPTY) & ~IS_TERMINAL[:, None]).astype(np.int8)
"""``LEGAL_MOVES[s]`` is the int8 mask of empty cells, all zeros once the game is over."""

OBSERVATION_FOR_X: np.ndarray = np.select([CELLS == X, CELLS == O], [1.0, -1.0], 0.0).astype(np.float32)
"""The board seen by X: +1 own mark, -1 opponent's mark, 0 empty."""

OBSERVATION_FOR_O: np.ndarray = np.select([CELLS == O, CELLS == X], [1.0, -1.0], 0.0).astype(np.float32)
"""The board seen by O: +1 own mark, -1 opponent's mark, 0 empty."""


def play(state: int, move: int) -> int:
    """The state after the player to move marks cell ``move`` (the caller checks legality)."""
    return state + int(MARK_TO_MOVE[state]) * 3**move


def state_from_observation(observation: np.ndarray) -> np.ndarray:
    """State indices for observations in the player-to-move's perspective (+1 own, -1 opponent).

    Works on one observation ``(9,)`` or a batch ``(n, 9)``. The player to move owns X when both
    players have the same number of marks, otherwise O.
    """
    obs = np.asarray(observation)
    own = obs > 0.5
    other = obs < -0.5
    to_move_is_x = own.sum(axis=-1) == other.sum(axis=-1)
    x_cells = np.where(to_move_is_x[..., None], own, other)
    o_cells = np.where(to_move_is_x[..., None], other, own)
    return (x_cells * X + o_cells * O).astype(np.int64) @ POWERS_OF_3


def _minimax_move_values() -> np.ndarray:
    """Negamax value of every move for the player to move, preferring quick wins and slow losses.

    A finished game is worth ``-(1 + empty cells)`` to the player who would move next (they lost,
    earlier is worse) or 0 for a draw; a move is worth the negated value of the state it leads to.
    Solved backwards from full boards, one number of marks at a time, without recursion.
    """
    empties = (CELLS == EMPTY).sum(axis=1)
    state_value = np.where(WINNER != NO_WINNER, -(1 + empties), 0).astype(np.int64)
    move_values = np.full((NUM_STATES, NUM_CELLS), ILLEGAL_VALUE, dtype=np.int64)
    states = np.arange(NUM_STATES, dtype=np.int64)
    for marks in range(NUM_CELLS - 1, -1, -1):
        layer = states[(NUM_CELLS - empties == marks) & IS_REACHABLE & ~IS_TERMINAL]
        children = layer[:, None] + MARK_TO_MOVE[layer, None].astype(np.int64) * POWERS_OF_3[None, :]
        legal = LEGAL_MOVES[layer].astype(bool)
        values = np.where(legal, -state_value[np.where(legal, children, 0)], ILLEGAL_VALUE)
        move_values[layer] = values
        state_value[layer] = values.max(axis=1)
    return move_values.astype(np.int8)


MOVE_VALUES: np.ndarray = _minimax_move_values()
"""``MOVE_VALUES[s, a]``: minimax value of move ``a`` for the player to move (ILLEGAL_VALUE if illegal).

Positive: a forced win (larger is sooner); 0: a draw with best play; negative: a forced loss.
"""

OPTIMAL_MOVES: np.ndarray = ((MOVE_VALUES == MOVE_VALUES.max(axis=1, keepdims=True)) & (LEGAL_MOVES == 1)).astype(
    np.int8
)
"""``OPTIMAL_MOVES[s]``: int8 mask of the moves with the best minimax value (all zeros when terminal)."""

GAME_VALUE: int = int(MOVE_VALUES[EMPTY_BOARD].max())
"""Value of the empty board for X under perfect play (0: the game is a draw)."""


def render_text(state: int) -> str:
    """The board as three lines of ``X``, ``O`` and ``.``."""
    symbols = ".XO"
    cells = CELLS[state]
    return "\n".join("".join(symbols[c] for c in cells[row * 3 : row * 3 + 3]) for row in range(3))


LEGAL_MOVE_LISTS: list[tuple[int, ...]] = [tuple(np.flatnonzero(row).tolist()) for row in LEGAL_MOVES]
"""``LEGAL_MOVE_LISTS[s]``: the legal cells of state ``s`` in ascending order, for scalar code."""

OPTIMAL_MOVE_LISTS: list[tuple[int, ...]] = [tuple(np.flatnonzero(row).tolist()) for row in OPTIMAL_MOVES]
"""``OPTIMAL_MOVE_LISTS[s]``: the minimax-optimal cells of state ``s`` in ascending order."""


def nth_allowed_moves(allowed: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """For each row of an ``(n, 9)`` mask, the ``floor(u * k)``-th allowed cell (k allowed cells).

    The vectorized twin of ``moves[int(u * len(moves))]`` on a move list, so that one uniform
    draw per board picks the same move in the single env and in the vector env.
    """
    counts = allowed.sum(axis=1)
    ranks = (uniforms * counts).astype(np.int64)
    return (np.cumsum(allowed, axis=1) > ranks[:, None]).argmax(axis=1)
