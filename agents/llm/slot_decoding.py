"""Which slot decoder (:class:`~text_envs_agents.llm.kv_slots.SlotDecoder`) runs a model, if any.

The one entry point of slot decoding: :class:`~text_envs_agents.llm.incremental.IncrementalLM` and TextPPO's
rollout ask :func:`slot_decoder` and take Hugging Face's forward with a ``DynamicCache`` when it says None.
Each decoder class answers two questions about a model: ``max_positions`` (the positions it reads, 0
when the class does not run its architecture) and ``refusal`` (why a given capacity would not be
exact, e.g. a sliding window shorter than it).
"""

from __future__ import annotations

from torch import nn

from text_envs_agents.llm.gpt2_decoding import GPT2Decoder
from text_envs_agents.llm.kv_slots import SlotDecoder
from text_envs_agents.llm.llama_decoding import LlamaDecoder

_DECODERS: tuple[type[SlotDecoder], ...] = (GPT2Decoder, LlamaDecoder)


def slot_decoder(model: nn.Module, batch_size: int, capacity: int) -> SlotDecoder | None:
    """A slot decoder of ``batch_size`` slots of ``capacity`` tokens for ``model`` (a Hugging Face causal LM or
    a peft wrapper of one), or None when none computes ``model``'s outputs exactly at that capacity."""
    for decoder in _DECODERS:
        if decoder.max_positions(model):
            return None if decoder.refusal(model, capacity) else decoder(model, batch_size, capacity)
    return None
