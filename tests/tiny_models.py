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


def character_tokenizer():
    """A tokenizer with one token per character of the TicTacToeText-v0 prompts (40 tokens, ``<eos>`` as EOS and
    pad), so that a random model's tokens are digits often enough for RL from scratch to see legal moves."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from text_envs.tictactoe.text_env import PROMPT_STATES, prompt_text

    characters = sorted(set("".join(prompt_text(int(s)) for s in PROMPT_STATES)) | set("0123456789opnetlayd.\n "))
    tokenizer = Tokenizer(models.WordLevel({"<eos>": 0, **{c: i + 1 for i, c in enumerate(characters)}}, "<eos>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tokenizer.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<eos>", pad_token="<eos>")
