"""The Llama family's block math for slot decoding (:class:`~text_envs_agents.llm.kv_slots.SlotDecoder`).

Llama (SmolLM2 among them), Qwen2 and Mistral share one decoder block: RMSNorm, rotary position
embeddings on queries and keys, grouped-query attention, RMSNorm, SiLU-gated MLP, each with a
residual; they differ in biases (Qwen2's q/k/v projections have them), head sizes
(``config.head_dim``), tied or untied LM heads, and sliding windows, all of which the modules
themselves carry. :class:`LlamaDecoder` reads them from the modules, and refuses what it cannot
compute exactly: a sliding window shorter than the capacity (the window would drop keys a slot
keeps), and RoPE variants whose frequencies depend on the sequence length beyond the model's
original context.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn
from torch.nn import functional as F
from transformers import LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM
from transformers.models.llama.modeling_llama import LlamaRMSNorm
from transformers.models.mistral.modeling_mistral import MistralRMSNorm
from transformers.models.qwen2.modeling_qwen2 import Qwen2RMSNorm

from text_envs.lm import unwrap_peft
from text_envs_agents.llm.kv_slots import Attention, SlotDecoder, direct_call

_ARCHITECTURES = (LlamaForCausalLM, Qwen2ForCausalLM, MistralForCausalLM)
_RMS_NORMS = (LlamaRMSNorm, MistralRMSNorm, Qwen2RMSNorm)
_LENGTH_DEPENDENT_ROPE = ("dynamic", "longrope")
"""RoPE types whose frequencies change once a sequence is longer than the model's original context."""


def _rms_norm(weight: torch.Tensor, eps: float, x: torch.Tensor) -> torch.Tensor:
    # As Hugging Face's RMSNorm: normalised in float32, cast back, then scaled.
    return weight * F.rms_norm(x.float(), weight.shape, eps=eps).to(x.dtype)


def _norm_call(module: nn.Module):
    """The family's RMSNorm as one fused call; any other norm module is called as it is."""
    if type(module) in _RMS_NORMS:
        return partial(_rms_norm, module.weight, module.variance_epsilon)
    return module


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _sliding_window(base: nn.Module) -> int | None:
    """The shortest attention window of ``base``'s layers, None when every layer attends to all earlier tokens."""
    if isinstance(base, MistralForCausalLM):
        return base.config.sliding_window
    # Qwen2 sets it per layer (None on full-attention layers); Llama's layers have none.
    windows = [getattr(layer.self_attn, "sliding_window", None) for layer in base.model.layers]
    windows = [window for window in windows if window is not None]
    return min(windows) if windows else None


class LlamaDecoder(SlotDecoder):
    """:class:`~text_envs_agents.llm.kv_slots.SlotDecoder` for Llama, Qwen2 and Mistral causal LMs (or peft wrappers).

    Rotary embeddings come from the model's own ``rotary_emb`` module, once for every position of a
    slot, so rope scaling variants stay the model's. Plain ``nn.Linear`` projections, RMSNorms and
    SiLU are called as functions; anything else (LoRA layers) as modules.
    """

    @staticmethod
    def max_positions(model: nn.Module) -> int:
        """The positions ``model`` reads (``max_position_embeddings``), 0 when this class does not run it."""
        base = unwrap_peft(model)
        return base.config.max_position_embeddings if type(base) in _ARCHITECTURES else 0

    @staticmethod
    def refusal(model: nn.Module, capacity: int) -> str | None:
        """Why slots of ``capacity`` tokens cannot decode ``model`` (Llama family) exactly; None when they can."""
        base = unwrap_peft(model)
        if capacity > base.config.max_position_embeddings:
            return f"capacity {capacity} exceeds the model's {base.config.max_position_embeddings} positions"
        window = _sliding_window(base)
        if window is not None and window < capacity:
            return f"a sliding window of {window} tokens is shorter than the capacity {capacity}"
        rotary = base.model.rotary_emb
        if getattr(rotary, "rope_type", "default") in _LENGTH_DEPENDENT_ROPE and capacity > rotary.original_max_seq_len:
            return (
                f"{rotary.rope_type} RoPE changes its frequencies past {rotary.original_max_seq_len} tokens, "
                f"which is less than the capacity {capacity}"
            )
        return None

    def __init__(self, model: nn.Module, batch_size: int, capacity: int):
        base = unwrap_peft(model)
        if type(base) not in _ARCHITECTURES:
            raise TypeError(f"LlamaDecoder runs Llama, Qwen2 and Mistral causal LMs, not {type(base).__name__}")
        refusal = self.refusal(model, capacity)
        if refusal is not None:
            raise ValueError(refusal)
        decoder = base.model
        self.embed = direct_call(decoder.embed_tokens)
        self.layers = [
            (
                layer.self_attn,
                _norm_call(layer.input_layernorm),
                direct_call(layer.self_attn.q_proj),
                direct_call(layer.self_attn.k_proj),
                direct_call(layer.self_attn.v_proj),
                direct_call(layer.self_attn.o_proj),
                _norm_call(layer.post_attention_layernorm),
                direct_call(layer.mlp.gate_proj),
                direct_call(layer.mlp.up_proj),
                direct_call(layer.mlp.down_proj),
                direct_call(layer.mlp.act_fn),
            )
            for layer in decoder.layers
        ]
        self.norm = _norm_call(decoder.norm)
        attention = decoder.layers[0].self_attn
        self.head_dim = attention.head_dim
        weight = decoder.embed_tokens.weight
        # (capacity, head_dim) tables in the model's dtype: the rotary module's outputs for positions 0 .. capacity - 1.
        self.cos, self.sin = (
            table[0] for table in decoder.rotary_emb(weight[:1], torch.arange(capacity, device=weight.device)[None])
        )
        super().__init__(
            batch_size=batch_size,
            capacity=capacity,
            num_layers=len(decoder.layers),
            kv_heads=base.config.num_key_value_heads,
            head_dim=self.head_dim,
            lm_head=base.lm_head,
            like=weight,
        )

    def _hidden_states(self, input_ids: torch.Tensor, positions: torch.Tensor, attend: Attention) -> torch.Tensor:
        hidden = self.embed(input_ids)
        batch, length, _ = hidden.shape
        # Heads stay on the third axis while the rotation is applied (contiguous elementwise work), as in
        # Hugging Face's apply_rotary_pos_emb up to that layout.
        cos, sin = self.cos[positions][:, :, None], self.sin[positions][:, :, None]
        for layer, (attention, norm_1, q_proj, k_proj, v_proj, o_proj, norm_2, gate, up, down, act) in enumerate(
            self.layers
        ):
            normed = norm_1(hidden)
            query = q_proj(normed).view(batch, length, -1, self.head_dim)
            key = k_proj(normed).view(batch, length, -1, self.head_dim)
            value = v_proj(normed).view(batch, length, -1, self.head_dim)
            query = query * cos + _rotate_half(query) * sin
            key = key * cos + _rotate_half(key) * sin
            dropout_p = attention.attention_dropout if attention.training else 0.0
            attended = attend(
                layer, query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2), attention.scaling, dropout_p
            )
            hidden = hidden + o_proj(attended.transpose(1, 2).reshape(batch, length, -1))
            normed = norm_2(hidden)
            hidden = hidden + down(act(gate(normed)) * up(normed))
        return self.norm(hidden)
