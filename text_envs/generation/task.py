"""What a text-generation episode needs, shared by the single and the vector TextGeneration envs.

:class:`GenerationTask` loads the tokenizer and prompts once, tokenizes every prompt once (plain or
chat-templated, see :mod:`text_envs.generation.prompt_format`), checks the limits and stop tokens, builds
the observation space, and wraps the reward model so that a wrong number of scores or a NaN is an error
instead of a silent training signal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from gymnasium import spaces
from transformers import PreTrainedTokenizerBase

from text_envs.defaults import DEFAULT_PROMPTS_TRAIN
from text_envs.generation.prompt_format import PromptFormat, encode_continuations
from text_envs.generation.prompts import DEFAULT_PROMPT_KEY, load_prompts
from text_envs.generation.text_space import UnicodeText
from text_envs.lm import load_tokenizer
from text_envs.rewards.protocol import RewardModel, check_scores
from text_envs.rewards.trained import default_reward, minilm_dir

OBSERVATION_MODES = ("tokens", "text")
ARCHITECTURES = ("causal", "encoder_decoder")
PROMPT_TRUNCATIONS = ("left", "error")


class GenerationTask:
    """Tokenizer, tokenized prompts, reward model, limits and spaces of a TextGeneration env.

    See :class:`text_envs.generation.env.TextGenerationEnv` for the meaning of every argument.
    """

    def __init__(
        self,
        *,
        tokenizer: str | Path | PreTrainedTokenizerBase | None = None,
        prompts: Sequence[str] | str | Path | None = None,
        reward_model: RewardModel | None = None,
        max_new_tokens: int = 32,
        max_prompt_tokens: int = 32,
        context_length: int | None = None,
        stop_tokens: Sequence[str | int] = (),
        observation_mode: str = "tokens",
        architecture: str = "causal",
        prompt_truncation: str = "left",
        prompt_format: str = "plain",
        system_prompt: str | None = None,
        prompt_split: str = "train",
        prompt_column: str = DEFAULT_PROMPT_KEY,
        decoder_start_token_id: int | None = None,
        trust_remote_code: bool = False,
    ):
        for name, value, allowed in (
            ("observation_mode", observation_mode, OBSERVATION_MODES),
            ("architecture", architecture, ARCHITECTURES),
            ("prompt_truncation", prompt_truncation, PROMPT_TRUNCATIONS),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        for name, value in (
            ("max_new_tokens", max_new_tokens),
            ("max_prompt_tokens", max_prompt_tokens),
            ("context_length", 1 if context_length is None else context_length),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if architecture == "encoder_decoder" and context_length is not None:
            raise ValueError(
                "context_length applies to causal models; an encoder-decoder env holds "
                "max_prompt_tokens encoder tokens and max_new_tokens + 1 decoder tokens"
            )
        self.tokenizer = load_tokenizer(tokenizer, trust_remote_code)
        self.prompt_format = PromptFormat(self.tokenizer, prompt_format, system_prompt)
        if reward_model is None:
            minilm_dir()  # a missing encoder fails here, not when the first episode ends and is scored
        self.reward_model = default_reward if reward_model is None else reward_model
        if not callable(self.reward_model):
            raise TypeError(f"reward_model must be callable (prompts, completions) -> scores, got {reward_model!r}")
        self.reward_model_name = getattr(self.reward_model, "__qualname__", type(self.reward_model).__name__)
        """What errors about the reward model's scores call it: a function's qualified name, else its class's name."""
        self.observation_mode = observation_mode
        self.architecture = architecture
        self.prompt_truncation = prompt_truncation
        self.max_new_tokens = max_new_tokens
        self.max_prompt_tokens = max_prompt_tokens
        self.vocab_size = len(self.tokenizer)
        self.eos_token_id = self.tokenizer.eos_token_id
        self.pad_token_id = next((t for t in (self.tokenizer.pad_token_id, self.eos_token_id) if t is not None), 0)
        if isinstance(stop_tokens, (str, bytes)) or not isinstance(stop_tokens, Iterable):
            # A bare "ab" would iterate as the two stop tokens "a" and "b".
            raise TypeError(
                f"stop_tokens must be a list of single-token strings or ids, as [{stop_tokens!r}], not {stop_tokens!r}"
            )
        self.stop_token_ids = frozenset(
            {self._stop_token_id(t) for t in stop_tokens} | self.prompt_format.turn_end_token_ids
        )
        if architecture == "causal":
            self.sequence_length = context_length or max_prompt_tokens + max_new_tokens
            if self.sequence_length <= max_prompt_tokens:
                raise ValueError(
                    f"context_length ({self.sequence_length}) must exceed max_prompt_tokens "
                    f"({max_prompt_tokens}) to leave room for generated tokens"
                )
            self.decoder_start_token_id = None
        else:
            self.sequence_length = max_new_tokens + 1
            self.decoder_start_token_id = (
                self.pad_token_id if decoder_start_token_id is None else decoder_start_token_id
            )

        self.prompts = load_prompts(DEFAULT_PROMPTS_TRAIN if prompts is None else prompts, prompt_split, prompt_column)
        encoded = self.prompt_format.encode(self.prompts)
        self.prompt_ids = [self.fit_prompt(ids, index=i) for i, ids in enumerate(encoded)]
        self.observation_space = self._observation_space()

    def _stop_token_id(self, token: str | int) -> int:
        if isinstance(token, bool) or not isinstance(token, (str, int, np.integer)):
            raise TypeError(f"stop_tokens holds {token!r}; each stop token is a single-token string or a token id")
        if isinstance(token, (int, np.integer)):
            if not 0 <= token < self.vocab_size:
                raise ValueError(f"stop token id {token} is outside the vocabulary (size {self.vocab_size})")
            return int(token)
        (ids,) = encode_continuations(self.tokenizer, [token])  # as the token reads inside a completion
        if len(ids) != 1:
            raise ValueError(f"stop token {token!r} is {len(ids)} tokens {ids}; give a single token or its id")
        return ids[0]

    def encode_prompt(self, prompt: str) -> np.ndarray:
        """Token ids of one prompt in the env's prompt format, fitted to ``max_prompt_tokens``."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError(f"prompt must be a non-empty string, got {prompt!r}")
        return self.fit_prompt(self.prompt_format.encode([prompt])[0])

    def fit_prompt(self, ids: list[int], index: int | None = None) -> np.ndarray:
        """Keep the last ``max_prompt_tokens`` ids (``prompt_truncation="left"``) or refuse a longer prompt."""
        if not ids:
            raise ValueError(f"prompt {'' if index is None else index} encodes to no tokens")
        if len(ids) > self.max_prompt_tokens:
            if self.prompt_truncation == "error":
                which = "the prompt" if index is None else f"prompt {index} ({self.prompts[index][:60]!r})"
                raise ValueError(f"{which} is {len(ids)} tokens, more than max_prompt_tokens={self.max_prompt_tokens}")
            ids = ids[-self.max_prompt_tokens :]
        return np.asarray(ids, dtype=np.int64)

    def _observation_space(self) -> spaces.Space:
        if self.observation_mode == "text":
            longest_token = max(len(t) for t in self.tokenizer.get_vocab())
            capacity = self.max_prompt_tokens + self.max_new_tokens
            return UnicodeText(capacity * longest_token)

        def ids(length: int) -> spaces.Box:
            return spaces.Box(0, self.vocab_size - 1, shape=(length,), dtype=np.int64)

        def mask(length: int) -> spaces.Box:
            return spaces.Box(0, 1, shape=(length,), dtype=np.int64)

        if self.architecture == "causal":
            return spaces.Dict({"input_ids": ids(self.sequence_length), "attention_mask": mask(self.sequence_length)})
        return spaces.Dict(
            {
                "input_ids": ids(self.max_prompt_tokens),
                "attention_mask": mask(self.max_prompt_tokens),
                "decoder_input_ids": ids(self.sequence_length),
                "decoder_attention_mask": mask(self.sequence_length),
            }
        )

    def initial_sequence(self, prompt_ids: np.ndarray, out: np.ndarray) -> int:
        """Write the left-padded starting sequence into ``out``; return its number of real tokens.

        Causal: the prompt. Encoder-decoder: the decoder start token (the prompt goes to the encoder).
        """
        start = prompt_ids if self.architecture == "causal" else np.array([self.decoder_start_token_id])
        out[:] = self.pad_token_id
        out[len(out) - len(start) :] = start
        return len(start)

    def encoder_input(self, prompt_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Left-padded encoder ``input_ids`` and ``attention_mask`` for an encoder-decoder env."""
        ids = np.full(self.max_prompt_tokens, self.pad_token_id, dtype=np.int64)
        mask = np.zeros(self.max_prompt_tokens, dtype=np.int64)
        ids[self.max_prompt_tokens - len(prompt_ids) :] = prompt_ids
        mask[self.max_prompt_tokens - len(prompt_ids) :] = 1
        return ids, mask

    def completion_text(self, completion_ids: np.ndarray, stopped: bool) -> str:
        """The completion decoded as a whole, without the stop token that ended it and without special tokens."""
        ids = completion_ids[:-1] if stopped else completion_ids
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def context_text(self, prompt_ids: np.ndarray, completion_ids: np.ndarray) -> str:
        """Prompt and completion so far as one decoded string (what a text-reading agent sees)."""
        return self.prompt_format.decode_context(np.concatenate([prompt_ids, completion_ids]))

    def score(self, prompts: list[str], completions: list[str]) -> np.ndarray:
        """The reward model's scores, checked by :func:`~text_envs.rewards.protocol.check_scores`, as float64
        (Gymnasium's vector envs report rewards and infos in float64, and a callable's 0.1 stays 0.1)."""
        source = f"the reward model {self.reward_model_name!r}"
        return check_scores(self.reward_model(prompts, completions), len(completions), source, np.float64)
