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


# Llama 2's chat template without its system-message branch.
LLAMA2_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + message['content'].strip() + ' [/INST]' }}"
    "{% else %}{{ ' ' + message['content'].strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
)


def sentencepiece_style_tokenizer():
    """A tokenizer built as Llama 2's ``tokenizer.json`` is (SentencePiece BPE converted by transformers: ``▁``
    for spaces, one prepended to every stretch of text, digits split), trained on the TicTacToeText-v0 prompts,
    with Llama 2's chat template: text encoded alone gains a leading space, and a digit alone is two tokens.
    No byte fallback: characters outside the prompts are ``<unk>``."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    from text_envs.tictactoe.text_env import PROMPT_STATES, board_text, opponent_move_text, prompt_text

    texts = [prompt_text(int(s)) for s in PROMPT_STATES[::7]] + [board_text(0), opponent_move_text(0, "plain")]
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tokenizer.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    # Trained on words, as SentencePiece's pieces are (a piece may start with "▁", never span one or a
    # newline); encoding has Llama 2's lone digit split.
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split("▁", "merged_with_next"),
            pre_tokenizers.Split("\n", "isolated"),
            pre_tokenizers.Digits(individual_digits=True),
        ]
    )
    alphabet = sorted(set("".join(texts)) | set("[]/INST▁"))
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<s>", "</s>"], initial_alphabet=alphabet)
    tokenizer.train_from_iterator([*texts, "[INST] [/INST]"], trainer)
    tokenizer.pre_tokenizer = pre_tokenizers.Digits(individual_digits=True)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tokenizer.token_to_id("<s>"))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="</s>",
        chat_template=LLAMA2_CHAT_TEMPLATE,
    )
