"""Independent judges: VADER sentiment, perplexity under a judge LM, broken text, distinct-n."""

import math

import pytest
import torch

from text_envs.defaults import DEFAULT_LM_DIR
from text_envs.judges import (
    JUDGED,
    PerplexityJudge,
    broken_share,
    distinct_n,
    judge_completions,
    judge_label,
    load_perplexity_judge,
    vader_available,
    vader_sentiment,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_vader_scores_the_completion_text_alone():
    assert vader_available()  # the dev extra installs it, so the test cannot pass by skipping the judge
    scores = vader_sentiment(["ignored", "ignored"], ["a wonderful, moving film.", "a dull, clumsy mess."])
    assert scores[0] > 0.5 and scores[1] < -0.5
    assert vader_sentiment(["the film was great"], [""])[0] == 0.0  # the prompt's praise is not the completion's


def test_broken_text_and_distinct_n_count_what_they_say():
    assert broken_share(["fine text.\n", "bro\ufffdken", "bell\x07", "tab\tok"]) == 0.5
    assert distinct_n(["the cat sat", "the cat ran"], 1) == 4 / 6
    assert distinct_n(["the cat sat", "the cat ran"], 2) == 3 / 4
    assert distinct_n(["one"], 2) == 0.0
    with pytest.raises(ValueError, match="n must be at least 1"):
        distinct_n(["x"], 0)


def test_perplexity_is_exp_of_the_mean_completion_token_nll(reference_model, tokenizer):
    judge = PerplexityJudge(None, device="cpu", batch_size=2)
    prompts, completions = ["the film was", "the soup", "my stay"], [" great.", " cold and", ""]
    nll, tokens = 0.0, 0
    for prompt, completion in zip(prompts, completions, strict=True):
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
        if not completion_ids:
            continue
        ids = torch.tensor([prompt_ids + completion_ids])
        with torch.no_grad():
            log_probs = torch.log_softmax(reference_model(ids).logits[0, :-1], dim=-1)
        targets = ids[0, 1:]
        picked = log_probs[torch.arange(len(targets)), targets][len(prompt_ids) - 1 :]
        nll, tokens = nll - float(picked.sum()), tokens + len(completion_ids)
    assert judge(prompts, completions) == pytest.approx(math.exp(nll / tokens), rel=1e-5)
    assert math.isnan(judge(["x"], [""]))


def test_the_real_judge_finds_fluent_text_more_likely_than_byte_garbage():
    judge = PerplexityJudge("smollm2-135m-instruct", device="cpu")
    prompts = ["The film was", "The hotel room was"]
    fluent = judge(prompts, [" a moving story with a wonderful cast.", " clean, quiet and very comfortable."])
    garbled = judge(prompts, [" absolutely p impressive. the thre\ufffd were", " really really impressive impressive."])
    assert judge.name == "smollm2-135m-instruct" and fluent < garbled / 3


def test_judge_completions_reports_every_judged_figure():
    judge = PerplexityJudge(None, device="cpu")
    figures = judge_completions(["the film was"] * 2, [" great.", " great."], judge)
    assert set(figures) == set(JUDGED)
    assert figures["distinct_1"] == 0.5 and figures["words_mean"] == 1.0 and figures["broken_share"] == 0.0
    assert figures["vader_mean"] > 0 and math.isfinite(figures["perplexity"])


def test_the_embedded_lm_as_judge_ranks_fluent_text_below_shuffled_words_and_broken_bytes():
    judge = PerplexityJudge(DEFAULT_LM_DIR, device="cpu")
    prompts = ["i played this game for ten hours and the", "after all the talk about this book, the prose"]
    fluent = judge(prompts, [" story was truly disappointing.", " was absolutely perfect."])
    shuffled = judge(prompts, [" disappointing truly was story.", " perfect was absolutely."])
    broken = judge(prompts, [" st\ufffdory w\x07as tr\ufffduly", " wa\ufffds abso\ufffdlutely"])
    assert fluent < shuffled / 100 and fluent < broken / 100
    assert judge.name == DEFAULT_LM_DIR.name


def test_distinct_n_is_low_for_a_repeated_set_and_high_for_a_varied_one():
    repeated = ["what a great film."] * 8
    varied = ["what a great film.", "the soup was cold.", "my stay was lovely.", "a dull and clumsy plot."]
    for n in (1, 2):
        assert distinct_n(repeated, n) < 0.2 < 0.8 < distinct_n(varied, n)
    assert distinct_n(varied, 2) == 1.0  # no bigram repeats across these four


def test_broken_share_counts_undecodable_bytes_and_control_characters_not_accents_or_emoji():
    undecodable = b"caf\xc3 au lait".decode("utf-8", errors="replace")  # a UTF-8 sequence cut short
    assert broken_share([undecodable]) == 1.0
    assert broken_share(["escape \x1b[31m red", "nul\x00"]) == 1.0
    assert broken_share(["café ☕, déjà vu", "two\nlines\r\n\tindented"]) == 0.0
    assert broken_share([]) == 0.0


def test_a_judge_lm_that_does_not_load_is_named_with_why_and_the_headings_name_the_judge(tmp_path):
    assert load_perplexity_judge("") == (None, "no judge LM asked for")
    judge, why = load_perplexity_judge(tmp_path / "no_model_here", device="cpu")
    assert judge is None and why.startswith(f"no judge LM: {tmp_path / 'no_model_here'} did not load (OSError:")
    judge, name = load_perplexity_judge(str(DEFAULT_LM_DIR), device="cpu")
    assert isinstance(judge, PerplexityJudge) and name == judge.name == "lm"
    assert judge_label("perplexity", name) == f"{JUDGED['perplexity']}, judged by lm"
    assert judge_label("perplexity") == f"{JUDGED['perplexity']}, judged by no judge LM"
    assert judge_label("vader_mean", name) == JUDGED["vader_mean"]
