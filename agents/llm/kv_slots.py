"""The preallocated KV cache with one slot per row, and the decoding loop every architecture's slot decoder shares.

On a CPU a decoding step of a small model is mostly fixed cost: Hugging Face's forward builds
attention masks and grows a ``DynamicCache`` by concatenation (a copy of every layer's keys and
values per token). A slot decoder runs the same modules of the same model (so LoRA adapters,
``disable_adapter()`` and dropout behave as in the model's own forward) but writes each new key and
value into a preallocated buffer and attends with one boolean mask.

Each row of the batch owns a slot: its tokens sit in columns ``0 .. length - 1`` (no padding on the
left), so a token's column is its position id, and rows may restart independently
(:meth:`SlotDecoder.prefill` on some rows while the others continue).

:class:`SlotDecoder` holds the slots and the prefill / step skeleton; a subclass supplies one
architecture's block math (:meth:`SlotDecoder._hidden_states`); the LM head is the model's own.
:mod:`~text_envs_agents.llm.slot_decoding` picks the subclass for a model.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import nn
from torch.nn import functional as F
from transformers import activations
from transformers.pytorch_utils import Conv1D

Attention = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor, float, float], torch.Tensor]
"""``(layer, query, key, value, scale, dropout_p) -> attended``: queries ``(batch, heads, length, head_dim)``,
keys and values ``(batch, kv_heads, length, head_dim)`` of the tokens being fed; writes them into the slots
and returns the attention output in the queries' shape."""


def _conv1d(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.addmm(bias, x.reshape(-1, x.shape[-1]), weight).view(*x.shape[:-1], weight.shape[1])


def direct_call(module: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``module``'s function without ``nn.Module.__call__``'s hooks machinery when it is a plain ``Linear``,
    GPT-2 ``Conv1D``, ``Embedding``, ``LayerNorm`` or SiLU (a few microseconds a call,
    about a tenth of a step of a small model); any other module (a LoRA layer, say) is called as it is."""
    kind = type(module)
    if kind is nn.Linear:
        return partial(F.linear, weight=module.weight, bias=module.bias)
    if kind is Conv1D:
        return partial(_conv1d, module.weight, module.bias)
    if kind is nn.Embedding and module.max_norm is None:
        return partial(F.embedding, weight=module.weight)
    if kind is nn.LayerNorm:
        return partial(
            F.layer_norm,
            normalized_shape=module.normalized_shape,
            weight=module.weight,
            bias=module.bias,
            eps=module.eps,
        )
    # transformers 5 wraps SiLU in its own class; older versions use nn.SiLU itself.
    if kind in (nn.SiLU, getattr(activations, "SiLUActivation", nn.SiLU)):
        return F.silu
    return module


def _wide_linear(weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.mm(weight, x.t()).t().contiguous()


def lm_head_call(module: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The LM head's function of a few rows of final hidden states ``(rows, hidden)``.

    A plain bias-free ``Linear`` (most LMs' head) is computed as ``(weight @ hidden.T).T``: MKL streams a
    wide weight (SmolLM2's is 49,152 x 576, a fifth of the model) faster as the left operand than as
    ``hidden @ weight.T``, about 1.6x for 8 rows on one CPU thread, and the head is the largest matmul
    of a step (on the CPU only: elsewhere it would add a transpose copy). Other modules go through
    :func:`direct_call`.
    """
    if type(module) is nn.Linear and module.bias is None and module.weight.device.type == "cpu":
        return partial(_wide_linear, module.weight)
    return direct_call(module)


class SlotDecoder:
    """Next-token logits and final hidden states of a causal LM, one preallocated KV slot per row.

    ``capacity`` is the longest context (tokens) a slot holds. Outputs equal the model's own forward
    with position ids counting each row's tokens from 0, to float rounding (~1e-5). Run it under
    ``torch.no_grad()``; it keeps no autograd graph across calls. It holds the model's parameter
    tensors, so make a new decoder after replacing them (in-place updates such as optimizer steps
    are seen). Keys and values stay at the model's ``kv_heads`` (grouped-query attention is not
    expanded), on the device of ``like`` and in its dtype, or in the autocast dtype when the decoder is built
    under autocast.
    """

    def __init__(
        self,
        *,
        batch_size: int,
        capacity: int,
        num_layers: int,
        kv_heads: int,
        head_dim: int,
        lm_head: nn.Module,
        like: torch.Tensor,
    ):
        self._logits = lm_head_call(lm_head)
        shape = (num_layers, batch_size, kv_heads, capacity, head_dim)
        device = like.device
        # Under autocast the keys and values come out in the autocast dtype; slots in that dtype save the per-step
        # cast of the whole cache that attention would otherwise make.
        dtype = torch.get_autocast_dtype(device.type) if torch.is_autocast_enabled(device.type) else like.dtype
        self.keys = torch.zeros(shape, dtype=dtype, device=device)
        self.values = torch.zeros(shape, dtype=dtype, device=device)
        self.valid = torch.zeros((batch_size, capacity), dtype=torch.bool, device=like.device)
        self.lengths = torch.zeros(batch_size, dtype=torch.long, device=like.device)
        self.max_length = 0
        """``lengths.max()`` kept on the host, so that a step reads nothing back from the device"""
        self.capacity = capacity
        self._rows = torch.arange(batch_size, device=like.device)

    @staticmethod
    def max_positions(model: nn.Module) -> int:
        """The positions ``model`` reads, 0 when this class does not run its architecture."""
        raise NotImplementedError

    @staticmethod
    def refusal(model: nn.Module, capacity: int) -> str | None:
        """Why slots of ``capacity`` tokens cannot decode ``model`` (an architecture this class runs) exactly;
        None when they can."""
        raise NotImplementedError

    def _hidden_states(self, input_ids: torch.Tensor, positions: torch.Tensor, attend: Attention) -> torch.Tensor:
        """Final hidden states (after the last norm) ``(r, length, hidden)`` of ``input_ids`` ``(r, length)``.

        ``positions`` (``(1, length)`` or ``(r, 1)``, broadcast against ``input_ids``) are the tokens'
        position ids; every block's attention goes through ``attend``.
        """
        raise NotImplementedError

    def reset_rows(self, rows: torch.Tensor) -> None:
        """Empty the slots of ``rows``: their next :meth:`step` writes at column 0; :meth:`prefill` refills them."""
        self.lengths[rows] = 0
        self.valid[rows] = False
        self.max_length = int(self.lengths.max())

    def prefill(self, rows: torch.Tensor, input_ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Start ``rows`` afresh with right-padded ``input_ids`` ``(r, P)`` of ``lengths`` real tokens each.

        Returns the next-token logits ``(r, vocab)`` and final hidden states ``(r, hidden)`` at each
        row's last real token.
        """
        width = input_ids.shape[1]
        if width > self.capacity:
            raise ValueError(f"a context of {width} tokens does not fit a slot of {self.capacity}")
        positions = torch.arange(width, device=input_ids.device)
        hidden = self._hidden_states(input_ids, positions[None], partial(self._attend_prefill, rows, width))
        last = hidden[torch.arange(len(rows), device=hidden.device), lengths - 1]
        valid = torch.zeros((len(rows), self.capacity), dtype=torch.bool, device=hidden.device)
        valid[:, :width] = positions < lengths[:, None]
        self.valid[rows] = valid
        self.lengths[rows] = lengths
        self.max_length = int(self.lengths.max())
        return self._logits(last), last

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
        width = self.max_length + 1
        if width > self.capacity:
            raise ValueError(f"a slot is full ({self.capacity} tokens)")
        self.valid[self._rows, positions] = True
        attend = partial(self._attend_step, positions, self.valid[:, None, None, :width], width)
        hidden = self._hidden_states(tokens[:, None], positions[:, None], attend)[:, 0]
        self.lengths = positions + 1
        self.max_length = width
        return self._logits(hidden), hidden

    def _attend_prefill(
        self,
        rows: torch.Tensor,
        width: int,
        layer: int,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        scale: float,
        dropout_p: float,
    ) -> torch.Tensor:
        # A decoder built outside autocast keeps the weights' dtype while autocast projections come out in bf16.
        self.keys[layer, rows, :, :width] = key.to(self.keys.dtype)
        self.values[layer, rows, :, :width] = value.to(self.values.dtype)
        # Right padding: causal masking alone keeps every real query off the pads after it.
        return F.scaled_dot_product_attention(
            query,
            key,
            value,
            is_causal=True,
            dropout_p=dropout_p,
            scale=scale,
            enable_gqa=query.shape[1] != key.shape[1],
        )

    def _attend_step(
        self,
        positions: torch.Tensor,
        mask: torch.Tensor,
        width: int,
        layer: int,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        scale: float,
        dropout_p: float,
    ) -> torch.Tensor:
        self.keys[layer, self._rows, :, positions] = key[:, :, 0].to(self.keys.dtype)
        self.values[layer, self._rows, :, positions] = value[:, :, 0].to(self.values.dtype)
        batch, heads, _, head_dim = query.shape
        kv_heads = key.shape[1]
        # Grouped-query attention without expanding the cache: query head h reads kv head h // (heads / kv_heads),
        # and with one new token per row the queries sharing a kv head attend as one group of queries with one mask.
        grouped = query.reshape(batch, kv_heads, heads // kv_heads, head_dim)
        attended = F.scaled_dot_product_attention(
            grouped,
            self.keys[layer, :, :, :width],
            self.values[layer, :, :, :width],
            attn_mask=mask,
            dropout_p=dropout_p,
            scale=scale,
        )
        return attended.reshape(query.shape)
