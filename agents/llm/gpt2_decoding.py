"""Batched KV-cached decoding for GPT-2-family LMs over a preallocated cache with one slot per row.

On a CPU a decoding step of a small model is mostly fixed cost: Hugging Face's forward builds
attention masks and grows a ``DynamicCache`` by concatenation (a copy of every layer's keys and
values per token). :class:`GPT2Decoder` runs the same modules of the same model (so LoRA adapters,
``disable_adapter()`` and dropout behave as in the model's own forward) but writes each new key and
value into a preallocated buffer and attends with one boolean mask, which makes a step of the
embedded LM about twice as fast as ``generate``'s. Other architectures keep the Hugging Face path
(:func:`supports_gpt2_decoding` says which).

Each row of the batch owns a slot: its tokens sit in columns ``0 .. length - 1`` (no padding on the
left), so a token's column is its position id, and rows may restart independently
(:meth:`GPT2Decoder.prefill` on some rows while the others continue).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import nn
from torch.nn import functional as F
from transformers import GPT2LMHeadModel
from transformers.activations import NewGELUActivation

try:
    from transformers.activations import GELUTanh
except ImportError:  # transformers < 4.57 names it PytorchGELUTanh
    from transformers.activations import PytorchGELUTanh as GELUTanh
from transformers.pytorch_utils import Conv1D

from text_envs.lm import unwrap_peft


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


def _conv1d(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.addmm(bias, x.reshape(-1, x.shape[-1]), weight).view(*x.shape[:-1], weight.shape[1])


def _direct(module: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``module``'s function without ``nn.Module.__call__``'s hooks machinery when it is a plain GPT-2
    ``Conv1D``, ``Embedding`` or ``LayerNorm`` (a few microseconds a call, about a tenth of a step at this size);
    any other module (a LoRA layer, say) is called as it is."""
    if type(module) is Conv1D:
        return partial(_conv1d, module.weight, module.bias)
    if type(module) is nn.Embedding:
        return partial(F.embedding, weight=module.weight)
    if type(module) is nn.LayerNorm:
        return partial(
            F.layer_norm,
            normalized_shape=module.normalized_shape,
            weight=module.weight,
            bias=module.bias,
            eps=module.eps,
        )
    return module


class GPT2Decoder:
    """Next-token logits and final hidden states of a GPT-2 LM, one preallocated KV slot per row.

    ``capacity`` is the longest context (tokens) a slot holds. Outputs equal the model's own forward
    with position ids counting each row's tokens from 0, to float rounding (~1e-5). Run it under
    ``torch.no_grad()``; it keeps no autograd graph across calls. It holds the model's parameter
    tensors, so make a new decoder after replacing them (in-place updates such as optimizer steps
    are seen).
    """

    def __init__(self, model: nn.Module, batch_size: int, capacity: int):
        if not supports_gpt2_decoding(model):
            raise TypeError(f"GPT2Decoder runs GPT-2 LM head models, not {type(unwrap_peft(model)).__name__}")
        base = unwrap_peft(model)
        config = base.config
        if capacity > config.n_positions:
            raise ValueError(f"capacity {capacity} exceeds the model's {config.n_positions} positions")
        self.transformer = base.transformer
        self.blocks = [
            (
                block,
                _direct(block.ln_1),
                _direct(block.attn.c_attn),
                _direct(block.attn.c_proj),
                _direct(block.ln_2),
                _direct(block.mlp.c_fc),
                _direct(block.mlp.c_proj),
            )
            for block in self.transformer.h
        ]
        self.ln_f = _direct(self.transformer.ln_f)
        self.wte, self.wpe = _direct(self.transformer.wte), _direct(self.transformer.wpe)
        # GPT-2's attention scale (computed here: older transformers keep it inside their attention function).
        self.scales = [
            (config.n_embd // config.n_head) ** -0.5 if config.scale_attn_weights else 1.0 for _ in self.transformer.h
        ]
        if config.scale_attn_by_inverse_layer_idx:
            self.scales = [scale / (layer + 1) for layer, scale in enumerate(self.scales)]
        # gelu_new is tanh-approximated GELU written as five elementwise ops; one fused kernel computes the same.
        self.fused_gelu = config.activation_function in ("gelu_new", "gelu_pytorch_tanh")
        self.lm_head = base.get_output_embeddings()
        self.num_heads = config.n_head
        self.head_dim = config.n_embd // config.n_head
        weight = self.transformer.wte.weight
        shape = (config.n_layer, batch_size, self.num_heads, capacity, self.head_dim)
        self.keys = torch.zeros(shape, dtype=weight.dtype, device=weight.device)
        self.values = torch.zeros(shape, dtype=weight.dtype, device=weight.device)
        self.valid = torch.zeros((batch_size, capacity), dtype=torch.bool, device=weight.device)
        self.lengths = torch.zeros(batch_size, dtype=torch.long, device=weight.device)
        self.capacity = capacity
        self._rows = torch.arange(batch_size, device=weight.device)

    def reset_rows(self, rows: torch.Tensor) -> None:
        """Empty the slots of ``rows``: their next :meth:`step` writes at column 0; :meth:`prefill` refills them."""
        self.lengths[rows] = 0
        self.valid[rows] = False

    def prefill(self, rows: torch.Tensor, input_ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Start ``rows`` afresh with right-padded ``input_ids`` ``(r, P)`` of ``lengths`` real tokens each.

        Returns the next-token logits ``(r, vocab)`` and final hidden states ``(r, hidden)`` at each
        row's last real token.
        """
        width = input_ids.shape[1]
        if width > self.capacity:
            raise ValueError(f"a context of {width} tokens does not fit a slot of {self.capacity}")
        positions = torch.arange(width, device=input_ids.device)
        hidden = self._embed(input_ids, positions)
        for layer, parts in enumerate(self.blocks):
            query, key, value = self._qkv(parts, hidden)
            self.keys[layer, rows, :, :width] = key
            self.values[layer, rows, :, :width] = value
            # Right padding: causal masking alone keeps every real query off the pads after it.
            attended = F.scaled_dot_product_attention(
                query,
                key,
                value,
                is_causal=True,
                dropout_p=self._attention_dropout(parts[0]),
                scale=self.scales[layer],
            )
            hidden = self._finish_block(parts, hidden, attended)
        hidden = self.ln_f(hidden)
        last = hidden[torch.arange(len(rows), device=hidden.device), lengths - 1]
        valid = torch.zeros((len(rows), self.capacity), dtype=torch.bool, device=hidden.device)
        valid[:, :width] = positions < lengths[:, None]
        self.valid[rows] = valid
        self.lengths[rows] = lengths
        return self.lm_head(last), last

    def prefill_left_padded(
        self, rows: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """:meth:`prefill` from left-padded contexts ``(r, L)`` (real tokens last, ``attention_mask`` 1 on them)."""
        lengths = attention_mask.sum(1).clamp(min=1)
        width = int(lengths.max())
        columns = (torch.arange(width, device=input_ids.device) + (input_ids.shape[1] - lengths)[:, None]).clamp(
            max=input_ids.shape[1] - 1
        )
        return self.prefill(rows, input_ids.gather(1, columns), lengths)

    def step(self, tokens: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Append one token ``(batch,)`` to every slot; returns next-token logits and final hidden states."""
        positions = self.lengths
        width = int(positions.max()) + 1
        if width > self.capacity:
            raise ValueError(f"a slot is full ({self.capacity} tokens)")
        self.valid[self._rows, positions] = True
        mask = self.valid[:, None, None, :width]
        hidden = self._embed(tokens, positions)[:, None]
        for layer, parts in enumerate(self.blocks):
            query, key, value = self._qkv(parts, hidden)
            self.keys[layer, self._rows, :, positions] = key[:, :, 0]
            self.values[layer, self._rows, :, positions] = value[:, :, 0]
            attended = F.scaled_dot_product_attention(
                query,
                self.keys[layer, :, :, :width],
                self.values[layer, :, :, :width],
                attn_mask=mask,
                dropout_p=self._attention_dropout(parts[0]),
                scale=self.scales[layer],
            )
            hidden = self._finish_block(parts, hidden, attended)
        hidden = self.ln_f(hidden[:, 0])
        self.lengths = positions + 1
        return self.lm_head(hidden), hidden

    def _embed(self, input_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        hidden = self.wte(input_ids) + self.wpe(positions)
        return self.transformer.drop(hidden) if self.transformer.training else hidden

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
