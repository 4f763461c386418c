import numpy as np
import torch

from text_envs_agents.llm.sampling import sample_tokens


def test_sample_tokens_follows_the_distribution_and_never_draws_impossible_tokens():
    generator = torch.Generator().manual_seed(0)
    probabilities = torch.tensor([[0.5, 0.0, 0.2, 0.3, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0]])
    log_probs = probabilities.log()  # -inf where impossible
    draws = torch.stack([sample_tokens(log_probs, generator) for _ in range(20_000)])
    counts = np.stack([np.bincount(draws[:, row].numpy(), minlength=5) for row in range(2)])
    assert counts[0, [1, 4]].sum() == 0 and (counts[1, :4] == 0).all()
    # Binomial standard error of a frequency of 20,000 draws is at most 0.0036: allow 5 of them.
    np.testing.assert_allclose(counts[0] / 20_000, probabilities[0].numpy(), atol=0.018)


def test_sample_tokens_is_reproducible_from_its_generator_and_tolerates_unnormalised_rows():
    log_probs = torch.log_softmax(torch.randn(8, 927, generator=torch.Generator().manual_seed(1)), dim=-1)
    first = sample_tokens(log_probs, torch.Generator().manual_seed(5))
    assert torch.equal(first, sample_tokens(log_probs, torch.Generator().manual_seed(5)))
    # Shifting log-probs by a constant scales the row: the same uniform draws pick the same tokens.
    assert torch.equal(first, sample_tokens(log_probs + 0.3, torch.Generator().manual_seed(5)))
    assert ((first >= 0) & (first < 927)).all()
