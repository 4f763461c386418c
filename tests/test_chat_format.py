"""prompt_format="chat": both text envs show the tokenizer's chat template, end at its end-of-turn token, and give
the reward model the plain prompt and the completion text only (SmolLM2-135M-Instruct's real tokenizer)."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from text_envs import TextGenerationEnv, TicTacToeTextEnv
from text_envs.generation.prompt_format import PromptFormat, encode_continuations
from text_envs.lm import load_tokenizer
from text_envs.rewards.lexicon import lexicon_sentiment_reward
from text_envs.tictactoe import rules
from text_envs.tictactoe.text_env import prompt_text

SMOLLM2 = "smollm2-135m-instruct"
PROMPTS = ["the food was", "we tried this cafe for lunch."]
SYSTEM = "Answer in one short sentence."


@pytest.fixture(scope="module")
def chat_tokenizer():
    return load_tokenizer(SMOLLM2)


@pytest.fixture(scope="module")
def end_of_turn(chat_tokenizer):
    return chat_tokenizer.convert_tokens_to_ids("<|im_end|>")


@pytest.fixture
def tokenizer_with_other_eos():
    """SmolLM2's tokenizer with EOS moved to ``<|endoftext|>``: ending at ``<|im_end|>`` is then the end-of-turn
    rule's doing, not EOS's (the shipped tokenizer's EOS is ``<|im_end|>`` itself)."""
    tokenizer = load_tokenizer(SMOLLM2)
    tokenizer.eos_token = "<|endoftext|>"
    return tokenizer


def template_ids(tokenizer, prompt, system_prompt=None):
    messages = ([] if system_prompt is None else [{"role": "system", "content": system_prompt}]) + [
        {"role": "user", "content": prompt}
    ]
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)["input_ids"]


def recording_reward(calls):
    def reward(prompts, completions):
        calls.append((list(prompts), list(completions)))
        return [float(len(c)) for c in completions]

    return reward


def real_ids(observation):
    return observation["input_ids"][observation["attention_mask"] == 1].tolist()


def make_chat_env(tokenizer=SMOLLM2, **kwargs):
    kwargs.setdefault("prompts", PROMPTS)
    kwargs.setdefault("reward_model", lexicon_sentiment_reward)
    kwargs.setdefault("max_prompt_tokens", 64)
    return TextGenerationEnv(tokenizer=tokenizer, prompt_format="chat", **kwargs)


@pytest.mark.parametrize("system_prompt", [None, SYSTEM])
def test_prompt_ids_are_the_templates_ids(chat_tokenizer, system_prompt):
    env = make_chat_env(system_prompt=system_prompt)
    for prompt, ids in zip(PROMPTS, env.task.prompt_ids, strict=True):
        assert ids.tolist() == template_ids(chat_tokenizer, prompt, system_prompt)
    observation, info = env.reset(seed=0)
    assert info["prompt"] in PROMPTS  # the plain prompt, not the templated one
    assert real_ids(observation) == template_ids(chat_tokenizer, info["prompt"], system_prompt)
    observation, _ = env.reset(options={"prompt": "tell me a joke"})
    assert real_ids(observation) == template_ids(chat_tokenizer, "tell me a joke", system_prompt)
    assert env.observation_space.contains(observation)
    text = chat_tokenizer.decode(real_ids(observation))
    assert text.endswith("<|im_start|>user\ntell me a joke<|im_end|>\n<|im_start|>assistant\n")
    assert (system_prompt or "You are a helpful AI assistant named SmolLM") in text


def test_end_of_turn_token_comes_from_the_template(chat_tokenizer, end_of_turn):
    assert PromptFormat(chat_tokenizer, "chat").end_of_turn_token_id == end_of_turn
    assert PromptFormat(chat_tokenizer, "plain").end_of_turn_token_id is None
    # Any template: one that closes turns with an added token, and one that closes them with plain text.
    custom = load_tokenizer()
    custom.chat_template = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}<|pad|>{% endfor %}"
        "{% if add_generation_prompt %}assistant:{% endif %}"
    )
    prompt_format = PromptFormat(custom, "chat")
    assert prompt_format.end_of_turn_token_id == custom.convert_tokens_to_ids("<|pad|>")
    assert prompt_format.encode(["hi"])[0] == custom("user: hi<|pad|>assistant:", add_special_tokens=False).input_ids
    custom.chat_template = custom.chat_template.replace("<|pad|>", "\n")
    prompt_format = PromptFormat(custom, "chat")
    assert prompt_format.end_of_turn_token_id is None
    assert prompt_format.turn_end_token_ids == {custom.eos_token_id}


def test_episode_ends_at_end_of_turn_and_the_reward_model_sees_the_completion_only(
    tokenizer_with_other_eos, end_of_turn
):
    calls = []
    env = make_chat_env(tokenizer_with_other_eos, reward_model=recording_reward(calls), max_new_tokens=10)
    assert env.task.stop_token_ids == {end_of_turn, tokenizer_with_other_eos.eos_token_id}
    env.reset(options={"prompt": "the food was"})
    answer = tokenizer_with_other_eos.encode("Great, thanks!", add_special_tokens=False)
    for token in answer:
        assert env.step(token)[1:4] == (0.0, False, False)
    observation, reward, terminated, truncated, info = env.step(end_of_turn)
    assert terminated is True and truncated is False
    assert calls == [(["the food was"], ["Great, thanks!"])]
    assert info["completion"] == "Great, thanks!" and reward == info["score"] == len("Great, thanks!")
    assert info["completion_ids"].tolist() == [*answer, end_of_turn]
    assert env.observation_space.contains(observation)


def test_a_tiny_llama_plays_a_chat_episode(tokenizer_with_other_eos, end_of_turn, one_torch_thread):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer_with_other_eos),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    model = LlamaForCausalLM(config).eval()
    special = torch.tensor(sorted(tokenizer_with_other_eos.added_tokens_decoder))
    calls = []
    env = make_chat_env(tokenizer_with_other_eos, reward_model=recording_reward(calls), max_new_tokens=8)
    observation, info = env.reset(seed=3)
    sampled = []
    for _ in range(4):  # the random model's own tokens, special ones excluded, then the end of its turn
        ids, mask = (torch.as_tensor(observation[key])[None] for key in ("input_ids", "attention_mask"))
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask).logits[0, -1]
        logits[special] = -torch.inf
        sampled.append(int(logits.argmax()))
        observation, reward, terminated, truncated, _ = env.step(sampled[-1])
        assert env.observation_space.contains(observation) and not (terminated or truncated)
    _, reward, terminated, truncated, final = env.step(end_of_turn)
    assert terminated and not truncated
    completion = tokenizer_with_other_eos.decode(sampled)
    assert calls == [([info["prompt"]], [completion])] and final["completion"] == completion
    assert "<|im_" not in completion and "assistant" not in completion


def test_text_observations_are_the_templated_text(chat_tokenizer, end_of_turn):
    env = make_chat_env(observation_mode="text", system_prompt=SYSTEM)
    observation, info = env.reset(options={"prompt": "the food was"})
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "the food was"}]
    templated = chat_tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert observation == templated and env.observation_space.contains(observation)
    for token in chat_tokenizer.encode("Tasty.", add_special_tokens=False):
        observation, *_ = env.step(token)
    assert observation == templated + "Tasty."
    observation, _, terminated, _, info = env.step(end_of_turn)
    assert terminated and observation == templated + "Tasty.<|im_end|>" and info["completion"] == "Tasty."


def test_templated_prompts_truncate_or_raise_as_plain_prompts_do(chat_tokenizer):
    full = template_ids(chat_tokenizer, "the food was")
    env = make_chat_env(max_prompt_tokens=10)
    observation, _ = env.reset(options={"prompt": "the food was"})
    assert real_ids(observation) == full[-10:]
    with pytest.raises(ValueError, match=f"is {len(full)} tokens, more than max_prompt_tokens=10"):
        make_chat_env(max_prompt_tokens=10, prompt_truncation="error", prompts=["the food was"])
    fitting = make_chat_env(max_prompt_tokens=len(full), prompt_truncation="error", prompts=["the food was"])
    with pytest.raises(ValueError, match="more than max_prompt_tokens"):
        fitting.reset(options={"prompt": "the food was really very good"})


def test_bad_prompt_formats_are_refused(tokenizer):
    with pytest.raises(ValueError, match="prompt_format must be one of"):
        TextGenerationEnv(tokenizer=SMOLLM2, prompts=PROMPTS, reward_model=len, prompt_format="html")
    with pytest.raises(ValueError, match="system_prompt .*prompt_format='chat'"):
        TextGenerationEnv(tokenizer=SMOLLM2, prompts=PROMPTS, reward_model=len, system_prompt=SYSTEM)
    with pytest.raises(ValueError, match="system_prompt must be a non-empty string"):
        make_chat_env(system_prompt=" ")
    # The embedded tokenizer has no chat template: the error names the argument and the tokenizer.
    message = f"prompt_format='chat' needs a tokenizer with a chat template.*{tokenizer.name_or_path}"
    with pytest.raises(ValueError, match=message):
        make_chat_env(tokenizer)
    with pytest.raises(ValueError, match=message):
        TicTacToeTextEnv(tokenizer=tokenizer, prompt_format="chat")


def test_a_template_that_refuses_the_messages_is_a_clear_error():
    custom = load_tokenizer()
    custom.chat_template = (
        "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
        "{% for m in messages %}{{ m['content'] }}<|pad|>{% endfor %}"
    )
    with pytest.raises(ValueError, match="refused the messages.*System role not supported"):
        TextGenerationEnv(tokenizer=custom, prompt_format="chat", system_prompt=SYSTEM, reward_model=len)


def test_gym_make_and_both_env_checkers_with_the_chat_format():
    env = gym.make(
        "text_envs/TextGeneration-v0",
        tokenizer=SMOLLM2,
        prompt_format="chat",
        max_prompt_tokens=64,
        reward_model=lexicon_sentiment_reward,
    )
    check_env(env.unwrapped, skip_render_check=False)
    sb3_check_env(env.unwrapped, warn=True)
    text_env = gym.make("text_envs/TicTacToeText-v0", tokenizer=SMOLLM2, prompt_format="chat", system_prompt=SYSTEM)
    check_env(text_env.unwrapped, skip_render_check=False)
    sb3_check_env(text_env.unwrapped, warn=True)


@pytest.mark.parametrize("mode", ["vector_entry_point", "sync", "async"])
def test_make_vec_with_the_chat_format(chat_tokenizer, end_of_turn, mode):
    envs = gym.make_vec(
        "text_envs/TextGeneration-v0",
        num_envs=2,
        vectorization_mode=mode,
        tokenizer=SMOLLM2,
        prompt_format="chat",
        prompts=PROMPTS,
        max_prompt_tokens=64,
        max_new_tokens=3,
        reward_model=lexicon_sentiment_reward,
    )
    observations, info = envs.reset(seed=0)
    assert envs.observation_space.contains(observations)
    for row, prompt in enumerate(info["prompt"]):
        assert real_ids({key: value[row] for key, value in observations.items()}) == template_ids(
            chat_tokenizer, prompt
        )
    word = chat_tokenizer.encode(" good", add_special_tokens=False)[0]
    observations, rewards, terminated, truncated, info = envs.step(np.array([word, end_of_turn]))
    assert envs.observation_space.contains(observations)
    assert terminated.tolist() == [False, True] and not truncated.any()
    assert info["completion"][1] == ""
    envs.close()


def test_tictactoe_chat_prompts_and_moves(tokenizer_with_other_eos, end_of_turn):
    env = TicTacToeTextEnv(tokenizer=tokenizer_with_other_eos, prompt_format="chat", system_prompt=SYSTEM)
    observation, _ = env.reset(seed=0)
    assert real_ids(observation) == template_ids(tokenizer_with_other_eos, prompt_text(0), SYSTEM)
    assert env.observation_space.contains(observation)
    longest = max(len(template_ids(tokenizer_with_other_eos, prompt_text(s), SYSTEM)) for s in (0, 1))
    assert env.context_length >= longest + env.max_move_tokens
    five = tokenizer_with_other_eos.encode("5", add_special_tokens=False)
    assert len(five) == 1
    observation, reward, terminated, _, info = env.step(five[0])  # the completion "5": the centre
    assert info["move"] == 4 and not info["illegal_move"] and env.observation_space.contains(observation)
    state = int(rules.state_from_observation(info["board"]))
    assert real_ids(observation) == template_ids(tokenizer_with_other_eos, prompt_text(state), SYSTEM)
    # The end-of-turn token (not EOS here) ends a turn without a digit: an illegal move.
    _, reward, terminated, _, info = env.step(end_of_turn)
    assert (reward, terminated, info["illegal_move"], info["move"]) == (-1.0, True, True, -1)


def test_continuations_are_encoded_alone_unless_the_tokenizer_starts_strings_with_a_word_boundary(tokenizer):
    from tiny_models import sentencepiece_style_tokenizer

    texts = ["'s", "\nopponent played 3.\n", " X", "7", ""]
    assert encode_continuations(tokenizer, texts) == tokenizer(texts, add_special_tokens=False)["input_ids"]
    sentencepiece = sentencepiece_style_tokenizer()
    boundary = sentencepiece.convert_tokens_to_ids("▁")
    alone = sentencepiece(texts[1:4], add_special_tokens=False)["input_ids"]
    assert all(ids[0] == boundary for ids in alone)
    assert encode_continuations(sentencepiece, texts[1:4]) == [ids[1:] for ids in alone]
