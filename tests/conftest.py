"""Shared fixtures."""

import pytest
import torch


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small models run fastest on one thread, and the machine's cores are shared (Ray's env runners, test
    workers). Module-scoped: a file that uses it runs on one thread until its last test."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tokenizer():
    """The embedded default tokenizer."""
    from text_envs.lm import load_tokenizer

    return load_tokenizer()


@pytest.fixture(scope="module")
def reference_model():
    """The embedded default LM, as a frozen KL reference."""
    from text_envs.lm import load_causal_lm

    return load_causal_lm()


@pytest.fixture
def tiny_llama():
    """A small randomly initialised Llama on the default LM's vocabulary: a causal LM that is not GPT-2 (it
    decodes with ``LlamaDecoder``; its outputs are only compared, not used)."""
    from tiny_models import tiny_causal_lm

    return tiny_causal_lm()
