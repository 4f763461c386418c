"""Build the embedded defaults: tokenizer, a small pretrained GPT-2-architecture LM, and prompt sets.

    python scripts/build_default_lm.py                      # writes text_envs/defaults/{lm/,prompts_*.jsonl}
    python scripts/build_default_lm.py --output-dir /tmp/lm --train-reviews 2000 --steps 50   # a quick try

Reads top to bottom: generate the review corpus (text_envs/defaults/corpus.py, seeded), train a
byte-level BPE tokenizer on it, pack the tokenized reviews into blocks, train the LM with AdamW
and a cosine schedule, then measure validation perplexity on held-out reviews beside a unigram
model's (add-one smoothed, fitted on the training tokens) and write everything with
``save_pretrained`` (safetensors + JSON) and a ``build_report.json``.

Torch runs on one thread with fixed seeds, so a rebuild on the same machine reproduces the
weights exactly.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import tyro
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from text_envs.defaults import DEFAULTS_DIR
from text_envs.defaults.corpus import prompts, reviews

EOS = "<|endoftext|>"
PAD = "<|pad|>"


@dataclass
class Args:
    output_dir: str = str(DEFAULTS_DIR)
    """where lm/, prompts_train.jsonl and prompts_test.jsonl go (default: the package's embedded defaults)"""
    seed: int = 0
    """seeds the corpus, the prompts and the training"""
    train_reviews: int = 60_000
    """generated reviews the tokenizer and the LM train on"""
    validation_reviews: int = 2_000
    """held-out reviews of the perplexity figures"""
    train_prompts: int = 256
    """prompts in prompts_train.jsonl"""
    test_prompts: int = 64
    """held-out prompts in prompts_test.jsonl, none of them a training prompt"""
    vocab_size: int = 1024
    """BPE vocabulary size asked for (the trainer may stop short)"""
    block_size: int = 128
    """tokens per training block, and the LM's n_positions"""
    n_layer: int = 4
    """GPT-2 layers"""
    n_embd: int = 128
    """GPT-2 width"""
    n_head: int = 4
    """attention heads"""
    batch_size: int = 16
    """blocks per optimiser step"""
    steps: int = 2_500
    """optimiser steps"""
    learning_rate: float = 3e-3
    """peak learning rate of the one-cycle cosine schedule"""


def parse_args() -> Args:
    return tyro.cli(Args, description=__doc__.split("\n")[0])


def train_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=EOS, eos_token=EOS, pad_token=PAD)


def pack(tokenizer: PreTrainedTokenizerFast, texts: list[str], block_size: int) -> torch.Tensor:
    """Tokenize ``texts``, join them with EOS and cut the stream into ``(blocks, block_size)``."""
    stream = [t for ids in tokenizer(texts)["input_ids"] for t in [*ids, tokenizer.eos_token_id]]
    blocks = len(stream) // block_size
    return torch.tensor(stream[: blocks * block_size], dtype=torch.long).view(blocks, block_size)


@torch.no_grad()
def perplexity(model: GPT2LMHeadModel, blocks: torch.Tensor, batch_size: int = 64) -> float:
    """exp of the mean next-token negative log-likelihood (nats) over every predicted position."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(blocks), batch_size):
        batch = blocks[start : start + batch_size]
        logits = model(batch).logits[:, :-1]
        nll = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), batch[:, 1:].reshape(-1), reduction="sum"
        )
        total, count = total + nll.item(), count + batch[:, 1:].numel()
    return math.exp(total / count)


def unigram_perplexity(train: torch.Tensor, validation: torch.Tensor, vocab_size: int) -> float:
    """Perplexity of add-one smoothed training-token frequencies on the same positions as :func:`perplexity`."""
    counts = torch.bincount(train.reshape(-1), minlength=vocab_size).double() + 1.0
    log_probs = torch.log(counts / counts.sum())
    return math.exp(-log_probs[validation[:, 1:].reshape(-1)].mean().item())


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    output = Path(args.output_dir)
    lm_dir = output / "lm"
    lm_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    train_texts = [text for text, _ in reviews(seed=args.seed, count=args.train_reviews)]
    validation_texts = [text for text, _ in reviews(seed=args.seed + 1, count=args.validation_reviews)]
    tokenizer = train_tokenizer(train_texts, args.vocab_size)
    train_blocks = pack(tokenizer, train_texts, args.block_size)
    validation_blocks = pack(tokenizer, validation_texts, args.block_size)
    print(
        f"corpus: {len(train_texts):,} reviews, {train_blocks.numel():,} training tokens, vocabulary {len(tokenizer)}"
    )

    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=args.block_size,
        n_embd=args.n_embd,
        n_layer=args.n_layer,
        n_head=args.n_head,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = GPT2LMHeadModel(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.learning_rate, total_steps=args.steps, pct_start=0.05, anneal_strategy="cos"
    )
    generator = torch.Generator().manual_seed(args.seed)
    model.train()
    for step in range(args.steps):
        batch = train_blocks[torch.randint(len(train_blocks), (args.batch_size,), generator=generator)]
        loss = model(batch, labels=batch).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        if step % 500 == 0 or step == args.steps - 1:
            print(f"step {step:5d}  loss {loss.item():.3f}")

    report = {
        "validation_perplexity": perplexity(model, validation_blocks),
        "unigram_validation_perplexity": unigram_perplexity(train_blocks, validation_blocks, len(tokenizer)),
        "parameters": sum(p.numel() for p in model.parameters()),
        "training_tokens": train_blocks.numel(),
        "validation_tokens": validation_blocks.numel(),
        "build_seconds": time.perf_counter() - start,
        "torch_version": torch.__version__,
        "args": asdict(args),
    }
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(lm_dir, safe_serialization=True)
    tokenizer.save_pretrained(lm_dir)
    (lm_dir / "build_report.json").write_text(json.dumps(report, indent=2) + "\n")

    train_prompts = prompts(seed=args.seed + 2, count=args.train_prompts)
    held_out = [p for p in prompts(seed=args.seed + 3, count=4 * args.test_prompts) if p not in set(train_prompts)]
    for name, items in (("prompts_train.jsonl", train_prompts), ("prompts_test.jsonl", held_out[: args.test_prompts])):
        (output / name).write_text("".join(json.dumps({"prompt": p}) + "\n" for p in items))

    print(
        f"validation perplexity {report['validation_perplexity']:.2f} "
        f"(unigram {report['unigram_validation_perplexity']:.2f}), {report['parameters']:,} parameters, "
        f"{report['build_seconds']:.0f} s"
    )
    model.eval()
    for prompt in train_prompts[:3]:
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        sample = model.generate(ids, max_new_tokens=30, do_sample=True, top_k=0)
        print("sample:", tokenizer.decode(sample[0], skip_special_tokens=True))


if __name__ == "__main__":
    main()
