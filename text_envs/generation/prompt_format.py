"""Prompt formats: how a prompt string becomes the token ids an agent sees, and which token ends its turn.

Both text envs (TextGeneration-v0, TicTacToeText-v0) take ``prompt_format``:

- ``"plain"``: ``tokenizer(prompt)``, the tokenizer's own special tokens added (a BOS, for example);
- ``"chat"``: the tokenizer's chat template applied to the prompt as one user message, after an optional
  system message, with the generation prompt (``apply_chat_template(..., add_generation_prompt=True)``),
  as instruction-tuned models were trained to read. Without ``system_prompt`` the template's own default
  applies (SmolLM2's inserts "You are a helpful AI assistant named SmolLM, ...").

In the chat format the agent's turn ends at the template's **end-of-turn token** as well as at EOS. It
is found from the template itself, so any chat model's works: an assistant message with a known
content is rendered, and the first token of the text the template writes right after that content
(leading whitespace skipped, as in Llama 2's ``" </s>"``) is the end-of-turn token, provided it is one
of the tokenizer's added (special) tokens: ``<|im_end|>`` for SmolLM2 and Qwen2, ``<|eot_id|>`` for
Llama 3, ``<end_of_turn>`` for Gemma. A template that closes a turn with ordinary text, or with
nothing, has none: EOS (and an env's ``stop_tokens``) still end the turn.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from transformers import PreTrainedTokenizerBase

PROMPT_FORMATS = ("plain", "chat")

# What encode_continuations puts before a text, tried in order until one's ids stay apart from the text's.
_CONTINUATION_ANCHORS = (".", "\n", " ")


def encode_continuations(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> list[list[int]]:
    """Each text's ids as the tokenizer writes it after other text, inside a context (no special tokens added).

    Most tokenizers (byte-level BPE: GPT-2, SmolLM2, Llama 3) encode a text alone exactly so, and get it
    unchanged. SentencePiece tokenizers (Llama 2, Mistral) begin every string they encode with a word
    boundary: ``"1"`` alone is ``["▁", "1"]``, and a piece appended to a context would read with a space
    before it. For them a text is encoded after an anchor (``"."``, else a newline, else a space) and the
    anchor's ids dropped; where no anchor's ids stay apart from the text's (a merge across the boundary),
    the text is encoded alone, its leading boundary kept.
    """
    encode = functools.partial(tokenizer, add_special_tokens=False)
    if not _prefixes_a_word_boundary(tokenizer):
        return encode(list(texts))["input_ids"] if texts else []
    found: dict[int, list[int]] = {}
    for anchor in _CONTINUATION_ANCHORS:
        pending = [i for i in range(len(texts)) if i not in found]
        anchor_ids = encode(anchor)["input_ids"]
        if not pending or not anchor_ids:  # an anchor the tokenizer drops proves nothing
            continue
        for i, anchored in zip(pending, encode([anchor + texts[i] for i in pending])["input_ids"], strict=True):
            if anchored[: len(anchor_ids)] == anchor_ids:
                found[i] = anchored[len(anchor_ids) :]
    return [found[i] if i in found else encode(text)["input_ids"] for i, text in enumerate(texts)]


def _prefixes_a_word_boundary(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether ``"a"`` alone encodes otherwise than ``"a"`` after a newline: a word boundary at each string's start."""
    alone = tokenizer.encode("a", add_special_tokens=False)
    newline = tokenizer.encode("\n", add_special_tokens=False)
    after_newline = tokenizer.encode("\na", add_special_tokens=False)
    return after_newline[: len(newline)] == newline and after_newline[len(newline) :] != alone


# Content for the rendered probe conversation: plain words no template rewrites (some strip whitespace).
_PROBE_QUESTION = "Say the probe word."
_PROBE_ANSWER = "probe"


class PromptFormat:
    """A tokenizer's way of turning prompts into ids, plain or chat-templated; see the module docstring.

    ``name`` is ``"plain"`` or ``"chat"``; ``system_prompt`` (chat only, ``None`` for the template's
    default) is the system message put before each prompt. Bad values raise ``ValueError`` naming the
    argument; so does ``"chat"`` with a tokenizer that has no chat template.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, name: str = "plain", system_prompt: str | None = None):
        if name not in PROMPT_FORMATS:
            raise ValueError(f"prompt_format must be one of {PROMPT_FORMATS}, got {name!r}")
        if system_prompt is not None:
            if name != "chat":
                raise ValueError("system_prompt goes into the chat template: it needs prompt_format='chat'")
            if not isinstance(system_prompt, str) or not system_prompt.strip():
                raise ValueError(f"system_prompt must be a non-empty string or None, got {system_prompt!r}")
        if name == "chat" and not getattr(tokenizer, "chat_template", None):
            raise ValueError(
                f"prompt_format='chat' needs a tokenizer with a chat template, and the tokenizer "
                f"{getattr(tokenizer, 'name_or_path', '') or type(tokenizer).__name__!r} has none: use "
                "prompt_format='plain', or an instruction-tuned model's tokenizer (e.g. 'smollm2-135m-instruct')"
            )
        self.tokenizer = tokenizer
        self.name = name
        self.system_prompt = system_prompt
        self.end_of_turn_token_id = self._end_of_turn_token_id() if name == "chat" else None
        self.turn_end_token_ids = frozenset({tokenizer.eos_token_id, self.end_of_turn_token_id} - {None})
        """EOS and the end-of-turn token: the tokens that end the agent's turn whatever else the env stops at."""

    def encode(self, prompts: Sequence[str]) -> list[list[int]]:
        """The token ids of each prompt, in this format (not truncated)."""
        if self.name == "plain":
            return self.tokenizer(list(prompts))["input_ids"]
        conversations = [self._messages(prompt) for prompt in prompts]
        return self._apply_template(conversations, add_generation_prompt=True, return_dict=True)["input_ids"]

    def follow_up_wrapping(self) -> tuple[list[int], list[int]]:
        """The ids around a follow-up prompt's own tokens after the agent's reply: ``(before, after)``.

        Plain: none (a follow-up is its own text). Chat: what the template writes between the content of
        an assistant message and the content of the next user message (the end-of-turn token, the user
        header), and after that content (its closing and the generation prompt), found by rendering a
        probe conversation, so a multi-turn context reads as the template renders multi-turn chats.
        """
        if self.name == "plain":
            return [], []
        marker = "Next question."
        probe = [
            *self._messages(_PROBE_QUESTION),
            {"role": "assistant", "content": _PROBE_ANSWER},
            {"role": "user", "content": marker},
        ]
        rendered = self._apply_template(probe, tokenize=False, add_generation_prompt=True)
        start = rendered.rfind(_PROBE_ANSWER) + len(_PROBE_ANSWER)
        end = rendered.rfind(marker)
        if start < len(_PROBE_ANSWER) or end < start:
            raise ValueError(f"the chat template of {self.tokenizer.name_or_path!r} does not render follow-up turns")
        before, after = encode_continuations(self.tokenizer, [rendered[start:end], rendered[end + len(marker) :]])
        return before, after

    def decode_context(self, ids: Sequence[int]) -> str:
        """Prompt ids and the tokens after them as one string, what a text-reading agent sees.

        Plain: special tokens skipped (a BOS is no text). Chat: special tokens kept, so the string is the rendered
        template followed by the completion, the template's markers (``<|im_start|>``, ...) included.
        """
        return self.tokenizer.decode(ids, skip_special_tokens=self.name == "plain")

    def _messages(self, prompt: str) -> list[dict[str, str]]:
        system = [] if self.system_prompt is None else [{"role": "system", "content": self.system_prompt}]
        return [*system, {"role": "user", "content": prompt}]

    def _apply_template(self, conversations: list, **kwargs: Any) -> Any:
        import jinja2  # chat templates are jinja; torch and transformers' chat-template extra bring it

        try:
            return self.tokenizer.apply_chat_template(conversations, **kwargs)
        except jinja2.TemplateError as error:
            raise ValueError(
                f"the chat template of {self.tokenizer.name_or_path!r} refused the messages "
                f"(system_prompt={self.system_prompt!r}): {error}"
            ) from error

    def _end_of_turn_token_id(self) -> int | None:
        """The added token the template writes first after an assistant message's content, if any."""
        probe = [*self._messages(_PROBE_QUESTION), {"role": "assistant", "content": _PROBE_ANSWER}]
        rendered = self._apply_template(probe, tokenize=False)
        end = rendered.rfind(_PROBE_ANSWER)
        if end < 0:
            return None
        closing = self.tokenizer.encode(rendered[end + len(_PROBE_ANSWER) :].lstrip(), add_special_tokens=False)
        if closing and closing[0] in self.tokenizer.added_tokens_decoder:
            return int(closing[0])
        return None
