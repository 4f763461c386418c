"""Sampling whole episodes from a causal LM through a TextGeneration vector env, and teacher-forcing them.

Shared by :class:`~text_envs_agents.text_ppo.TextPPO` and :mod:`text_envs_agents.llm.evaluation`: the LM samples
one token per env step for every env at once, feeding only the new token through its KV cache; the env keeps the
contexts and scores each finished completion (one batched reward-model call per step).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import torch
from torch import nn

from text_envs.generation.vector_env import TextGenerationVectorEnv
from text_envs.lm import accepts_logits_to_keep, output_with_cache, positions_from_mask, unwrap_peft
from text_envs_agents.llm.sampling import sample_tokens
from text_envs_agents.llm.slot_decoding import slot_decoder


@dataclass
class RolloutBatch:
    """One episode per env: left-padded prompts, right-padded completions, reward-model scores.

    ``logprobs`` are the sampling policy's ``log π(token)`` of each completion token (nats, at the
    sampling temperature) and ``values`` its value estimates before each token, both ``(batch, length)``
    and recorded while sampling; ``values`` is None when no value head was given. The tensors live on
    the model's device; ``prompt_lengths`` (the prompt mask's row sums) and ``completion_lengths`` (the
    tokens after the prompt) are Python ints, known on the host from the env, so that packing the batch
    waits for no device.

    The completion mask marks the tokens the policy chose. In a completion of TextGeneration-v0 that is
    every token, so ``completion_lengths`` are its row sums; in a whole game
    (:mod:`~text_envs_agents.llm.game_rollout`) the opponent's replies and the boards between the agent's
    moves are part of the completion but not of the mask.
    """

    prompt_ids: torch.Tensor  # (batch, longest prompt), left-padded
    prompt_mask: torch.Tensor
    completion_ids: torch.Tensor  # (batch, longest completion), right-padded with pad ids
    completion_mask: torch.Tensor  # 1 for the policy's tokens (the stop token included), 0 for env text and padding
    scores: torch.Tensor  # (batch,)
    prompts: list[str]
    completions: list[str]
    prompt_lengths: list[int]
    completion_lengths: list[int]
    logprobs: torch.Tensor
    values: torch.Tensor | None = None

    def to(self, device: torch.device) -> RolloutBatch:
        """This batch with its tensors on ``device`` (itself when they are there already)."""
        if self.prompt_ids.device == device:
            return self
        return RolloutBatch(
            **{
                name: value.to(device) if isinstance(value, torch.Tensor) else value
                for name, value in vars(self).items()
                if name in RolloutBatch.__dataclass_fields__
            }
        )

    def select(self, rows: torch.Tensor) -> RolloutBatch:
        """The episodes at ``rows`` (a CPU index tensor)."""
        chosen = rows.tolist()
        rows = rows.to(self.prompt_ids.device)
        return RolloutBatch(
            self.prompt_ids[rows],
            self.prompt_mask[rows],
            self.completion_ids[rows],
            self.completion_mask[rows],
            self.scores[rows],
            [self.prompts[i] for i in chosen],
            [self.completions[i] for i in chosen],
            [self.prompt_lengths[i] for i in chosen],
            [self.completion_lengths[i] for i in chosen],
            self.logprobs[rows],
            None if self.values is None else self.values[rows],
        )

    @cached_property
    def packed(self) -> PackedSequences:
        """:func:`pack_sequences` of this batch, built once however many forwards read it."""
        return pack_sequences(self)


def filler_token(env: TextGenerationVectorEnv) -> int:
    """A token that ends no episode: fed to envs whose episode is over while the batch finishes."""
    stop = env.task.stop_token_ids
    return next(t for t in (env.task.pad_token_id, *range(env.task.vocab_size)) if t not in stop)


class _CachedSampler:
    """Next-token logits and final hidden states of a batch that grows by one token per row per call.

    Models with a slot decoder (:func:`~text_envs_agents.llm.slot_decoding.slot_decoder`: GPT-2, Llama, Qwen2,
    Mistral) run on it (preallocated KV slots); others on their own forward with a ``DynamicCache``. Both give
    the model's full-forward outputs to float rounding, on the model's device.
    """

    def __init__(self, model: nn.Module, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, max_new: int):
        self.model = model
        self.mask = prompt_mask.clone()
        # A capacity past the model's positions is refused by slot_decoder: such a model (RoPE extrapolates)
        # decodes on its own forward instead.
        self.decoder = slot_decoder(model, len(prompt_ids), prompt_ids.shape[1] + max_new)
        if self.decoder is not None:
            self.next = self.decoder.prefill_left_padded(
                torch.arange(len(prompt_ids), device=prompt_ids.device), prompt_ids, prompt_mask
            )
        else:
            self.next, self.kv_cache = self._forward(prompt_ids, None, positions_from_mask(self.mask))

    def step(self, tokens: torch.Tensor, running: torch.Tensor) -> None:
        if self.decoder is not None:
            if self.decoder.max_length >= self.decoder.capacity:
                # Finished rows keep being fed filler; empty their slots rather than let them overflow.
                self.decoder.reset_rows(~running)
            self.next = self.decoder.step(tokens)
            return
        self.mask = torch.cat([self.mask, self.mask.new_ones((len(tokens), 1))], dim=1)
        self.next, self.kv_cache = self._forward(tokens[:, None], self.kv_cache, self.mask.sum(-1, keepdim=True) - 1)

    def _forward(self, input_ids: torch.Tensor, kv_cache, positions: torch.Tensor):
        output, kv_cache = output_with_cache(
            self.model,
            input_ids,
            kv_cache,
            attention_mask=self.mask,
            position_ids=positions,
            output_hidden_states=True,
        )
        return (output.logits[:, -1], output.hidden_states[-1][:, -1]), kv_cache


@torch.no_grad()
def sample_episodes(
    model: nn.Module,
    env: TextGenerationVectorEnv,
    seed: int | None,
    generator: torch.Generator,
    temperature: float = 1.0,
    value_head: nn.Module | None = None,
    prompt_index: np.ndarray | None = None,
) -> RolloutBatch:
    """One episode in every env of ``env``, sampled from ``model`` with its KV cache.

    ``prompt_index`` (one index into the env's prompt list per env) picks the prompts instead of the
    env's seeded draw.

    Envs whose episode ended keep being stepped with a filler token until the whole batch is done
    (the env restarts them; those second episodes are ignored and cannot finish within the batch).
    The log-probs of the sampled tokens, and the values of ``value_head`` (a module mapping final
    hidden states to one value each) when given, are recorded on the way.

    Everything runs on the model's device (``generator`` must live there too); the env boundary is
    crossed once per step for the whole batch: the sampled tokens go to the env as one numpy array,
    and which episodes ended comes back as one, kept on the host where the env reports it.
    """
    device = next(model.parameters()).device
    n, max_new = env.num_envs, env.task.max_new_tokens
    options = None if prompt_index is None else {"prompt_index": prompt_index}
    observations, info = env.reset(seed=seed, options=options)
    prompts = [str(p) for p in info["prompt"]]
    prompt_lengths = observations["attention_mask"].sum(1)
    # The env pads every context to its full window; only the columns of the longest prompt matter.
    width = int(prompt_lengths.max())
    prompt_ids = torch.as_tensor(observations["input_ids"][:, -width:], device=device)
    prompt_mask = torch.as_tensor(observations["attention_mask"][:, -width:], device=device)
    completion = torch.full((n, max_new), env.task.pad_token_id, dtype=torch.long, device=device)
    completion_mask = torch.zeros((n, max_new), dtype=torch.long, device=device)
    logprobs = torch.zeros((n, max_new), device=device)
    values = torch.zeros((n, max_new), device=device) if value_head is not None else None
    scores = np.zeros(n)
    texts = [""] * n
    running = np.ones(n, dtype=bool)
    completion_lengths = np.zeros(n, dtype=np.int64)
    running_rows = torch.ones(n, dtype=torch.bool, device=device)  # ``running`` on the device
    filler = torch.full((n,), filler_token(env), dtype=torch.long, device=device)
    sampler = _CachedSampler(model, prompt_ids, prompt_mask, max_new)
    for step in range(max_new):
        logits, hidden = sampler.next
        log_probabilities = torch.log_softmax(logits.float() / temperature, dim=-1)
        tokens = torch.where(running_rows, sample_tokens(log_probabilities, generator), filler)
        completion[:, step] = torch.where(running_rows, tokens, env.task.pad_token_id)
        completion_mask[:, step] = running_rows
        logprobs[:, step] = log_probabilities.gather(1, tokens[:, None])[:, 0]
        if values is not None:
            values[:, step] = value_head(hidden).squeeze(-1)
        _, rewards, terminated, truncated, info = env.step(tokens.cpu().numpy())
        completion_lengths += running
        ended = (terminated | truncated) & running
        for i in np.flatnonzero(ended):
            scores[i], texts[i] = float(rewards[i]), info["completion"][i]
        running &= ~ended
        if not running.any():
            kept = step + 1
            break
        running_rows = torch.tensor(running, device=device)
        sampler.step(tokens, running_rows)
    else:
        kept = max_new
    return RolloutBatch(
        prompt_ids,
        prompt_mask,
        completion[:, :kept],
        completion_mask[:, :kept],
        torch.as_tensor(scores, dtype=torch.float32, device=device),
        prompts,
        texts,
        prompt_lengths.tolist(),
        completion_lengths.tolist(),
        logprobs[:, :kept] * completion_mask[:, :kept],
        None if values is None else values[:, :kept] * completion_mask[:, :kept],
    )


def completion_window(batch: RolloutBatch) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """Prompt + completion ids and attention mask, and the slice ``[start, end)`` of logits that predict the completion.

    The attention mask covers every token of the completion span (a game's board text too), not only the
    trained ones the completion mask marks.
    """
    input_ids = torch.cat([batch.prompt_ids, batch.completion_ids], dim=1)
    steps = torch.arange(batch.completion_ids.shape[1], device=input_ids.device)
    span = steps < torch.as_tensor(batch.completion_lengths, device=input_ids.device)[:, None]
    mask = torch.cat([batch.prompt_mask, span.to(batch.prompt_mask.dtype)], dim=1)
    start = batch.prompt_ids.shape[1] - 1  # the logits at position p predict token p + 1
    return input_ids, mask, start, input_ids.shape[1] - 1


@dataclass
class PackedSequences:
    """Prompt + completion sequences without their padding, two or so per row, for one teacher-forced forward.

    ``position_ids`` restart at 0 at each sequence, which Hugging Face models that build their masks with
    ``transformers.masking_utils`` read as separate sequences (block-diagonal causal attention) when
    called without an attention mask and with ``use_cache=False``.
    ``index`` ``(batch, completion length)`` holds, for each completion token, the flat position
    (``row * width + column``) whose outputs predict it; padding tokens point at their row's first one.
    """

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    index: torch.Tensor


def pack_sequences(batch: RolloutBatch) -> PackedSequences:
    """Pack ``batch``'s real tokens into ``ceil(batch / 2)`` rows, longest sequences first onto the shortest row.

    A padded batch of short completions beside one long one is mostly padding (about 40% in TextPPO's
    benchmark); packing removes it, and two sequences a row keep attention's quadratic cost small.
    The layout is planned on the host from the batch's host-side lengths, and the tokens are gathered
    into it with one indexing call on the device. A row's columns past its last sequence hold the
    first sequence's first token at position 0 (no real token reads them).
    """
    prompt_lengths, completion_lengths = batch.prompt_lengths, batch.completion_lengths
    totals = [p + c for p, c in zip(prompt_lengths, completion_lengths, strict=True)]
    rows = (len(totals) + 1) // 2
    contents: list[list[int]] = [[] for _ in range(rows)]
    loads = [0] * rows
    for sequence in sorted(range(len(totals)), key=lambda i: -totals[i]):
        row = loads.index(min(loads))
        contents[row].append(sequence)
        loads[row] += totals[sequence]
    width = max(loads)
    prompt_width, sequence_width = batch.prompt_ids.shape[1], batch.prompt_ids.shape[1] + batch.completion_ids.shape[1]
    # Flat indices into the padded prompt + completion batch. The filler past a row's last sequence is the
    # first sequence's first real token: a row ending in the pad token, without a mask, makes transformers warn.
    source = np.full((rows, width), prompt_width - prompt_lengths[0], dtype=np.int64)
    positions = np.zeros((rows, width), dtype=np.int64)
    starts = np.zeros(len(totals), dtype=np.int64)  # flat position of each sequence's last prompt token
    for row, sequences in enumerate(contents):
        offset = 0
        for i in sequences:
            first = i * sequence_width + prompt_width - prompt_lengths[i]
            source[row, offset : offset + totals[i]] = np.arange(first, first + totals[i])
            positions[row, offset : offset + totals[i]] = np.arange(totals[i])
            starts[i] = row * width + offset + prompt_lengths[i] - 1
            offset += totals[i]
    steps = np.arange(batch.completion_ids.shape[1])
    index = starts[:, None] + np.where(steps < np.asarray(completion_lengths)[:, None], steps, 0)
    device = batch.prompt_ids.device
    tokens = torch.cat([batch.prompt_ids, batch.completion_ids], dim=1).flatten()
    return PackedSequences(
        tokens[torch.as_tensor(source, device=device)],
        torch.as_tensor(positions, device=device),
        torch.as_tensor(index, device=device),
    )


_PACKING_SUPPORT: dict[tuple[type, str], bool] = {}
_HEAD_SPLIT_SUPPORT: dict[tuple[type, type, str], bool] = {}


def _architecture_key(model: nn.Module) -> tuple[type, str]:
    """The model class and its attention implementation: what decides how it reads its inputs."""
    base = unwrap_peft(model)
    return type(base), str(getattr(getattr(base, "config", None), "_attn_implementation", ""))


@contextmanager
def _probing(model: nn.Module) -> Iterator[torch.device]:
    """Eval mode and no gradients for a probe forward; every module's own mode is restored afterwards
    (gradient checkpointing keeps some layers' flags apart from their parents')."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield next(model.parameters()).device
    finally:
        for module, training in modes:
            module.training = training


def reads_packed_sequences(model: nn.Module) -> bool:
    """Whether ``model`` keeps sequences packed in one row apart (see :class:`PackedSequences`).

    Checked once per model class and attention implementation: a row holding two sequences must give
    the second the outputs it gets alone. Models that build their attention masks otherwise would let
    it attend to the first.
    """
    key = _architecture_key(model)
    if key not in _PACKING_SUPPORT:
        with _probing(model) as device:
            alone = model(input_ids=torch.tensor([[8, 9]], device=device), use_cache=False).logits[0]
            packed = model(
                input_ids=torch.tensor([[5, 6, 7, 8, 9]], device=device),
                position_ids=torch.tensor([[0, 1, 2, 0, 1]], device=device),
                use_cache=False,
            )
        # Float noise only: real logits (about 20 in SmolLM2) differ by ~1e-4 between the two kernels on some CPUs,
        # while a mask that lets the second sequence see the first moves them by whole units.
        _PACKING_SUPPORT[key] = torch.allclose(packed.logits[0, 3:], alone, atol=1e-3)
    return _PACKING_SUPPORT[key]


def splits_lm_head(model: nn.Module) -> bool:
    """Whether ``model``'s logits are its output embeddings applied to its base model's last hidden states.

    Then the LM head (49,152 x 576 in SmolLM2-135M, a fifth of the model) can run on the completion
    positions alone. Checked once per wrapper class, model class and attention implementation against
    the model's own forward: heads that scale or cap their logits (Gemma's soft cap, Cohere's
    ``logit_scale``) and wrappers that add inputs fail it and keep the full forward.
    """
    key = (type(model), *_architecture_key(model))
    if key not in _HEAD_SPLIT_SUPPORT:
        base = unwrap_peft(model)
        with _probing(model) as device:
            input_ids = torch.tensor([[5, 6, 7]], device=device)
            logits = model(input_ids=input_ids, use_cache=False).logits
            states = base.base_model(input_ids=input_ids, use_cache=False).last_hidden_state
            split = base.get_output_embeddings()(states)
        _HEAD_SPLIT_SUPPORT[key] = split.shape == logits.shape and torch.allclose(split, logits, atol=1e-5)
    return _HEAD_SPLIT_SUPPORT[key]


def completion_outputs(model: nn.Module, batch: RolloutBatch, hidden: bool = False) -> tuple[torch.Tensor, ...]:
    """One teacher-forced forward of prompt + completion: the logits that predict each completion token
    ``(batch, length, vocab)`` and, with ``hidden``, the final hidden states they come from ``(batch,
    length, hidden_size)`` (else None).

    Models that read packed sequences run on the batch's :func:`pack_sequences` (no padding), with the
    LM head on the completion positions only where :func:`splits_lm_head` (the base model's last hidden
    states gathered there, then the output embeddings called as a module, so a LoRA-wrapped head keeps
    its adapters); others on the padded batch, with the LM head on the completion positions only where
    they take ``logits_to_keep``.
    """
    if reads_packed_sequences(model) and min(batch.prompt_lengths) > 0:
        packed = batch.packed
        inputs = {"input_ids": packed.input_ids, "position_ids": packed.position_ids, "use_cache": False}
        if splits_lm_head(model):
            base = unwrap_peft(model)
            states = base.base_model(**inputs).last_hidden_state.flatten(0, 1)[packed.index]
            return base.get_output_embeddings()(states), states if hidden else None
        output = model(**inputs, output_hidden_states=hidden)
        logits = output.logits.flatten(0, 1)[packed.index]
        return logits, output.hidden_states[-1].flatten(0, 1)[packed.index] if hidden else None
    input_ids, mask, start, end = completion_window(batch)
    kwargs: dict[str, Any] = {"output_hidden_states": hidden, "use_cache": False}
    if accepts_logits_to_keep(model):
        kwargs["logits_to_keep"] = input_ids.shape[1] - start
    output = model(input_ids=input_ids, attention_mask=mask, position_ids=positions_from_mask(mask), **kwargs)
    logits = output.logits[:, start - input_ids.shape[1] : -1]
    return logits, output.hidden_states[-1][:, start:end] if hidden else None


def sequence_logprobs(model: nn.Module, batch: RolloutBatch, temperature: float = 1.0) -> torch.Tensor:
    """``log p(token)`` of every completion token under ``model``, one teacher-forced forward: ``(batch, max_new)``."""
    logits, _ = completion_outputs(model, batch)
    log_probs = torch.log_softmax(logits.float() / temperature, dim=-1)
    return log_probs.gather(-1, batch.completion_ids.unsqueeze(-1)).squeeze(-1)
