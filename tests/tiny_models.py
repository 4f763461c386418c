"""Tiny random-initialised causal LMs on the embedded tokenizer's 927-token vocabulary, built from configs
inside the tests: Llama-family shapes with grouped-query attention (4 heads, 2 key-value heads)."""

import torch
from transformers import LlamaConfig, LlamaForCausalLM

TINY_SHAPE = dict(
    vocab_size=927,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=128,
)


def tiny_causal_lm(config_class=LlamaConfig, model_class=LlamaForCausalLM, **overrides) -> torch.nn.Module:
    """``model_class(config_class(**TINY_SHAPE, **overrides))`` in eval mode, seeded: the same weights at every call."""
    torch.manual_seed(0)
    return model_class(config_class(**{**TINY_SHAPE, **overrides})).eval()
