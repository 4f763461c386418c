"""Tic-Tac-Toe played through a context window: the board is a text prompt, the LLM's tokens are the actions."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from transformers import PreTrainedTokenizerBase

from text_envs.actions import check_discrete_action
from text_envs.agent_protocol import Agent
from text_envs.generation.prompt_format import PromptFormat, encode_continuations
from text_envs.generation.task import OBSERVATION_MODES
from text_envs.generation.text_space import UnicodeText
from text_envs.lm import load_tokenizer
from text_envs.text_render import render_text_rgb
from text_envs.tictactoe import rules
from text_envs.tictactoe.env import TicTacToeEnv

MOVE_DIGITS = "123456789"
"""The characters that name a move: digit ``d`` is cell ``d - 1`` (row-major, ``1`` top-left)."""

_MARK_NAMES = {rules.X: "X", rules.O: "O"}
_SYMBOLS = ".XO"  # indexed by rules.EMPTY, rules.X, rules.O, as rules.render_text draws them


CONTEXTS = ("turn", "game")
"""What a context holds: the current turn's prompt only, or the whole game so far."""


def board_text(state: int) -> str:
    """The part of every prompt that shows ``state``: the board, the legal moves, then ``your move:``."""
    board = "\n".join(" ".join(row) for row in rules.render_text(state).split("\n"))
    legal = " ".join(str(cell + 1) for cell in rules.LEGAL_MOVE_LISTS[state])
    return f"board:\n{board}\nlegal moves: {legal}\nyour move:"


def prompt_text(state: int) -> str:
    """The prompt for the player to move in ``state``: its mark and the cell numbering, then :func:`board_text`."""
    return (
        f"tic-tac-toe. you play {_MARK_NAMES[int(rules.MARK_TO_MOVE[state])]}. "
        f"cells are numbered 1 to 9, row by row from the top left.\n{board_text(state)}"
    )


def opponent_move_text(cell: int, format_name: str) -> str:
    """What a game context says of the opponent's reply before the new board (plain: on a new line)."""
    return f"{'' if format_name == 'chat' else chr(10)}opponent played {cell + 1}.\n"


def state_from_prompt(text: str) -> int:
    """The board state a :func:`prompt_text` prompt shows: the inverse of its board part.

    Reads the last ``board:`` block of ``text`` (a context may hold tokens after the prompt), so an
    agent that sees only the text can recover the numeric position. Raises ``ValueError`` when
    ``text`` holds no well-formed board.
    """
    start = text.rfind("board:\n")
    rows = text[start + len("board:\n") :].split("\n")[:3] if start >= 0 else []
    symbols = [row.split(" ") for row in rows]
    if len(symbols) != 3 or any(len(row) != 3 or not set(row) <= set(_SYMBOLS) for row in symbols):
        raise ValueError(f"no tic-tac-toe board (three rows of 'X', 'O' and '.') in {text!r}")
    marks = np.array([_SYMBOLS.index(symbol) for row in symbols for symbol in row], dtype=np.int64)
    return int(marks @ rules.POWERS_OF_3)


def parse_move(text: str) -> tuple[int | None, bool]:
    """Read a move from the text generated so far this turn: ``(cell or None, turn ended)``.

    The first digit ``1``–``9`` names the move (cell ``digit - 1``); other characters, ``0`` included,
    are skipped. A newline before any such digit ends the turn without a move.
    """
    for char in text:
        if char in MOVE_DIGITS:
            return MOVE_DIGITS.index(char), True
        if char == "\n":
            return None, True
    return None, False


PROMPT_STATES: np.ndarray = np.flatnonzero(rules.IS_REACHABLE & ~rules.IS_TERMINAL)
"""Every state a prompt can show: consistent boards where the game is still on."""


class PromptTable:
    """Every token id a context can hold besides the agent's: each position's first prompt, and a game's follow-ups.

    ``prompts[state]``: the first turn's prompt (:func:`prompt_text` in the format). A game context's
    later turns add :meth:`continuation` after the agent's tokens: the format's closing of the agent's
    turn and opening of a new prompt (:meth:`PromptFormat.follow_up_wrapping`), the opponent's reply
    (:func:`opponent_move_text`) and the new position's :func:`board_text`, tokenized piece by piece as
    text inside a context (:func:`~text_envs.generation.prompt_format.encode_continuations`), so that
    the longest context is known exactly without rendering every game.
    """

    def __init__(self, prompt_format: PromptFormat):
        self.prompt_format = prompt_format
        encoded = prompt_format.encode([prompt_text(int(s)) for s in PROMPT_STATES])
        self.prompts = {int(s): np.asarray(ids, dtype=np.int64) for s, ids in zip(PROMPT_STATES, encoded, strict=True)}
        before, after = prompt_format.follow_up_wrapping()
        self._before, self._after = np.asarray(before, dtype=np.int64), np.asarray(after, dtype=np.int64)
        moves = [opponent_move_text(cell, prompt_format.name) for cell in range(rules.NUM_CELLS)]
        move_ids = encode_continuations(prompt_format.tokenizer, moves)
        self._moves = [np.asarray(ids, dtype=np.int64) for ids in move_ids]
        boards = encode_continuations(prompt_format.tokenizer, [board_text(int(s)) for s in PROMPT_STATES])
        self._boards = {int(s): np.asarray(ids, dtype=np.int64) for s, ids in zip(PROMPT_STATES, boards, strict=True)}
        self.longest_prompt = max(len(ids) for ids in self.prompts.values())
        self.longest_continuation = (
            len(self._before) + max(map(len, self._moves)) + max(map(len, self._boards.values())) + len(self._after)
        )

    def continuation(self, opponent_cell: int, state: int) -> np.ndarray:
        """The ids a game context gets after the agent's move when the opponent replied ``opponent_cell``."""
        return np.concatenate([self._before, self._moves[opponent_cell], self._boards[state], self._after])


@functools.lru_cache(maxsize=4)
def _shared_prompt_table(
    tokenizer: str | PreTrainedTokenizerBase | None, prompt_format: str, system_prompt: str | None
) -> PromptTable:
    # Tokenizing all 4520 prompts (and rendering their chat template) is noticeable; envs made from the
    # same tokenizer (by name, or the same object) and format (a vector env's copies, repeated gym.make)
    # share one table.
    return PromptTable(PromptFormat(load_tokenizer(tokenizer), prompt_format, system_prompt))


class TicTacToeTextEnv(gym.Env):
    """Tic-Tac-Toe against a built-in opponent, played by a language model one token at a time.

    ## Description
    The bridge between :class:`text_envs.tictactoe.env.TicTacToeEnv` and text generation: the state is
    a context window holding a prompt that shows the board and the legal moves, and the agent (an
    LLM) emits tokens until they name a move. The game itself is a ``TicTacToeEnv`` held inside and
    stepped with the parsed cell, so the rules, the opponent's replies (and their random draws) and
    the rewards are exactly the numeric env's, and results of both envs sit side by side.

    Each turn's prompt (cells numbered ``1``–``9`` row-major, ``1`` top-left, ``9`` bottom-right)::

        tic-tac-toe. you play X. cells are numbered 1 to 9, row by row from the top left.
        board:
        . . .
        . O .
        . . .
        legal moves: 1 2 3 4 6 7 8 9
        your move:

    (``X``/``O`` marks, ``.`` empty; the legal moves in ascending order.) The agent's tokens follow
    the prompt, so ``" 5"`` is a natural answer. With ``prompt_format="chat"`` each turn's prompt is
    wrapped in the tokenizer's chat template the way ``TextGeneration-v0`` wraps its prompts (one user
    message after an optional system message, then the generation prompt; see
    :mod:`text_envs.generation.prompt_format`), so an instruction-tuned model answers as the assistant.

    **Move parsing.** After every token the text generated this turn (decoded as a whole, special
    tokens skipped) is read from its start: the first digit ``1``–``9`` is the move (cell
    ``digit - 1``; other characters, ``0`` included, are skipped). Only the completion is read, never
    the prompt or the template around it. The turn ends without a move when a newline comes before
    any such digit, when the token is EOS or the chat template's end-of-turn token (``"chat"``), or
    when ``max_move_tokens`` tokens have been emitted without a digit. A turn without a move, or a
    move to an occupied cell, is an *illegal move*. After a legal move the opponent replies, and then:

    - ``context="turn"`` (default): the next turn's prompt replaces the whole context, so each turn
      is a one-move prompt of its own;
    - ``context="game"``: the whole game stays in the context. After the agent's tokens come the
      opponent's reply and the new board, and the context only ever grows (each step's observation
      is the previous one plus the action, plus those follow-up tokens at the end of a turn), so a
      sampler can keep its KV cache across turns. Plain format, the follow-up of a turn is::

          \nopponent played 5.
          board:
          X . .
          . O .
          . . .
          legal moves: 2 3 4 6 7 8 9
          your move:

      (the first prompt's header is not repeated). Chat format: the template's end of the assistant's
      turn, then a user message ``"opponent played 5.\nboard: ..."`` and the generation prompt, as a
      multi-turn conversation renders. The agent's own tokens are kept as it emitted them.

    ## Action Space
    ``Discrete(vocab_size)`` with ``vocab_size = len(tokenizer)``: the id of the next token.
    Anything else (out of range, not an integer) raises ``ValueError``.

    ## Observation Space
    ``observation_mode="tokens"`` (default): ``Dict(input_ids, attention_mask)``, two ``int64`` Boxes
    of length ``context_length``, the layout of ``TextGeneration-v0``: the current prompt followed by
    the tokens emitted this turn, **left-padded** (pad id: the tokenizer's pad token, else EOS, else
    0) so the newest token is last and the mask marks real tokens with 1. ``context_length`` (an
    attribute) is the longest context a game can reach, so nothing is ever truncated (templated
    prompts included): the longest prompt plus ``max_move_tokens`` with ``context="turn"``; with
    ``context="game"`` the longest prompt, four times the longest follow-up, and five turns of
    ``max_move_tokens``. ``observation_mode="text"``: the same context decoded
    as one string, in a :class:`~text_envs.generation.text_space.UnicodeText` (Gymnasium's ``Text`` over
    every Unicode character, so the control characters and emoji that tokens spell are members, kept as
    they are) (special tokens skipped with ``"plain"``, kept with ``"chat"``:
    the rendered template followed by this turn's tokens). At the end of the game the observation is
    the context of the last turn, the tokens that ended it included.

    ## Starting State
    The prompt for an empty board when the agent moves first; otherwise for the board after the
    opponent's first move.

    ## Rewards
    ``0.0`` until the game ends, then as a Python ``float`` the numeric env's reward: ``+1.0`` win,
    ``0.0`` draw, ``-1.0`` loss, and ``-1.0`` for an illegal move (per game, not per token).

    ## Episode End
    Terminated when the game ends (a line, a full board) or the agent makes an illegal move. Never
    truncated: a game lasts at most 5 turns, so at most ``5 * max_move_tokens`` steps. ``step``
    after the end (or before ``reset``) raises ``RuntimeError``.

    ## Information
    On every ``reset`` and ``step``: ``board`` (the numeric env's observation, ``float32`` ``(9,)``,
    +1 own mark, -1 opponent's, 0 empty, after the opponent's reply), ``legal_moves`` (``int8``
    ``(9,)``, 1 for an empty cell, all zeros once the game is over) and ``illegal_move`` (``bool``).
    Every ``step`` adds ``move``: the cell ``0..8`` read this step (also for an occupied cell), or
    ``-1`` when this step read none (the turn goes on, or ended without a digit). There is no
    ``action_mask``: actions are tokens, and any token is allowed.

    ## Arguments
    - ``tokenizer``: Hugging Face name, local path or tokenizer object; ``None`` the embedded
      default (``text_envs/defaults/lm``), which works offline.
    - ``opponent``, ``agent_first``, ``opponent_epsilon``: passed to the inner ``TicTacToeEnv``
      (``"random"``/``"minimax"``/an agent; ``True``/``False``/``None`` to alternate sides).
    - ``max_move_tokens`` (4): tokens allowed per turn before a turn without a digit is illegal.
    - ``context``: ``"turn"`` (each turn's prompt alone) or ``"game"`` (the whole game), as above.
    - ``raise_on_illegal_move``: raise ``ValueError`` instead of ending the episode with ``-1.0``.
    - ``observation_mode``: ``"tokens"`` or ``"text"``.
    - ``prompt_format``: ``"plain"`` (default) or ``"chat"`` (needs a tokenizer with a chat template);
      ``system_prompt``: the system message of the chat format (``None``: the template's default).
    - ``render_mode``: ``"ansi"`` (the context as text) or ``"rgb_array"`` (that text drawn as a fixed-size image).

    ``reset(seed=...)`` seeds ``self.np_random`` and resets the inner env with the seed
    ``int(self.np_random.integers(2**63))`` (also on the first reset, seeded or not); later unseeded
    resets go on with the inner env's own stream, so a seeded sequence of games is reproducible and
    equals the numeric env's games under the derived seed.

    ## Version History
    - v0: initial version; ``context="game"`` added later (the default, ``"turn"``, is the original behaviour).
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        tokenizer: str | Path | PreTrainedTokenizerBase | None = None,
        opponent: str | Agent = "random",
        agent_first: bool | None = True,
        opponent_epsilon: float = 0.0,
        max_move_tokens: int = 4,
        raise_on_illegal_move: bool = False,
        observation_mode: str = "tokens",
        prompt_format: str = "plain",
        system_prompt: str | None = None,
        context: str = "turn",
        render_mode: str | None = None,
    ):
        if context not in CONTEXTS:
            raise ValueError(f"context must be one of {CONTEXTS}, got {context!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        if observation_mode not in OBSERVATION_MODES:
            raise ValueError(f"observation_mode must be one of {OBSERVATION_MODES}, got {observation_mode!r}")
        if isinstance(max_move_tokens, bool) or not isinstance(max_move_tokens, (int, np.integer)):
            raise ValueError(f"max_move_tokens must be a positive integer, got {max_move_tokens!r}")
        if max_move_tokens < 1:
            raise ValueError(f"max_move_tokens must be a positive integer, got {max_move_tokens}")
        self.game = TicTacToeEnv(opponent=opponent, agent_first=agent_first, opponent_epsilon=opponent_epsilon)
        source = str(tokenizer) if isinstance(tokenizer, Path) else tokenizer
        self.prompt_table = _shared_prompt_table(source, prompt_format, system_prompt)
        self.prompt_format = self.prompt_table.prompt_format
        self.context = context
        self.tokenizer = self.prompt_format.tokenizer
        self.max_move_tokens = int(max_move_tokens)
        self.raise_on_illegal_move = raise_on_illegal_move
        self.observation_mode = observation_mode
        self.render_mode = render_mode
        self.vocab_size = len(self.tokenizer)
        self.eos_token_id = self.tokenizer.eos_token_id
        self.pad_token_id = next((t for t in (self.tokenizer.pad_token_id, self.eos_token_id) if t is not None), 0)
        self.context_length = self.prompt_table.longest_prompt + self.max_move_tokens
        if context == "game":
            turns = (rules.NUM_CELLS + 1) // 2
            self.context_length += (turns - 1) * (self.prompt_table.longest_continuation + self.max_move_tokens)
        self.action_space = spaces.Discrete(self.vocab_size)
        self.observation_space = self._observation_space()
        self._state = rules.EMPTY_BOARD
        self._context_ids = np.zeros(0, dtype=np.int64)  # the context before this turn's tokens
        self._turn_ids: list[int] = []
        self._board = np.zeros(rules.NUM_CELLS, dtype=np.float32)
        self._legal_moves = np.zeros(rules.NUM_CELLS, dtype=np.int8)
        self._inner_seeded = False
        self._done = True

    def _observation_space(self) -> spaces.Space:
        if self.observation_mode == "text":
            longest_token = max(len(t) for t in self.tokenizer.get_vocab())
            return UnicodeText(self.context_length * longest_token)
        return spaces.Dict(
            {
                "input_ids": spaces.Box(0, self.vocab_size - 1, shape=(self.context_length,), dtype=np.int64),
                "attention_mask": spaces.Box(0, 1, shape=(self.context_length,), dtype=np.int64),
            }
        )

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        inner_seed = None
        if seed is not None or not self._inner_seeded:
            inner_seed = int(self.np_random.integers(2**63))
            self._inner_seeded = True
        board, info = self.game.reset(seed=inner_seed)
        self._new_turn(board, info["action_mask"])
        self._context_ids = self.prompt_table.prompts[self._state]
        self._done = False
        return self._observation(), self._info(illegal_move=False)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        if self._done:
            raise RuntimeError("step() called before reset() or after the episode ended; call reset() first")
        token = check_discrete_action(action, self.vocab_size, "token id")
        self._turn_ids.append(token)
        move, turn_ended = parse_move(self.tokenizer.decode(self._turn_ids, skip_special_tokens=True))
        turn_ended = (
            turn_ended or token in self.prompt_format.turn_end_token_ids or len(self._turn_ids) >= self.max_move_tokens
        )
        if not turn_ended:
            return self._observation(), 0.0, False, False, self._info(illegal_move=False, move=-1)
        if move is None or not self._legal_moves[move]:
            if self.raise_on_illegal_move:
                why = "no move (no digit 1-9)" if move is None else f"cell {move + 1} is occupied"
                raise ValueError(
                    f"illegal move: {why} in {self.tokenizer.decode(self._turn_ids)!r}\n{self.render_text()}"
                )
            # The numeric env ends the game with -1.0 on an occupied cell; an unparsable turn ends it the
            # same way. The inner game is left as it is: the next reset starts a new one.
            observation = self._observation()
            self._done = True
            self._legal_moves = np.zeros(rules.NUM_CELLS, dtype=np.int8)
            return observation, -1.0, True, False, self._info(illegal_move=True, move=-1 if move is None else move)
        board, reward, terminated, truncated, info = self.game.step(move)
        if terminated or truncated:
            observation = self._observation()  # the last turn's context: the game has no next prompt
            self._board, self._legal_moves = board, info["action_mask"]
            self._done = True
            return observation, float(reward), True, False, self._info(illegal_move=False, move=move)
        played, after_move = self._turn_ids, rules.play(self._state, move)
        self._new_turn(board, info["action_mask"])
        if self.context == "game":
            # The opponent's cell: the one filled since the agent's move (the numeric env reports only the board).
            opponent_cell = int(np.flatnonzero(rules.CELLS[self._state] != rules.CELLS[after_move])[0])
            self._context_ids = np.concatenate(
                [self._context_ids, played, self.prompt_table.continuation(opponent_cell, self._state)]
            )
        else:
            self._context_ids = self.prompt_table.prompts[self._state]
        return self._observation(), 0.0, False, False, self._info(illegal_move=False, move=move)

    def render(self) -> str | np.ndarray | None:
        if self.render_mode == "ansi":
            return self.render_text() + "\n"
        if self.render_mode == "rgb_array":
            return render_text_rgb(self.render_text())
        return None

    def render_text(self) -> str:
        """The current context (prompt or game so far, and the tokens emitted this turn) as one decoded string."""
        return self.prompt_format.decode_context(self._context())

    def _new_turn(self, board: np.ndarray, legal_moves: np.ndarray) -> None:
        self._state = int(rules.state_from_observation(board))
        self._board, self._legal_moves = board, legal_moves
        self._turn_ids = []

    def _observation(self) -> Any:
        if self.observation_mode == "text":
            return self.render_text()
        context = self._context()
        input_ids = np.full(self.context_length, self.pad_token_id, dtype=np.int64)
        input_ids[self.context_length - len(context) :] = context
        attention_mask = np.zeros(self.context_length, dtype=np.int64)
        attention_mask[self.context_length - len(context) :] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    def _context(self) -> np.ndarray:
        return np.concatenate([self._context_ids, np.array(self._turn_ids, dtype=np.int64)])

    def _info(self, illegal_move: bool, move: int | None = None) -> dict[str, Any]:
        info = {"board": self._board.copy(), "legal_moves": self._legal_moves.copy(), "illegal_move": illegal_move}
        if move is not None:
            info["move"] = move
        return info


class TicTacToeTextVectorEnv(SyncVectorEnv):
    """``num_envs`` games of :class:`TicTacToeTextEnv` stepped together, for batched trainers and evaluation.

    A ``SyncVectorEnv`` of the single env (``autoreset_mode``: ``NEXT_STEP`` by default, a finished game
    restarts on the next ``step``, whose action is ignored), every copy built from the same ``env_kwargs`` and so
    sharing one tokenizer and prompt table when the tokenizer is given by name. Spaces, rewards and
    ``info`` are the single env's, batched as Gymnasium batches them; ``prompt_format``,
    ``tokenizer``, ``context`` and ``context_length`` are the copies' (equal in all of them). Built
    with ``gym.make_vec("text_envs/TicTacToeText-v0", num_envs=N, vectorization_mode="vector_entry_point",
    context="game")``. With ``context="game"`` every row's context only grows during a game, so a
    sampler feeds its model only what each step added (see :class:`TicTacToeTextEnv`).
    """

    def __init__(self, num_envs: int, autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP, **env_kwargs: Any):
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        super().__init__(
            [functools.partial(TicTacToeTextEnv, **env_kwargs)] * int(num_envs),
            autoreset_mode=AutoresetMode(autoreset_mode),
        )
        first = self.envs[0].unwrapped
        self.prompt_format, self.tokenizer = first.prompt_format, first.tokenizer
        self.context, self.context_length = first.context, first.context_length
