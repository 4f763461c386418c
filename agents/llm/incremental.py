"""Next-token logits of a causal LM for a batch of left-padded contexts, reusing a KV cache from call to call.

A TextGeneration-v0 observation is the whole context window, so a policy that re-reads it every step
pays for ``L`` tokens per generated token. Between two steps of the same episode, though, the new
observation is the old one shifted left by one column with the agent's token written at the end:
:class:`IncrementalLM` recognises that per row and feeds only the new token, as ``generate`` does.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn

from text_envs.lm import accepts_logits_to_keep, cache_keyword, positions_from_mask
from text_envs_agents.llm.kv_slots import SlotDecoder
from text_envs_agents.llm.slot_decoding import slot_decoder

try:  # transformers >= 4.56 keeps one cache layer object per decoder layer
    from transformers.cache_utils import DynamicLayer
except ImportError:  # pragma: no cover - older transformers: key_cache / value_cache lists
    DynamicLayer = None


class NextToken(NamedTuple):
    """What the LM says about the next token, one row per context."""

    logits: torch.Tensor
    """``(batch, vocab)`` next-token logits (natural-log units, before softmax), in the model's dtype."""
    hidden: torch.Tensor
    """``(batch, hidden_size)`` final hidden state (after the last norm) at the last position."""


@dataclass
class _CacheState:
    """What one batch size's last call left behind: the contexts, their KV cache and their outputs."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    kv_cache: Any
    output: NextToken
    parameters: tuple


class IncrementalLM(nn.Module):
    """A Hugging Face causal LM read as ``(input_ids, attention_mask) -> NextToken``, with a KV cache across calls.

    ``forward`` takes a batch of left-padded contexts of shape ``(batch, L)`` (the newest token last,
    ``attention_mask`` 1 on real tokens) and returns the next-token logits and last hidden state of
    every row, equal (to float rounding, ~1e-5) to a plain full forward with position ids
    ``cumsum(mask) - 1`` clamped at 0.

    ## The cache
    Under ``torch.no_grad()`` (how stable-baselines3 collects rollouts) and with ``use_cache`` on, each
    call keeps the contexts and their KV cache, one entry per batch size (the ``max_cached_batches``
    most recent sizes, so the batch-of-one value calls SB3 makes for truncated episodes do not evict
    the rollout batch). On the next call with that batch size, row by row:

    - **continued**: the new row is the old one shifted left by one column plus one new real token
      (ids and mask), and the column that falls off, the old row's first, is a masked pad. Only the
      new token is fed, at position ``sum(mask) - 1``, attending to the cached ``L`` columns and
      itself; then the oldest cache column is dropped so the cache stays exactly ``L`` columns,
      aligned with the observation. Dropping it changes nothing because it was masked, and the
      cached tokens keep their positions because the position of column ``j`` counts the real
      tokens up to it, which the shift leaves alone when the dropped column is a pad. The env
      truncates an episode when its context is full, so while an episode goes on its first column
      is always a pad; a row whose first column is real (a context slid past a full window) simply
      falls back to a recompute, so the claim is checked on every call rather than assumed.
    - **stale** (a new episode after an autoreset, another env's context): the row is recomputed
      with a full forward of its real tokens, and their keys and values are written into its row
      of the batch cache (its columns left of them are masked pads, so what they hold is never
      read); the other rows' keys and values are untouched. On a CPU this is a second LM call
      over the stale rows only; on CUDA (``merge_restarts="auto"``) it is the same call as the
      continued rows' tokens (see :meth:`_merged_step`), as a call's fixed cost dominates there.

    If no row continues, the cache is missing, the batch size or length changed, or the LM's
    parameters changed since the cache was filled (an optimizer step, ``load_state_dict``, a move to
    another device: checked through each parameter's storage pointer and version counter), the call
    is a full forward of the whole batch, which refills the cache. A call whose rows all equal the
    previous call's returns the previous outputs without running the LM. With gradients enabled, or
    ``use_cache=False``, every call is a plain full forward of all ``L`` columns and the cache is
    neither read nor written.

    **Models with a slot decoder** (GPT-2, the embedded default among them, and the Llama family:
    :func:`~text_envs_agents.llm.slot_decoding.slot_decoder`) keep their cache in a
    :class:`~text_envs_agents.llm.kv_slots.SlotDecoder` instead, unless restarts are merged: one preallocated
    slot per row holding that row's real tokens from column 0, so a continued row writes its new
    token's keys and values in place (no shifting, no concatenation) and a stale row's slot is
    refilled from its real tokens in a second, small call. The decision rules above are the same.
    Contexts must be left-padded (pads, then real tokens) for slots; other masks take full forwards.

    Caches other than transformers' ``DynamicCache`` of full-attention layers (sliding-window or
    recurrent layers) cannot be shifted this way: such models get full forwards, with a warning.

    ## Arguments
    - ``model``: a Hugging Face causal LM (or a ``peft`` model wrapping one); its parameters are
      listed once, here, for the change check.
    - ``use_cache`` (True): the default of ``forward``'s ``use_cache``.
    - ``max_cached_batches`` (2): how many batch sizes keep a cache.
    - ``merge_restarts``: ``True``, ``False`` or ``"auto"`` (CUDA only): recompute stale rows in
      the continued rows' call.

    ## Counters
    ``continued_rows`` and ``recomputed_rows`` count rows that took each path (full-batch forwards
    included in ``recomputed_rows``); ``repeated_calls`` counts calls answered from the last outputs;
    ``lm_calls`` counts calls of the LM itself (full forwards included).
    """

    def __init__(
        self,
        model: nn.Module,
        use_cache: bool = True,
        max_cached_batches: int = 2,
        merge_restarts: bool | str = "auto",
    ):
        super().__init__()
        if max_cached_batches < 1:
            raise ValueError(f"max_cached_batches must be at least 1, got {max_cached_batches}")
        if merge_restarts not in (True, False, "auto"):
            raise ValueError(f"merge_restarts must be True, False or 'auto', got {merge_restarts!r}")
        self.model = model
        self.use_cache = use_cache
        self.merge_restarts = merge_restarts
        self.max_cached_batches = max_cached_batches
        self._cache_keyword, self._logits_to_keep = cache_keyword(model), accepts_logits_to_keep(model)
        self._model_parameters = list(model.parameters())  # listed once: walking the modules each call is slow
        self._states: OrderedDict[int, _CacheState] = OrderedDict()
        self.continued_rows = 0
        self.recomputed_rows = 0
        self.repeated_calls = 0
        self.lm_calls = 0

    def reset_cache(self) -> None:
        """Forget every cached context (the next call is a full forward)."""
        self._states.clear()

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, use_cache: bool | None = None
    ) -> NextToken:
        """Next-token logits and last hidden state of each left-padded row; ``use_cache`` overrides the default."""
        input_ids, attention_mask = input_ids.long(), attention_mask.long()
        if input_ids.dim() != 2 or input_ids.shape != attention_mask.shape:
            raise ValueError(
                f"input_ids and attention_mask must both be (batch, length), got {tuple(input_ids.shape)} "
                f"and {tuple(attention_mask.shape)}"
            )
        caching = self.use_cache if use_cache is None else use_cache
        if not caching or torch.is_grad_enabled():
            output, _ = self._full_forward(input_ids, attention_mask, keep_cache=False, trim=False)
            return output
        return self._cached_forward(input_ids, attention_mask)

    def _cached_forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> NextToken:
        batch = input_ids.shape[0]
        parameters = self._parameter_versions()
        state = self._states.pop(batch, None)
        if state is not None and (
            state.parameters != parameters
            or state.input_ids.shape != input_ids.shape
            or state.input_ids.device != input_ids.device
        ):
            state = None

        if state is not None:
            old_ids, old_mask = state.input_ids, state.attention_mask
            continued = (
                (old_mask[:, 0] == 0)
                & (attention_mask[:, -1] == 1)
                & (input_ids[:, :-1] == old_ids[:, 1:]).all(dim=1)
                & (attention_mask[:, :-1] == old_mask[:, 1:]).all(dim=1)
            )
            stale_rows = torch.nonzero(~continued).squeeze(1)
            # A repeated row never passes the shift test (its mask would have to be constant, yet start with a
            # pad and end with a token), so repeats need checking only when no row continued.
            if len(stale_rows) == batch and torch.equal(input_ids, old_ids) and torch.equal(attention_mask, old_mask):
                self.repeated_calls += 1
                self._remember(batch, state)
                return state.output
            if len(stale_rows) < batch and isinstance(state.kv_cache, SlotDecoder):
                if _left_padded(attention_mask):
                    output = self._slot_step(state.kv_cache, input_ids, attention_mask, stale_rows)
                    self.continued_rows += batch - len(stale_rows)
                    self.recomputed_rows += len(stale_rows)
                    self._remember(batch, _CacheState(input_ids, attention_mask, state.kv_cache, output, parameters))
                    return output
            elif len(stale_rows) < batch:
                step = self._merged_step if len(stale_rows) and self._merge(input_ids) else self._step
                output, kv_cache = step(input_ids, attention_mask, old_mask, state.kv_cache, continued, stale_rows)
                if kv_cache is not None:
                    self.continued_rows += batch - len(stale_rows)
                    self.recomputed_rows += len(stale_rows)
                    self._remember(batch, _CacheState(input_ids, attention_mask, kv_cache, output, parameters))
                    return output

        decoder = (
            None
            if self._merge(input_ids) or not _left_padded(attention_mask)
            else slot_decoder(self.model, batch, input_ids.shape[1])
        )
        if decoder is not None:
            output = NextToken(
                *decoder.prefill_left_padded(torch.arange(batch, device=input_ids.device), input_ids, attention_mask)
            )
            self.lm_calls += 1
            self.recomputed_rows += batch
            self._remember(batch, _CacheState(input_ids, attention_mask, decoder, output, parameters))
            return output
        output, kv_cache = self._full_forward(input_ids, attention_mask, keep_cache=True)
        self.recomputed_rows += batch
        if kv_cache is not None and _kv_tensors(kv_cache) is not None:
            self._remember(batch, _CacheState(input_ids, attention_mask, kv_cache, output, parameters))
        elif self.use_cache:
            warnings.warn(
                f"{type(self.model).__name__} returns a {type(kv_cache).__name__} that IncrementalLM cannot shift "
                "(only DynamicCache of full-attention layers can); falling back to full forwards",
                stacklevel=3,
            )
            self.use_cache = False
        return output

    def _slot_step(
        self, decoder: SlotDecoder, input_ids: torch.Tensor, attention_mask: torch.Tensor, stale_rows: torch.Tensor
    ) -> NextToken:
        """Feed every row's newest token into its slot, then restart the stale rows' slots from their contexts."""
        if len(stale_rows) and decoder.max_length >= decoder.capacity:
            decoder.reset_rows(stale_rows)  # a stale row's full slot: its step is overwritten by the refill anyway
        output = NextToken(*decoder.step(input_ids[:, -1]))
        self.lm_calls += 1
        if len(stale_rows):
            fresh = decoder.prefill_left_padded(stale_rows, input_ids[stale_rows], attention_mask[stale_rows])
            self.lm_calls += 1
            output.logits[stale_rows], output.hidden[stale_rows] = fresh
        return output

    def _merge(self, input_ids: torch.Tensor) -> bool:
        """Whether to recompute the stale rows in the same LM call as the continued rows' new tokens.

        One call of ``width`` tokens per row saves a second call's fixed cost (Python, kernel
        launches), which is what a GPU step costs; but it feeds ``batch * width`` tokens instead of
        ``batch + stale * width``, which on a CPU costs more than the call it saves (measured with the
        embedded LM: about 0.6x the throughput). ``"auto"`` merges on CUDA only.
        """
        return input_ids.is_cuda if self.merge_restarts == "auto" else bool(self.merge_restarts)

    def _merged_step(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        old_mask: torch.Tensor,
        kv_cache: Any,
        continued: torch.Tensor,
        stale_rows: torch.Tensor,
    ) -> tuple[NextToken, Any]:
        """One LM call: continued rows feed their newest token after their cache, stale rows their real tokens.

        Every row feeds its last ``width`` columns. A continued row masks all but the newest (they are
        cached already); a stale row masks its whole cache (the old episode) and reads only its new
        tokens. The cache then holds ``L + width`` columns, and each row keeps ``L`` of them: a
        continued row its old columns ``1..L-1`` and the new token, a stale row the last ``L`` (its
        real tokens are in the last ``width``, the rest are masked).
        """
        batch, length = input_ids.shape
        width = max(int(attention_mask[stale_rows].sum(dim=1).max()), 1) if len(stale_rows) else 1
        step_mask = attention_mask[:, -width:].clone()
        step_mask[continued, :-1] = 0
        cache_mask = old_mask.clone()
        cache_mask[stale_rows] = 0
        positions = positions_from_mask(attention_mask)[:, -width:]
        output, kv_cache = self._call(
            input_ids[:, -width:], torch.cat([cache_mask, step_mask], dim=1), positions, kv_cache, keep_cache=True
        )
        tensors = _kv_tensors(kv_cache)
        if tensors is None:
            return output, None
        device = input_ids.device
        keep = torch.arange(width, length + width, device=device).expand(batch, length).clone()
        keep[continued] = torch.cat(
            [torch.arange(1, length, device=device), torch.tensor([length + width - 1], device=device)]
        )
        gathered = []
        for pair in tensors:
            index = keep[:, None, :, None].expand(-1, pair[0].shape[1], -1, pair[0].shape[3])
            gathered.append([t.gather(2, index) for t in pair])
        _set_kv_tensors(kv_cache, gathered)
        return output, kv_cache

    def _step(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        old_mask: torch.Tensor,
        kv_cache: Any,
        continued: torch.Tensor,
        stale_rows: torch.Tensor,
    ) -> tuple[NextToken, Any]:
        """Feed every row's newest token after the cache, drop the oldest column, recompute ``stale_rows``."""
        batch = input_ids.shape[0]
        # Stale rows are fed too (one token is cheaper than slicing the cache) and overwritten below;
        # their step mask ends in 1 so that no query row is fully masked.
        step_mask = torch.cat([old_mask, attention_mask.new_ones(batch, 1)], dim=1)
        positions = (attention_mask.sum(dim=1, keepdim=True) - 1).clamp(min=0)
        output, kv_cache = self._call(input_ids[:, -1:], step_mask, positions, kv_cache, keep_cache=True)
        tensors = _kv_tensors(kv_cache)
        if tensors is None:
            return output, None
        length = input_ids.shape[1]
        tensors = [[t[:, :, -length:] for t in pair] for pair in tensors]
        if len(stale_rows):
            # Only the columns holding some stale row's real tokens are recomputed and written; the
            # columns left of them stay as they were, which is harmless as they are masked pads in these rows.
            kept = max(int(attention_mask[stale_rows].sum(dim=1).max()), 1)
            fresh, fresh_cache = self._full_forward(
                input_ids[stale_rows, -kept:], attention_mask[stale_rows, -kept:], keep_cache=True, trim=False
            )
            fresh_tensors = _kv_tensors(fresh_cache)
            if fresh_tensors is None:
                return output, None
            for pair, fresh_pair in zip(tensors, fresh_tensors, strict=True):
                for tensor, fresh_tensor in zip(pair, fresh_pair, strict=True):
                    tensor[stale_rows, :, -kept:] = fresh_tensor
            output.logits[stale_rows] = fresh.logits
            output.hidden[stale_rows] = fresh.hidden
        _set_kv_tensors(kv_cache, tensors)
        return output, kv_cache

    def full_forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, trim_padding: bool = True
    ) -> NextToken:
        """A full forward (with gradients if enabled), not touching the cache.

        ``trim_padding`` skips the leading columns that are padding in every row: they are masked,
        so the outputs are the same, and a batch of short contexts in a long window costs less.
        """
        output, _ = self._full_forward(input_ids.long(), attention_mask.long(), keep_cache=False, trim=trim_padding)
        return output

    def _full_forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, keep_cache: bool, trim: bool = True
    ) -> tuple[NextToken, Any]:
        """Full forward; with ``keep_cache`` the cache is left-padded back to all ``L`` columns."""
        length = input_ids.shape[1]
        if trim:
            kept = max(int(attention_mask.sum(dim=1).max()), 1)
            input_ids, attention_mask = input_ids[:, -kept:], attention_mask[:, -kept:]
        output, kv_cache = self._call(input_ids, attention_mask, positions_from_mask(attention_mask), None, keep_cache)
        tensors = _kv_tensors(kv_cache) if keep_cache else None
        if tensors is not None and input_ids.shape[1] < length:
            # Zeros for the skipped columns: they are masked pads, so their keys and values are never read.
            padding = (0, 0, length - input_ids.shape[1], 0)
            _set_kv_tensors(kv_cache, [[nn.functional.pad(t, padding) for t in pair] for pair in tensors])
        return output, kv_cache

    def _call(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
        kv_cache: Any,
        keep_cache: bool,
    ) -> tuple[NextToken, Any]:
        kwargs: dict[str, Any] = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "position_ids": position_ids,
            "output_hidden_states": True,
            "use_cache": keep_cache,
        }
        if self._logits_to_keep:
            kwargs["logits_to_keep"] = 1
        if kv_cache is not None:
            kwargs[self._cache_keyword] = kv_cache
        output = self.model(**kwargs)
        self.lm_calls += 1
        new_cache = None
        if keep_cache:
            new_cache = output["cache"] if "cache" in output.keys() else output.get("past_key_values")
        # contiguous(): without logits_to_keep the logits are (batch, seq, vocab); keep only the last position alive.
        logits, hidden = output.logits[:, -1].contiguous(), output.hidden_states[-1][:, -1].contiguous()
        return NextToken(logits, hidden), new_cache

    def _remember(self, batch: int, state: _CacheState) -> None:
        self._states[batch] = state
        while len(self._states) > self.max_cached_batches:
            self._states.popitem(last=False)

    def _parameter_versions(self) -> tuple:
        # In-place updates (optimizer steps, load_state_dict) bump _version; .data swaps move data_ptr.
        return tuple((p.data_ptr(), p._version) for p in self._model_parameters)


def _left_padded(attention_mask: torch.Tensor) -> bool:
    """Whether every row is pads then real tokens (what slot decoding assumes), not real tokens with gaps."""
    return bool((attention_mask[:, 1:] >= attention_mask[:, :-1]).all())


def _kv_tensors(kv_cache: Any) -> list[list[torch.Tensor]] | None:
    """``[[keys, values], ...]`` per layer, each ``(batch, heads, seq, head_dim)``; None for caches we cannot shift."""
    layers = getattr(kv_cache, "layers", None)
    if layers is not None:
        if DynamicLayer is None or any(type(layer) is not DynamicLayer for layer in layers):
            return None
        if any(not getattr(layer, "is_initialized", True) for layer in layers):
            return None
        return [[layer.keys, layer.values] for layer in layers]
    if hasattr(kv_cache, "key_cache") and hasattr(kv_cache, "value_cache"):
        return [[k, v] for k, v in zip(kv_cache.key_cache, kv_cache.value_cache, strict=True)]
    return None


def _set_kv_tensors(kv_cache: Any, tensors: list[list[torch.Tensor]]) -> None:
    layers = getattr(kv_cache, "layers", None)
    if layers is not None:
        for layer, (keys, values) in zip(layers, tensors, strict=True):
            layer.keys, layer.values = keys, values
    else:
        kv_cache.key_cache[:] = [keys for keys, _ in tensors]
        kv_cache.value_cache[:] = [values for _, values in tensors]
