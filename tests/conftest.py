"""Shared fixtures."""

import pytest
import torch


@pytest.fixture
def one_torch_thread():
    """Small models run fastest on one thread, and the machine's cores are shared by the test workers."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
