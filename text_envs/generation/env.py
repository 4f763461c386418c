"""Text generation as a Gymnasium env: the context window is the state, the next token is the action."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from transformers import PreTrainedTokenizerBase

from text_envs.actions import check_discrete_action
from text_envs.generation.prompts import DEFAULT_PROMPT_KEY
from text_envs.generation.task import GenerationTask
from text_envs.rewards.protocol import RewardModel
from text_envs.text_render import render_text_rgb


class TextGenerationEnv(gym.Env):
    """Generate a completion of a prompt one token per step; a reward model scores it at the end.

    ## Description
    The env owns the tokenizer, the prompts and the reward model; the language model is the agent.
    ``reset`` picks a prompt, each ``step`` appends the agent's token to the context, and the
    episode ends when the agent emits EOS or a stop token, or runs out of tokens. The reward
    model then scores the completion (RLHF's reward; Stiennon et al. 2020). A reference model for
    a KL penalty belongs to a shaping wrapper, not to the env.

    ## Action Space
    ``Discrete(vocab_size)`` with ``vocab_size = len(tokenizer)`` (a plain ``int``): the id of the
    next token. Anything else (out of range, not an integer) raises ``ValueError``.

    ## Observation Space
    ``observation_mode="tokens"`` (default), causal models: ``Dict(input_ids, attention_mask)``, two
    ``int64`` Boxes of length ``context_length`` holding the prompt followed by the tokens generated
    so far, **left-padded** (pad id: the tokenizer's pad token, else EOS), so the newest token is
    always at the last position and the mask marks real tokens with 1.

    ``architecture="encoder_decoder"`` (T5 / FLAN-T5 style): ``Dict(input_ids, attention_mask,
    decoder_input_ids, decoder_attention_mask)``: the prompt as the encoder input (length
    ``max_prompt_tokens``, fixed for the episode) and the decoder tokens so far (length
    ``max_new_tokens + 1``, starting with ``decoder_start_token_id``), all left-padded. An agent
    tells the two apart by the presence of the ``decoder_*`` keys: a causal agent reads
    ``input_ids``; a seq2seq agent encodes ``input_ids`` once and decodes ``decoder_input_ids``.

    ``observation_mode="text"``: the prompt and the completion so far decoded as one string, for agents
    that read text; actions are still token ids. The space is a
    :class:`~text_envs.generation.text_space.UnicodeText`, Gymnasium's ``Text`` over every Unicode
    character (surrogates excluded, which decoded UTF-8 never holds): the control characters byte tokens
    spell (the embedded tokenizer's id 190 decodes to ``'\\x00'``), emoji and ``U+FFFD`` for bytes that are
    not UTF-8 are kept as they are, never escaped or replaced, and every observation is in the space.
    Special tokens are skipped with ``prompt_format="plain"`` and kept with ``"chat"`` (the string is the
    rendered template, its markers included, followed by the completion).

    ``prompt_format="chat"`` changes which ids the prompt part holds, not the layout: the agent sees
    the templated prompt, ``tokenizer.apply_chat_template([system?, user: prompt],
    add_generation_prompt=True)`` (for SmolLM2: ``<|im_start|>system``, the system message,
    ``<|im_end|>``, ``<|im_start|>user``, the prompt, ``<|im_end|>``, ``<|im_start|>assistant``, with
    newlines between), and its completion follows. The template's special tokens are in the
    vocabulary, so the ids stay inside the Boxes.

    ## Starting State
    A prompt drawn uniformly with ``self.np_random`` from the prompt set, or the one given as
    ``reset(options={"prompt": "..."})``. Prompts are tokenized with the tokenizer's own special
    tokens (``"plain"``) or through its chat template (``"chat"``; see
    :mod:`text_envs.generation.prompt_format`). A prompt whose ids (templated ones included) are longer
    than ``max_prompt_tokens`` is left-truncated (its end, nearest the completion, is kept) with
    ``prompt_truncation="left"``, or refused with ``"error"``; a chat template adds tokens (SmolLM2's
    default system message and markers: 30), so raise ``max_prompt_tokens`` with it.

    ## Rewards
    0.0 at every step but the last; at the last step the reward model's score of the completion
    (a Python ``float``, per sequence, in the reward model's units). The reward model receives the
    prompt as given (the plain text, never the templated one) and the completion text only: decoded
    without the stop or end-of-turn token that ended it and without special tokens. A reward model
    returning the wrong number of scores or a non-finite one raises ``ValueError``; one returning
    something other than numbers (``None``, a string, a dict, a tensor that requires gradients) raises
    ``TypeError``; both name the reward model. The completion is scored before the step changes the env:
    when the reward model raises, the exception propagates and the env is as it was before that
    ``step``, so the same ``step(action)`` can be called again to retry, and nothing is lost.

    ## Episode End
    Terminated when the action is EOS, the chat template's end-of-turn token (``prompt_format="chat"``;
    ``<|im_end|>`` for SmolLM2, derived from the template as
    :mod:`text_envs.generation.prompt_format` describes) or one of ``stop_tokens``. Truncated after
    ``max_new_tokens`` tokens or when the context is full (``context_length`` tokens), whichever
    comes first. ``step`` after the end (or before ``reset``) raises ``RuntimeError``.

    ## Information
    ``reset``: ``{"prompt": str}`` (the prompt as given, not templated). The last step adds ``prompt``,
    ``completion`` (the completion decoded as a whole, without the stop token that ended it and without
    special tokens), ``completion_ids`` (every generated id, the stop token included) and ``score``.

    ## Arguments
    - ``tokenizer``: Hugging Face name, local path or tokenizer object; ``None`` the embedded
      default (``text_envs/defaults/lm``), which works offline.
    - ``prompts``: a list of strings, a ``.txt``/``.jsonl`` path, or a Hugging Face dataset name
      with ``prompt_split`` and ``prompt_column`` (see :func:`text_envs.generation.prompts.load_prompts`);
      ``None`` the embedded default prompt set.
    - ``reward_model``: ``(prompts: list[str], completions: list[str]) -> sequence of floats``;
      ``None`` the embedded default reward model (a head on the packaged MiniLM encoder trained on
      the default feedback data; its logit, per sequence), loaded on the first score.
    - ``max_new_tokens`` (32), ``max_prompt_tokens`` (32), ``context_length`` (causal only;
      default ``max_prompt_tokens + max_new_tokens``).
    - ``stop_tokens``: a list of extra tokens (single-token strings or ids) that end the episode; EOS
      always does. A bare string is refused (``TypeError``): ``"ab"`` is not read as ``["a", "b"]``.
    - ``observation_mode``: ``"tokens"`` or ``"text"``; ``architecture``: ``"causal"`` or
      ``"encoder_decoder"``; ``decoder_start_token_id`` (default: the pad id, as T5 uses).
    - ``prompt_truncation``: ``"left"`` or ``"error"``.
    - ``prompt_format``: ``"plain"`` (default) or ``"chat"`` (needs a tokenizer with a chat template);
      ``system_prompt``: the system message of the chat format (``None``: the template's default).
    - ``trust_remote_code``: passed to ``from_pretrained``; off unless you turn it on.
    - ``render_mode``: ``"ansi"`` (prompt and completion so far) or ``"rgb_array"`` (the same text drawn
      as a fixed-size ``uint8`` image, for video recorders and stable-baselines3, which asks for it).

    ## Version History
    - v0: initial version.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
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
        render_mode: str | None = None,
    ):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.task = GenerationTask(
            tokenizer=tokenizer,
            prompts=prompts,
            reward_model=reward_model,
            max_new_tokens=max_new_tokens,
            max_prompt_tokens=max_prompt_tokens,
            context_length=context_length,
            stop_tokens=stop_tokens,
            observation_mode=observation_mode,
            architecture=architecture,
            prompt_truncation=prompt_truncation,
            prompt_format=prompt_format,
            system_prompt=system_prompt,
            prompt_split=prompt_split,
            prompt_column=prompt_column,
            decoder_start_token_id=decoder_start_token_id,
            trust_remote_code=trust_remote_code,
        )
        self.render_mode = render_mode
        self.observation_space = self.task.observation_space
        self.action_space = spaces.Discrete(self.task.vocab_size)
        self._sequence = np.empty(self.task.sequence_length, dtype=np.int64)
        self._sequence_tokens = 0
        self._completion: list[int] = []
        self._prompt = ""
        self._prompt_ids = np.empty(0, dtype=np.int64)
        self._encoder: tuple[np.ndarray, np.ndarray] | None = None
        self._done = True

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        return self.task.tokenizer

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        if options and "prompt" in options:
            self._prompt = options["prompt"]
            self._prompt_ids = self.task.encode_prompt(self._prompt)
        else:
            index = int(self.np_random.integers(len(self.task.prompts)))
            self._prompt, self._prompt_ids = self.task.prompts[index], self.task.prompt_ids[index]
        self._sequence_tokens = self.task.initial_sequence(self._prompt_ids, self._sequence)
        if self.task.architecture == "encoder_decoder":
            self._encoder = self.task.encoder_input(self._prompt_ids)
        self._completion = []
        self._done = False
        return self._observation(), {"prompt": self._prompt}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        if self._done:
            raise RuntimeError("step() called before reset() or after the episode ended; call reset() first")
        token = check_discrete_action(action, self.task.vocab_size, "token id")
        sequence_tokens = min(self._sequence_tokens + 1, len(self._sequence))
        terminated = token in self.task.stop_token_ids
        truncated = not terminated and (
            len(self._completion) + 1 >= self.task.max_new_tokens or sequence_tokens >= len(self._sequence)
        )
        score, info = 0.0, {}
        if terminated or truncated:
            # Scored before the step changes the env: a reward model that raises leaves the episode as it
            # was, and the same step can be taken again.
            completion_ids = np.array([*self._completion, token], dtype=np.int64)
            completion = self.task.completion_text(completion_ids, stopped=terminated)
            score = float(self.task.score([self._prompt], [completion])[0])
            info = {"prompt": self._prompt, "completion": completion, "completion_ids": completion_ids, "score": score}
        self._sequence[:-1] = self._sequence[1:]
        self._sequence[-1] = token
        self._sequence_tokens = sequence_tokens
        self._completion.append(token)
        self._done = terminated or truncated
        return self._observation(), score, terminated, truncated, info

    def render(self) -> str | np.ndarray | None:
        text = self.task.context_text(self._prompt_ids, np.array(self._completion, dtype=np.int64))
        if self.render_mode == "ansi":
            return text + "\n"
        if self.render_mode == "rgb_array":
            return render_text_rgb(text)
        return None

    def _observation(self) -> Any:
        if self.task.observation_mode == "text":
            return self.task.context_text(self._prompt_ids, np.array(self._completion, dtype=np.int64))
        mask = np.zeros(len(self._sequence), dtype=np.int64)
        mask[len(mask) - self._sequence_tokens :] = 1
        if self.task.architecture == "causal":
            return {"input_ids": self._sequence.copy(), "attention_mask": mask}
        encoder_ids, encoder_mask = self._encoder
        return {
            "input_ids": encoder_ids.copy(),
            "attention_mask": encoder_mask.copy(),
            "decoder_input_ids": self._sequence.copy(),
            "decoder_attention_mask": mask,
        }
