"""The embedded defaults are real, small, pretrained artefacts that load offline and rebuild reproducibly."""

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from text_envs.defaults import DEFAULT_LM_DIR, DEFAULT_PROMPTS_TEST, DEFAULT_PROMPTS_TRAIN, DEFAULTS_DIR
from text_envs.defaults.corpus import reviews
from text_envs.generation.prompts import load_prompts
from text_envs.lm import load_tokenizer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model():
    return AutoModelForCausalLM.from_pretrained(DEFAULT_LM_DIR).eval()


def test_artefacts_are_small_safetensors_and_json():
    files = {p.name for p in DEFAULT_LM_DIR.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "build_report.json"} <= files
    assert (DEFAULT_LM_DIR / "model.safetensors").stat().st_size <= 20 * 2**20
    pickles = [p for p in DEFAULTS_DIR.rglob("*") if p.suffix in {".bin", ".pt", ".pth", ".pkl", ".pickle"}]
    assert pickles == []
    config = json.loads((DEFAULT_LM_DIR / "config.json").read_text())
    assert config["model_type"] == "gpt2"


def token_blocks(tokenizer, texts, block_size=128):
    stream = [t for ids in tokenizer(texts)["input_ids"] for t in [*ids, tokenizer.eos_token_id]]
    blocks = len(stream) // block_size
    return torch.tensor(stream[: blocks * block_size]).view(blocks, block_size)


@torch.no_grad()
def test_lm_is_pretrained_far_below_a_unigram_model_on_unseen_reviews(model):
    tokenizer = load_tokenizer()
    held_out = token_blocks(
        tokenizer, [text for text, _ in reviews(seed=12345, count=300)]
    )  # a seed the build never used
    training = token_blocks(tokenizer, [text for text, _ in reviews(seed=0, count=3000)])
    logits = model(held_out).logits[:, :-1]
    targets = held_out[:, 1:].reshape(-1)
    perplexity = math.exp(torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets).item())
    unigram_counts = torch.bincount(training.reshape(-1), minlength=len(tokenizer)).double() + 1.0
    unigram_perplexity = math.exp(-torch.log(unigram_counts / unigram_counts.sum())[targets].mean().item())
    assert perplexity < 4.0 and unigram_perplexity > 10 * perplexity
    report = json.loads((DEFAULT_LM_DIR / "build_report.json").read_text())
    assert abs(report["validation_perplexity"] - perplexity) < 0.5


@torch.no_grad()
def test_samples_are_english_like_words_not_token_soup(model):
    tokenizer = load_tokenizer()
    vocabulary = {w for text, _ in reviews(seed=0, count=2000) for w in re.findall(r"[a-z']+", text)}
    torch.manual_seed(0)
    prompt = tokenizer(["the food of this restaurant"] * 8, return_tensors="pt")
    samples = model.generate(**prompt, do_sample=True, max_new_tokens=40, pad_token_id=tokenizer.pad_token_id)
    words = [w for s in tokenizer.batch_decode(samples, skip_special_tokens=True) for w in re.findall(r"[a-z']+", s)]
    assert len(words) > 100
    assert sum(w in vocabulary for w in words) / len(words) > 0.97


def test_prompt_sets_load_and_held_out_prompts_are_unseen():
    train, test = load_prompts(str(DEFAULT_PROMPTS_TRAIN)), load_prompts(str(DEFAULT_PROMPTS_TEST))
    assert len(train) >= 200 and len(test) >= 50
    assert not set(train) & set(test)


def test_build_script_is_reproducible(tmp_path):
    tiny = [
        "--train-reviews",
        "300",
        "--validation-reviews",
        "40",
        "--train-prompts",
        "8",
        "--test-prompts",
        "4",
        "--n-layer",
        "1",
        "--n-embd",
        "32",
        "--n-head",
        "2",
        "--batch-size",
        "4",
        "--steps",
        "3",
    ]
    outputs = []
    for name in ("a", "b"):
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "scripts" / "build_default_lm.py"),
                "--output-dir",
                str(tmp_path / name),
                *tiny,
            ],
            check=True,
            capture_output=True,
        )
        outputs.append(tmp_path / name)
    for relative in ("lm/model.safetensors", "lm/tokenizer.json", "prompts_train.jsonl", "prompts_test.jsonl"):
        assert (outputs[0] / relative).read_bytes() == (outputs[1] / relative).read_bytes(), relative
