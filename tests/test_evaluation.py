"""evaluate_text_policy: every held-out prompt the same number of times, reproducible, judged together."""

from collections import Counter

import numpy as np
import pytest

from text_envs import TextGenerationVectorEnv
from text_envs.judges import JUDGED
from text_envs.rewards.lexicon import lexicon_sentiment_reward
from text_envs_agents.llm.evaluation import evaluate_text_policy
from text_envs_agents.llm.rollout import sequence_logprobs

pytestmark = pytest.mark.usefixtures("one_torch_thread")
PROMPTS = ["the film was", "the food was", "the hotel was", "the album was", "the book was"]


def length_reward(prompts, completions):
    return np.array([len(c) for c in completions], dtype=np.float64)


def evaluate(model, num_envs, **kwargs):
    env = TextGenerationVectorEnv(
        num_envs, tokenizer=None, prompts=PROMPTS, reward_model=lexicon_sentiment_reward, max_new_tokens=6
    )
    return evaluate_text_policy(model, lambda batch: sequence_logprobs(model, batch), env, **kwargs)


def test_every_prompt_is_measured_samples_per_prompt_times_and_spare_envs_are_not_counted(reference_model):
    evaluation = evaluate(reference_model, 4, seed=3, samples_per_prompt=3, scorers={"length": length_reward})
    assert Counter(evaluation.prompts) == {prompt: 3 for prompt in PROMPTS}  # 15 in rounds of 4: one spare env
    assert len(evaluation.completions) == len(evaluation.scores) == 15
    metrics = evaluation.metrics
    assert metrics["completions"] == 15 and metrics["kl"] == 0.0  # the model is its own reference
    np.testing.assert_allclose(metrics["score_mean"], np.mean(evaluation.scores))
    np.testing.assert_allclose(metrics["length_mean"], np.mean([len(c) for c in evaluation.completions]))
    assert set(JUDGED) - {"perplexity"} <= set(metrics)  # no perplexity judge was given
    np.testing.assert_allclose(
        evaluation.scores, lexicon_sentiment_reward(evaluation.prompts, evaluation.completions), atol=1e-6
    )


def test_the_same_seed_gives_the_same_completions_and_another_seed_others(reference_model):
    first = evaluate(reference_model, 5, seed=1, samples_per_prompt=2)
    assert evaluate(reference_model, 5, seed=1, samples_per_prompt=2).completions == first.completions
    assert evaluate(reference_model, 5, seed=2, samples_per_prompt=2).completions != first.completions


def test_samples_per_prompt_below_one_is_refused(reference_model):
    with pytest.raises(ValueError, match="samples_per_prompt must be at least 1"):
        evaluate(reference_model, 2, samples_per_prompt=0)
