"""GPT-2's block math for slot decoding (:class:`~text_envs_agents.llm.kv_slots.SlotDecoder`), and fused GELU.

:class:`GPT2Decoder` makes a decoding step of the embedded LM about twice as fast as ``generate``'s
(see :mod:`~text_envs_agents.llm.kv_slots` for how); :func:`supports_gpt2_decoding` says which models it runs.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from transformers import GPT2LMHeadModel
from transformers.activations import NewGELUActivation

try:
    from transformers.activations import GELUTanh
except ImportError:  # transformers < 4.57 names it PytorchGELUTanh
    from transformers.activations import PytorchGELUTanh as GELUTanh

from text_envs.lm import unwrap_peft
from text_envs_agents.llm.kv_slots import Attention, SlotDecoder, direct_call


def fuse_gelu_activations(model: nn.Module) -> int:
    """Swap every ``gelu_new`` activation module of ``model`` for the same function as one fused kernel.

    GPT-2's ``gelu_new`` is the tanh approximation of GELU written as five elementwise ops;
    ``GELUTanh`` (``torch.nn.functional.gelu(approximate="tanh")``) computes it (to 2e-7) in one, which
    makes a training forward and backward of the embedded LM about 9% cheaper. Returns the number of
    modules swapped; the model is changed in place.
    """
    swapped = 0
    for module in list(model.modules()):
        for name, child in module.named_children():
            if type(child) is NewGELUActivation:
                setattr(module, name, GELUTanh())
                swapped += 1
    return swapped


def supports_gpt2_decoding(model: nn.Module) -> bool:
    """Whether :class:`GPT2Decoder` can run ``model``: a GPT-2 LM head model (or a peft wrapper of one)."""
    base = unwrap_peft(model)
    return isinstance(base, GPT2LMHeadModel) and not base.config.add_cross_attention


class GPT2Decoder(SlotDecoder):
    """:class:`~text_envs_agents.llm.kv_slots.SlotDecoder` for GPT-2 LM head models (or peft wrappers of them)."""

    @staticmethod
    def max_positions(model: nn.Module) -> int:
        """The positions ``model`` reads (its ``n_positions``), 0 when it is not a GPT-2 model this class runs."""
        return unwrap_peft(model).config.n_positions if supports_gpt2_decoding(model) else 0

    @staticmethod
    def refusal(model: nn.Module, capacity: int) -> str | None:
        """Why slots of ``capacity`` tokens cannot decode ``model``, a GPT-2 model, exactly; None when they can."""
        positions = GPT2Decoder.max_positions(model)
        return f"capacity {capacity} exceeds the model's {positions} positions" if capacity > positions else None

    def __init__(self, model: nn.Module, batch_size: int, capacity: int):
        if not supports_gpt2_decoding(model):
            raise TypeError(f"GPT2Decoder runs GPT-2 LM head models, not {type(unwrap_peft(model)).__name__}")
        refusal = self.refusal(model, capacity)
        if refusal is not None:
            raise ValueError(refusal)
        base = unwrap_peft(model)
        config = base.config
        self.transformer = base.transformer
        self.blocks = [
            (
                block,
                direct_call(block.ln_1),
                direct_call(block.attn.c_attn),
                direct_call(block.attn.c_proj),
                direct_call(block.ln_2),
                direct_call(block.mlp.c_fc),
                direct_call(block.mlp.c_proj),
            )
            for block in self.transformer.h
        ]
        self.ln_f = direct_call(self.transformer.ln_f)
        self.wte, self.wpe = direct_call(self.transformer.wte), direct_call(self.transformer.wpe)
        # GPT-2's attention scale (computed here: older transformers keep it inside their attention function).
        self.scales = [
            (config.n_embd // config.n_head) ** -0.5 if config.scale_attn_weights else 1.0 for _ in self.transformer.h
        ]
        if config.scale_attn_by_inverse_layer_idx:
            self.scales = [scale / (layer + 1) for layer, scale in enumerate(self.scales)]
        # gelu_new is tanh-approximated GELU written as five elementwise ops; one fused kernel computes the same.
        self.fused_gelu = config.activation_function in ("gelu_new", "gelu_pytorch_tanh")
        self.num_heads = config.n_head
        self.head_dim = config.n_embd // config.n_head
        super().__init__(
            batch_size=batch_size,
            capacity=capacity,
            num_layers=config.n_layer,
            kv_heads=self.num_heads,
            head_dim=self.head_dim,
            lm_head=base.get_output_embeddings(),
            like=self.transformer.wte.weight,
        )

    def _hidden_states(self, input_ids: torch.Tensor, positions: torch.Tensor, attend: Attention) -> torch.Tensor:
        hidden = self.wte(input_ids) + self.wpe(positions)
        if self.transformer.training:
            hidden = self.transformer.drop(hidden)
        for layer, parts in enumerate(self.blocks):
            query, key, value = self._qkv(parts, hidden)
            attended = attend(layer, query, key, value, self.scales[layer], self._attention_dropout(parts[0]))
            hidden = self._finish_block(parts, hidden, attended)
        return self.ln_f(hidden)

    def _qkv(self, parts: tuple, hidden: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Queries, keys and values ``(batch, heads, length, head_dim)`` of one block."""
        _, ln_1, c_attn, *_ = parts
        batch, length, _ = hidden.shape
        fused = c_attn(ln_1(hidden)).view(batch, length, 3, self.num_heads, self.head_dim)
        return fused.permute(2, 0, 3, 1, 4).unbind(0)

    def _finish_block(self, parts: tuple, hidden: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        """Merge heads, project, add the residual, then the MLP with its residual (GPT-2's pre-norm block)."""
        block, _, _, attn_proj, ln_2, c_fc, mlp_proj = parts
        merged = attended.transpose(1, 2).reshape(hidden.shape)
        projected = attn_proj(merged)
        hidden = hidden + (block.attn.resid_dropout(projected) if block.training else projected)
        if not self.fused_gelu:
            return hidden + block.mlp(ln_2(hidden))
        output = mlp_proj(F.gelu(c_fc(ln_2(hidden)), approximate="tanh"))
        return hidden + (block.mlp.dropout(output) if block.training else output)

    @staticmethod
    def _attention_dropout(block: nn.Module) -> float:
        return block.attn.attn_dropout.p if block.training else 0.0
