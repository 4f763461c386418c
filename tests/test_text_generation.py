"""TextGeneration-v0: semantics, seeding, bad input, the vector env, and real models acting through it."""

import json
import unicodedata

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env, data_equivalence
from gymnasium.vector import AutoresetMode
from hypothesis import given, settings
from hypothesis import strategies as st

from text_envs import TextGenerationEnv, TextGenerationVectorEnv
from text_envs.defaults import DEFAULT_LM_DIR
from text_envs.generation.text_space import UnicodeText
from text_envs.rewards.lexicon import lexicon_sentiment_reward
from text_envs.rewards.trained import default_reward_model


def word_ids(tokenizer, text):
    return tokenizer.encode(text, add_special_tokens=False)


def make_env(tokenizer, **kwargs):
    kwargs.setdefault("prompts", ["the food was", "we tried this cafe for lunch."])
    kwargs.setdefault("reward_model", lexicon_sentiment_reward)  # transparent scores in [-1, 1]
    return TextGenerationEnv(tokenizer=tokenizer, **kwargs)


def test_observation_grows_by_exactly_the_action(tokenizer):
    env = make_env(tokenizer, max_new_tokens=5)
    observation, info = env.reset(seed=0)
    prompt_ids = tokenizer(info["prompt"])["input_ids"]
    assert observation["input_ids"][-len(prompt_ids) :].tolist() == prompt_ids
    assert observation["attention_mask"].sum() == len(prompt_ids)
    assert (observation["input_ids"][observation["attention_mask"] == 0] == tokenizer.pad_token_id).all()
    for action in word_ids(tokenizer, " great and fun"):
        previous = observation
        observation, reward, terminated, truncated, info = env.step(action)
        assert observation["input_ids"][-1] == action
        np.testing.assert_array_equal(observation["input_ids"][:-1], previous["input_ids"][1:])
        assert observation["attention_mask"].sum() == previous["attention_mask"].sum() + 1
        assert (reward, terminated, truncated, info) == (0.0, False, False, {})
        assert type(reward) is float


def test_eos_terminates_and_the_score_arrives_at_the_last_step(tokenizer):
    env = make_env(tokenizer, max_new_tokens=10)
    env.reset(seed=0, options={"prompt": "the food was"})
    rewards = [env.step(a)[1] for a in word_ids(tokenizer, " wonderful, really lovely.")]
    _, reward, terminated, truncated, info = env.step(tokenizer.eos_token_id)
    assert rewards == [0.0] * len(rewards)
    assert terminated is True and truncated is False
    assert info["completion"] == " wonderful, really lovely."  # the EOS that ended it is not part of the text
    assert info["completion_ids"][-1] == tokenizer.eos_token_id
    assert reward == info["score"] == 1.0
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


def test_max_new_tokens_truncates(tokenizer):
    env = make_env(tokenizer, max_new_tokens=3)
    env.reset(seed=0)
    ids = word_ids(tokenizer, " dull and cold")[:3]
    results = [env.step(a) for a in ids]
    assert [r[3] for r in results] == [False, False, True] and not results[-1][2]
    assert results[-1][4]["completion"] == tokenizer.decode(ids)
    assert results[-1][1] == -1.0


def test_full_context_truncates(tokenizer):
    env = make_env(tokenizer, max_new_tokens=20, max_prompt_tokens=8, context_length=10, prompts=["the food was"])
    observation, _ = env.reset(seed=0)
    room = 10 - int(observation["attention_mask"].sum())
    steps = [env.step(5) for _ in range(room)]
    assert [s[3] for s in steps] == [False] * (room - 1) + [True]
    assert not any(s[2] for s in steps)


def test_completion_is_decoded_as_a_whole(tokenizer):
    ids = word_ids(tokenizer, " café ☕")
    pieces = "".join(tokenizer.decode([i]) for i in ids)
    assert pieces != " café ☕"  # byte-level tokens split the characters: piecewise decoding garbles them
    env = make_env(tokenizer, max_new_tokens=len(ids))
    env.reset(seed=0)
    for action in ids:
        *_, info = env.step(action)
    assert info["completion"] == " café ☕"


def test_stop_tokens(tokenizer):
    env = make_env(tokenizer, stop_tokens=["."], max_new_tokens=10)
    env.reset(seed=0)
    env.step(word_ids(tokenizer, " great")[0])
    _, reward, terminated, _, info = env.step(word_ids(tokenizer, ".")[0])
    assert terminated and info["completion"] == " great" and reward == 1.0
    with pytest.raises(ValueError, match="single token"):
        make_env(tokenizer, stop_tokens=["not one token at all"])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        make_env(tokenizer, stop_tokens=[10**6])


def test_a_stop_token_is_read_as_it_follows_text_with_a_sentencepiece_tokenizer():
    from tiny_models import sentencepiece_style_tokenizer

    tokenizer = sentencepiece_style_tokenizer()
    assert word_ids(tokenizer, "\n") == [tokenizer.convert_tokens_to_ids("▁"), tokenizer.convert_tokens_to_ids("\n")]
    env = make_env(tokenizer, prompts=["board:"], stop_tokens=["\n"], max_new_tokens=10)
    assert tokenizer.convert_tokens_to_ids("\n") in env.task.stop_token_ids


@pytest.mark.parametrize("stop_tokens", [".!", 5, [True], [1.5]])
def test_stop_tokens_that_are_not_a_list_of_tokens_are_refused(tokenizer, stop_tokens):
    assert len(word_ids(tokenizer, ".")) == len(word_ids(tokenizer, "!")) == 1  # ".!" would pass as two tokens
    with pytest.raises(TypeError, match="stop_tokens"):
        make_env(tokenizer, stop_tokens=stop_tokens)


def test_seeding_reproduces_prompts_and_differs_across_seeds(tokenizer):
    def prompts(seed):
        env = TextGenerationEnv(tokenizer=tokenizer)
        first = env.reset(seed=seed)[1]["prompt"]
        return [first] + [env.reset()[1]["prompt"] for _ in range(9)]

    assert prompts(1) == prompts(1)
    assert prompts(1) != prompts(2)


def test_long_prompts_are_left_truncated_or_refused(tokenizer):
    long_prompt = "the food was great and the staff was friendly and the view was lovely"
    env = make_env(tokenizer, max_prompt_tokens=4)
    observation, _ = env.reset(seed=0, options={"prompt": long_prompt})
    kept = observation["input_ids"][observation["attention_mask"] == 1]
    assert kept.tolist() == tokenizer(long_prompt)["input_ids"][-4:]
    with pytest.raises(ValueError, match="more than max_prompt_tokens=4"):
        make_env(tokenizer, max_prompt_tokens=4, prompt_truncation="error", prompts=["hi", long_prompt])
    env = make_env(tokenizer, max_prompt_tokens=4, prompt_truncation="error", prompts=["hi"])
    with pytest.raises(ValueError, match="more than max_prompt_tokens"):
        env.reset(options={"prompt": long_prompt})


@pytest.mark.parametrize("action", [-1, 10**6, 1.5, "a", None])
def test_actions_outside_the_vocabulary_raise(tokenizer, action):
    env = make_env(tokenizer)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="token id"):
        env.step(action)


@pytest.mark.parametrize(
    "reward_model, message",
    [
        (lambda prompts, completions: [1.0, 2.0], "2 scores for 1 completions"),
        (lambda prompts, completions: [float("nan")], "returned nan"),
        (lambda prompts, completions: [float("inf")], "returned inf"),
    ],
)
def test_bad_reward_models_raise(tokenizer, reward_model, message):
    env = make_env(tokenizer, reward_model=reward_model)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.step(tokenizer.eos_token_id)


@pytest.mark.parametrize(
    "scores, message",
    [
        ("1.0", "returned str"),
        ({"score": 1.0}, "returned dict"),
        (None, "returned NoneType"),
        (torch.ones(1, requires_grad=True), "returned a tensor that requires gradients"),
    ],
)
def test_reward_models_returning_no_numbers_raise_naming_the_reward_model(tokenizer, scores, message):
    def unusual_reward_model(prompts, completions):
        return scores

    env = make_env(tokenizer, reward_model=unusual_reward_model)
    env.reset(seed=0)
    with pytest.raises(TypeError, match=f"reward model '.*unusual_reward_model' {message}"):
        env.step(tokenizer.eos_token_id)


class FlakyRewardModel:
    """Scores by length (characters per completion), after raising on its first ``failures`` calls."""

    def __init__(self, failures: int):
        self.failures = failures

    def __call__(self, prompts, completions):
        if self.failures:
            self.failures -= 1
            raise ConnectionError("reward server unreachable")
        return [float(len(c)) for c in completions]


def step_retrying(env, action):
    """``env.step(action)``, taken again after a reward model's ``ConnectionError``; also whether it raised."""
    try:
        return env.step(action), False
    except ConnectionError:
        return env.step(action), True


def test_a_failed_score_leaves_the_env_as_before_the_step(tokenizer):
    actions = [*word_ids(tokenizer, " great food"), tokenizer.eos_token_id]
    kwargs = dict(prompts=["the food was"], max_new_tokens=10)
    flaky, steady = (
        make_env(tokenizer, reward_model=FlakyRewardModel(1), **kwargs),
        make_env(tokenizer, reward_model=len_reward, **kwargs),
    )
    flaky.reset(seed=0), steady.reset(seed=0)
    raised = []
    for action in actions:
        result, failed = step_retrying(flaky, action)
        raised.append(failed)
        assert data_equivalence(result, steady.step(action), exact=True)
    assert raised == [False] * (len(actions) - 1) + [True]
    assert result[1] == len(" great food") and result[4]["completion_ids"].tolist() == actions
    assert data_equivalence(flaky.reset(seed=1), steady.reset(seed=1), exact=True)


@pytest.mark.parametrize("autoreset_mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_a_failed_score_in_the_vector_env_loses_no_completion(tokenizer, autoreset_mode):
    """The flaky reward model fails when the first episodes end; retried, the run equals one that never failed,
    finished completions scored and rows restarting on schedule after it."""
    kwargs = dict(tokenizer=tokenizer, max_new_tokens=3, autoreset_mode=autoreset_mode)
    flaky = TextGenerationVectorEnv(3, reward_model=FlakyRewardModel(1), **kwargs)
    steady = TextGenerationVectorEnv(3, reward_model=len_reward, **kwargs)
    assert data_equivalence(flaky.reset(seed=0), steady.reset(seed=0), exact=True)
    raised, ended, scored = [], 0, 0
    for step, actions in enumerate(np.random.default_rng(0).integers(5, 900, size=(10, 3))):
        result, failed = step_retrying(flaky, actions)
        raised.append(failed)
        assert data_equivalence(result, steady.step(actions), exact=True), f"step {step}"
        _, rewards, terminated, truncated, info = result
        info = info.get("final_info", info)
        ended += int((terminated | truncated).sum())
        scored += int(info.get("_score", np.zeros(3, dtype=bool)).sum())
    assert raised == [False, False, True] + [False] * 7
    # 10 steps of 3-token episodes: NEXT_STEP spends a step restarting (3 rounds), SAME_STEP does not.
    assert ended == scored == 3 * (3 if autoreset_mode is AutoresetMode.SAME_STEP else 2)


def test_reward_model_receives_prompt_and_completion(tokenizer):
    calls = []

    def length_reward(prompts, completions):
        calls.append((prompts, completions))
        return [float(len(c)) for c in completions]

    env = make_env(tokenizer, reward_model=length_reward, prompts=["the food was"])
    env.reset(seed=0)
    env.step(word_ids(tokenizer, " great")[0])
    _, reward, *_ = env.step(tokenizer.eos_token_id)
    assert calls == [(["the food was"], [" great"])] and reward == 6.0


def test_unknown_tokenizer_and_bad_prompt_files(tmp_path):
    with pytest.raises(OSError, match="no such file"):
        TextGenerationEnv(tokenizer=str(tmp_path / "missing"))
    with pytest.raises(OSError, match="holds no tokenizer"):
        TextGenerationEnv(tokenizer=str(tmp_path))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ValueError, match="holds no prompts"):
        TextGenerationEnv(prompts=str(empty))
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps({"prompt": "fine"}) + "\n" + "{not json\n")
    with pytest.raises(ValueError, match=r"broken.jsonl:2: invalid JSON"):
        TextGenerationEnv(prompts=str(broken))
    wrong_key = tmp_path / "wrong_key.jsonl"
    wrong_key.write_text(json.dumps({"prompt": "fine"}) + "\n\n" + json.dumps({"text": "x"}) + "\n")
    with pytest.raises(ValueError, match=r"wrong_key.jsonl:3: expected an object"):
        TextGenerationEnv(prompts=str(wrong_key))
    blank = tmp_path / "blank.txt"
    blank.write_text("one prompt\n\nanother\n")
    with pytest.raises(ValueError, match=r"blank.txt:2: blank line"):
        TextGenerationEnv(prompts=str(blank))
    for binary in (tmp_path / "binary.txt", tmp_path / "binary.jsonl"):
        binary.write_bytes(b'"fine"\n"caf\xc3\xa9"\n"\x89PNG\xff\xfe"\n')
        with pytest.raises(ValueError, match=rf"{binary.name}:3: not UTF-8 text \(byte 0x89\)"):
            TextGenerationEnv(prompts=str(binary))
    with pytest.raises(FileNotFoundError):
        TextGenerationEnv(prompts=str(tmp_path / "missing.jsonl"))
    with pytest.raises(ValueError, match="non-empty string"):
        TextGenerationEnv(prompts=["ok", ""])


def test_prompt_files_load(tmp_path, tokenizer):
    txt = tmp_path / "p.txt"
    txt.write_text("first prompt\nsecond prompt\n")
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text(json.dumps({"text": "from a column"}) + "\n" + json.dumps({"text": "again"}) + "\n")
    assert TextGenerationEnv(tokenizer=tokenizer, prompts=str(txt)).task.prompts == ["first prompt", "second prompt"]
    env = TextGenerationEnv(tokenizer=tokenizer, prompts=str(jsonl), prompt_column="text")
    assert env.task.prompts == ["from a column", "again"]


def test_hugging_face_dataset_from_a_local_directory(tmp_path, tokenizer, monkeypatch):
    datasets = pytest.importorskip("datasets")
    data = tmp_path / "my_dataset"
    data.mkdir()
    (data / "train.jsonl").write_text("".join(json.dumps({"text": f"prompt {i}"}) + "\n" for i in range(5)))
    load_dataset, calls = datasets.load_dataset, []

    def recording_load_dataset(*args, **kwargs):
        calls.append(kwargs)
        return load_dataset(*args, **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", recording_load_dataset)
    env = TextGenerationEnv(tokenizer=tokenizer, prompts=str(data), prompt_split="train", prompt_column="text")
    assert env.task.prompts == [f"prompt {i}" for i in range(5)]
    assert calls[0]["trust_remote_code"] is False  # a dataset's loading script never runs
    with pytest.raises(ValueError, match="no column 'prompt'"):
        TextGenerationEnv(tokenizer=tokenizer, prompts=str(data))


def test_text_observation_mode(tokenizer):
    env = gym.make(
        "text_envs/TextGeneration-v0", tokenizer=tokenizer, observation_mode="text", prompts=["the food was"]
    )
    observation, _ = env.reset(seed=0)
    assert observation == "the food was" and env.observation_space.contains(observation)
    for action in word_ids(tokenizer, " great"):
        observation, *_ = env.step(action)
    assert observation == "the food was great" and env.observation_space.contains(observation)
    check_env(env.unwrapped)


def control_character_ids(tokenizer):
    """Ids that decode to a control character other than tab and newlines (id 190 is ``'\\x00'``)."""
    ids = [
        i
        for i in range(len(tokenizer))
        if any(c not in "\t\n\r" and unicodedata.category(c) == "Cc" for c in tokenizer.decode([i]))
    ]
    assert 190 in ids and len(ids) > 20
    return ids


def test_text_observations_with_control_characters_and_emoji_are_in_the_space(tokenizer):
    env = make_env(tokenizer, observation_mode="text", prompts=["pizza 🍕 tonight"], max_new_tokens=64)
    observation, _ = env.reset(seed=0)
    assert observation == "pizza 🍕 tonight" and env.observation_space.contains(observation)
    for action in [*control_character_ids(tokenizer), *word_ids(tokenizer, " 🎉")]:
        observation, *_ = env.step(action)
        assert env.observation_space.contains(observation), repr(observation)
    assert "\x00" in observation and observation.endswith("🎉")
    assert not env.observation_space.contains("\ud83c")  # a lone surrogate is no decoded text
    check_env(env, skip_render_check=True)


def test_unicode_text_space_is_a_text_space_over_every_unicode_character():
    space = UnicodeText(8, seed=0)
    assert isinstance(space, gym.spaces.Text) and len(space.character_set) == 0x110000 - 0x800
    for text in ["", "\x00\x1f", "🍕\U0010ffff\ufffd\ufffe"]:
        assert space.contains(text)
        flat = gym.spaces.utils.flatten(space, text)  # what async vector envs write to shared memory
        assert flat.shape == (8,) and gym.spaces.utils.unflatten(space, flat) == text
    assert [space.character_index(c) for c in "\ud7ff\ue000"] == [0xD7FF, 0xD800]  # surrogates skipped
    assert not space.contains("\udc00") and not space.contains("x" * 9) and not space.contains(b"x")
    assert all(space.contains(space.sample()) for _ in range(20))
    assert space == UnicodeText(8) != UnicodeText(9) and space != gym.spaces.Text(8)


def test_vector_text_observations_with_control_characters_and_emoji_are_in_the_space(tokenizer):
    envs = TextGenerationVectorEnv(
        2,
        tokenizer=tokenizer,
        reward_model=len_reward,
        observation_mode="text",
        prompts=["🍕 or 🍣?"],
        max_new_tokens=3,
    )
    observations, _ = envs.reset(seed=0)
    assert observations == ("🍕 or 🍣?",) * 2 and envs.observation_space.contains(observations)
    controls = np.resize(control_character_ids(tokenizer), (12, 2))
    seen = []
    for actions in controls:  # NEXT_STEP: each row ends an episode, restarts, and goes on
        observations, *_ = envs.step(actions)
        assert envs.observation_space.contains(observations), repr(observations)
        seen.extend(observations)
    assert all(o.startswith("🍕 or 🍣?") for o in seen) and sum("\x00" in o for o in seen) >= 2


def test_render_ansi(tokenizer):
    env = make_env(tokenizer, render_mode="ansi", prompts=["the food was"])
    env.reset(seed=0)
    env.step(word_ids(tokenizer, " great")[0])
    assert env.render() == "the food was great\n"


def len_reward(prompts, completions):
    return [float(len(c)) for c in completions]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), actions=st.lists(st.integers(0, 926), min_size=1, max_size=40))
def test_random_action_sequences_keep_the_invariants(tokenizer, seed, actions):
    env = TextGenerationEnv(tokenizer=tokenizer, max_new_tokens=12, stop_tokens=["."], reward_model=len_reward)
    observation, info = env.reset(seed=seed)
    prompt_length = int(observation["attention_mask"].sum())
    taken = []
    for action in actions:
        observation, reward, terminated, truncated, info = env.step(action)
        taken.append(action)
        assert observation["input_ids"][-len(taken) :].tolist() == taken
        assert observation["attention_mask"].sum() == prompt_length + len(taken)
        if terminated or truncated:
            assert info["completion_ids"].tolist() == taken and reward == info["score"]
            assert terminated == (action in env.task.stop_token_ids)
            assert truncated == (not terminated and len(taken) == 12)
            observation, info = env.reset()
            prompt_length, taken = int(observation["attention_mask"].sum()), []
        else:
            assert reward == 0.0 and len(taken) < 12


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), actions=st.lists(st.integers(0, 926), min_size=1, max_size=30))
def test_one_env_vector_env_replays_the_single_env(tokenizer, seed, actions):
    kwargs = dict(tokenizer=tokenizer, max_new_tokens=6, stop_tokens=["."], reward_model=len_reward)
    single = TextGenerationEnv(**kwargs)
    vector = TextGenerationVectorEnv(1, autoreset_mode=AutoresetMode.SAME_STEP, **kwargs)
    observation, info = single.reset(seed=seed)
    observations, infos = vector.reset(seed=seed)
    assert infos["prompt"][0] == info["prompt"]
    for action in actions:
        observation, reward, terminated, truncated, info = single.step(action)
        observations, rewards, terminateds, truncateds, infos = vector.step(np.array([action]))
        assert (reward, terminated, truncated) == (rewards[0], terminateds[0], truncateds[0])
        if terminated or truncated:
            for key in ("prompt", "completion", "score"):
                assert infos["final_info"][key][0] == info[key]
            np.testing.assert_array_equal(infos["final_obs"][0]["input_ids"], observation["input_ids"])
            observation, info = single.reset()
        for key in observation:
            np.testing.assert_array_equal(observation[key], observations[key][0])


def test_vector_env_scores_all_finished_completions_in_one_call(tokenizer):
    batches = []

    def recording_reward(prompts, completions):
        batches.append(len(completions))
        return np.zeros(len(completions))

    envs = TextGenerationVectorEnv(8, tokenizer=tokenizer, reward_model=recording_reward, max_new_tokens=4)
    envs.reset(seed=0)
    for _ in range(4):
        _, _, terminated, truncated, info = envs.step(np.full(8, 5))
    assert truncated.all() and batches == [8]
    assert info["_completion"].all() and all(ids.tolist() == [5] * 4 for ids in info["completion_ids"])
    observations, rewards, terminated, truncated, info = envs.step(np.full(8, 5))  # NEXT_STEP: all restart
    assert not (terminated | truncated).any() and (rewards == 0).all() and info == {}
    assert (observations["input_ids"][:, -1] != 5).all()


def test_vector_env_bad_actions_and_disabled_autoreset(tokenizer):
    envs = TextGenerationVectorEnv(2, tokenizer=tokenizer, max_new_tokens=1, autoreset_mode=AutoresetMode.DISABLED)
    with pytest.raises(RuntimeError, match="before reset"):
        envs.step(np.array([1, 2]))
    envs.reset(seed=0)
    with pytest.raises(ValueError, match="token id"):
        envs.step(np.array([1, 10**6]))
    envs.step(np.array([1, 2]))
    with pytest.raises(RuntimeError, match="finished"):
        envs.step(np.array([1, 2]))


def greedy_rollout_through_env(env, next_token):
    observation, _ = env.reset(seed=0, options={"prompt": "the service at this hotel"})
    while True:
        observation, _, terminated, truncated, info = env.step(next_token(observation))
        if terminated or truncated:
            return info["completion_ids"].tolist()


def test_default_lm_acting_through_the_env_matches_generate(tokenizer):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(DEFAULT_LM_DIR).eval()
    env = TextGenerationEnv(tokenizer=tokenizer, max_new_tokens=12)

    @torch.no_grad()
    def next_token(observation):
        ids = torch.as_tensor(observation["input_ids"])[None]
        mask = torch.as_tensor(observation["attention_mask"])[None]
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding: positions count real tokens only
        return int(model(input_ids=ids, attention_mask=mask, position_ids=positions).logits[0, -1].argmax())

    prompt = tokenizer("the service at this hotel", return_tensors="pt")
    expected = model.generate(**prompt, max_new_tokens=12, do_sample=False)[0, prompt.input_ids.shape[1] :]
    assert greedy_rollout_through_env(env, next_token) == expected.tolist()


def test_encoder_decoder_model_acting_through_the_env_matches_generate(tokenizer):
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=32,
        d_ff=64,
        d_kv=16,
        num_layers=1,
        num_heads=2,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    model = T5ForConditionalGeneration(config).eval()  # a fixture for the interface, not a trained model
    env = TextGenerationEnv(tokenizer=tokenizer, architecture="encoder_decoder", max_new_tokens=8)
    observation, _ = env.reset(seed=0)
    assert set(observation) == {"input_ids", "attention_mask", "decoder_input_ids", "decoder_attention_mask"}
    assert (
        observation["decoder_input_ids"][-1] == tokenizer.pad_token_id
        and observation["decoder_attention_mask"].sum() == 1
    )

    @torch.no_grad()
    def next_token(observation):
        tensors = {k: torch.as_tensor(v)[None] for k, v in observation.items()}
        return int(model(**tensors).logits[0, -1].argmax())

    prompt = tokenizer("the service at this hotel", return_tensors="pt")
    expected = model.generate(**prompt, max_new_tokens=8, do_sample=False)[0, 1:]  # drop the start token
    assert greedy_rollout_through_env(env, next_token) == expected.tolist()
    with pytest.raises(ValueError, match="context_length applies to causal"):
        TextGenerationEnv(tokenizer=tokenizer, architecture="encoder_decoder", context_length=64)


def test_stock_sb3_ppo_learns_in_the_env(one_torch_thread):
    """One prompt, one token per episode scored by its length: PPO must raise the expected length under its policy."""
    from stable_baselines3 import PPO

    env = gym.make("text_envs/TextGeneration-v0", prompts=["the food was"], max_new_tokens=1, reward_model=len_reward)
    tokenizer, stop_ids = env.unwrapped.tokenizer, env.unwrapped.task.stop_token_ids
    lengths = torch.tensor([0 if i in stop_ids else len(tokenizer.decode([i])) for i in range(len(tokenizer))])
    model = PPO("MultiInputPolicy", env, n_steps=128, batch_size=64, n_epochs=4, learning_rate=3e-3, seed=0)
    observation, _ = env.reset(seed=0)

    def expected_length() -> float:
        with torch.no_grad():
            probs = model.policy.get_distribution(model.policy.obs_to_tensor(observation)[0]).distribution.probs
        return float(probs[0] @ lengths.to(probs.dtype))

    before = expected_length()
    model.learn(total_timesteps=512)
    assert expected_length() > before + 0.5  # characters per completion; about 3.6 -> 5.0
    action, _ = model.predict(observation)
    assert env.action_space.contains(int(action))


def test_default_reward_is_the_embedded_reward_model(tokenizer):
    env = TextGenerationEnv(prompts=["the food of this restaurant"], max_new_tokens=12)
    env.reset(seed=0)
    for action in word_ids(tokenizer, " was wonderful."):
        *_, info = env.step(action)
    _, reward, terminated, _, info = env.step(tokenizer.eos_token_id)
    expected = default_reward_model()(["the food of this restaurant"], [" was wonderful."])[0]
    assert terminated and reward == pytest.approx(float(expected)) and reward > 0


def test_async_workers_score_after_the_parent_used_torch():
    """Forked workers must not hang in torch's OpenMP pool (text_envs sets one thread in forked children)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        default_reward_model()(["the food was"], [" great."] * 1)  # the parent's thread pool is now warm
        envs = gym.make_vec("text_envs/TextGeneration-v0", num_envs=2, vectorization_mode="async", max_new_tokens=2)
        envs.reset(seed=0)
        scores = []
        for _ in range(2):
            envs.step_async(np.array([5, 6]))
            _, rewards, terminated, truncated, info = envs.step_wait(timeout=60)  # raises instead of hanging
            scores.extend(rewards[terminated | truncated])
        envs.close()
    finally:
        torch.set_num_threads(threads)
    assert len(scores) == 2 and np.isfinite(scores).all()


def test_rgb_array_render_draws_the_context_at_a_fixed_size(tokenizer):
    env = make_env(tokenizer, render_mode="rgb_array", prompts=["the food was"])
    env.reset(seed=0)
    before = env.render()
    env.step(word_ids(tokenizer, " great")[0])
    after = env.render()
    assert before.dtype == np.uint8 and before.ndim == 3 and before.shape == after.shape
    assert (before != after).any() and (after < 128).any()


def test_stable_baselines3_can_make_the_env_from_its_id():
    """SB3 creates envs from an id with render_mode="rgb_array"; the text envs must accept it."""
    from stable_baselines3.common.env_util import make_vec_env

    envs = make_vec_env("text_envs/TextGeneration-v0", n_envs=2, env_kwargs={"max_new_tokens": 2})
    envs.reset()
    assert envs.render_mode == "rgb_array" and envs.get_images()[0].dtype == np.uint8


def test_text_observations_batch_across_differing_sub_spaces():
    """SyncVectorEnv(observation_mode="different") batches the envs' UnicodeText spaces as a Tuple of them (the
    mode compares the spaces, whose 1.1M-character sets must compare without a walk, and dispatches on the type)."""
    envs = [
        lambda prompt=prompt: gym.make(
            "text_envs/TextGeneration-v0",
            observation_mode="text",
            reward_model=lexicon_sentiment_reward,
            max_new_tokens=3,
            prompts=[prompt],
        )
        for prompt in ("the film was", "the soup")
    ]
    vector = gym.vector.SyncVectorEnv(envs, observation_mode="different")
    observations, _ = vector.reset(seed=0)
    assert isinstance(vector.observation_space, gym.spaces.Tuple) and vector.observation_space.contains(observations)
    observations, *_ = vector.step(np.array([190, 190]))  # '\x00' in both contexts
    assert vector.observation_space.contains(observations)


def test_the_prompt_index_reset_option_picks_each_envs_prompt_and_autoresets_draw_again(tokenizer):
    prompts = ["the film was", "the food was", "the hotel was"]
    env = TextGenerationVectorEnv(
        4, tokenizer=tokenizer, prompts=prompts, reward_model=lexicon_sentiment_reward, max_new_tokens=1
    )
    state = env.np_random.bit_generator.state
    _, info = env.reset(options={"prompt_index": [2, 0, 2, 1]})
    assert list(info["prompt"]) == [prompts[2], prompts[0], prompts[2], prompts[1]]
    assert env.np_random.bit_generator.state == state  # no draw taken
    env.step(np.zeros(4, dtype=np.int64))  # every episode ends (one token)
    env.step(np.zeros(4, dtype=np.int64))  # NEXT_STEP autoreset: new prompts are drawn
    assert env.np_random.bit_generator.state != state


@pytest.mark.parametrize(
    "indices, match",
    [([0, 1], "must hold 4 integer prompt indices"), ([0.0, 1.0, 0.0, 1.0], "integer"), ([0, 1, 2, 3], r"0\.\.2")],
)
def test_a_bad_prompt_index_option_is_refused_naming_it(tokenizer, indices, match):
    env = TextGenerationVectorEnv(
        4, tokenizer=tokenizer, prompts=["a", "b", "c"], reward_model=lexicon_sentiment_reward
    )
    with pytest.raises(ValueError, match=rf"options\['prompt_index'\].*{match}"):
        env.reset(options={"prompt_index": indices})
