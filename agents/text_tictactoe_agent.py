"""A numeric Tic-Tac-Toe agent playing ``TicTacToeText-v0``: it reads the board from the prompt and writes a digit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from transformers import PreTrainedTokenizerBase

from text_envs.agent_protocol import Agent, predict_actions
from text_envs.generation.prompt_format import encode_continuations
from text_envs.lm import load_tokenizer
from text_envs.tictactoe import rules
from text_envs.tictactoe.text_env import MOVE_DIGITS, state_from_prompt


class TextTicTacToeAgent:
    """Plays ``TicTacToeText-v0`` through text with any agent of ``TicTacToe-v0`` (random, minimax, trained).

    Each call decodes the context (token ids where the attention mask is 1, or the text itself with
    ``observation_mode="text"``), reads the board of the last prompt with
    :func:`text_envs.tictactoe.text_env.state_from_prompt`, gives ``agent`` the numeric observation of the
    player to move (+1 own, -1 opponent, 0 empty) with the legal moves as action masks, and answers
    with the token of the chosen cell's digit: one token per turn. So the same agent's results on the
    two envs differ only by the games' random draws. Its ``predict`` is stable-baselines3's, on one
    observation or a batch (``input_ids`` of shape ``(n, L)`` or a list of strings).

    ``tokenizer``: the env's tokenizer (name, path or object; ``None`` the embedded default). Each of
    the digits ``1``–``9`` must be a single token in it as text after a prompt
    (:func:`~text_envs.generation.prompt_format.encode_continuations`: SentencePiece writes ``"1"`` alone
    as ``["▁", "1"]``, after other text as ``["1"]``).
    """

    def __init__(self, agent: Agent, tokenizer: str | Path | PreTrainedTokenizerBase | None = None):
        self.agent = agent
        self.tokenizer = load_tokenizer(tokenizer)
        digit_ids = encode_continuations(self.tokenizer, MOVE_DIGITS)
        if any(len(ids) != 1 for ids in digit_ids):
            raise ValueError(f"every digit 1-9 must be one token of the tokenizer; got {digit_ids}")
        self.digit_token_ids = np.array([ids[0] for ids in digit_ids], dtype=np.int64)

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, Any]:
        texts, single = self._texts(observation)
        states = np.array([state_from_prompt(text) for text in texts], dtype=np.int64)
        boards = np.where(
            (rules.MARK_TO_MOVE[states] == rules.X)[:, None],
            rules.OBSERVATION_FOR_X[states],
            rules.OBSERVATION_FOR_O[states],
        )
        cells = predict_actions(self.agent, boards, rules.LEGAL_MOVES[states].astype(bool), deterministic)
        tokens = self.digit_token_ids[cells.reshape(-1)]
        return (tokens[0] if single else tokens), state

    def _texts(self, observation: Any) -> tuple[list[str], bool]:
        if isinstance(observation, str):
            return [observation], True
        if isinstance(observation, dict):
            input_ids, mask = np.asarray(observation["input_ids"]), np.asarray(observation["attention_mask"])
            single = input_ids.ndim == 1
            rows = zip(np.atleast_2d(input_ids), np.atleast_2d(mask), strict=True)
            return [self.tokenizer.decode(ids[m == 1], skip_special_tokens=True) for ids, m in rows], single
        return [str(text) for text in observation], False
