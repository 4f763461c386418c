"""Loading models and tokenizers from local paths, cached decoding, and the errors for missing files."""

import pytest
import torch

from text_envs.defaults import DEFAULT_LM_DIR
from text_envs.lm import forward_with_cache, load_causal_lm, load_tokenizer


def test_default_and_explicit_local_paths_load_the_same_model():
    default, explicit = load_causal_lm(), load_causal_lm(str(DEFAULT_LM_DIR))
    assert not default.training
    for a, b in zip(default.parameters(), explicit.parameters(), strict=True):
        assert torch.equal(a, b)
    assert len(load_tokenizer(DEFAULT_LM_DIR)) == default.config.vocab_size


def test_missing_model_files_give_a_clear_error(tmp_path):
    with pytest.raises(OSError, match="no such file"):
        load_causal_lm(tmp_path / "nowhere")
    with pytest.raises(OSError, match="holds no model files"):
        load_causal_lm(tmp_path)


@torch.no_grad()
def test_cached_decoding_matches_a_full_forward():
    model, tokenizer = load_causal_lm(), load_tokenizer()
    ids = torch.tensor([tokenizer("the staff of this hotel was")["input_ids"]])
    logits, kv_cache = forward_with_cache(model, ids[:, :-2])
    logits, kv_cache = forward_with_cache(model, ids[:, -2:-1], kv_cache)
    logits, kv_cache = forward_with_cache(model, ids[:, -1:], kv_cache)
    torch.testing.assert_close(logits[0, -1], model(ids).logits[0, -1], rtol=1e-4, atol=1e-4)
