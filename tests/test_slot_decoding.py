"""Slot decoders against the model's own full forward: GPT-2 and tiny random Llama, Qwen2 and Mistral models,
through prefills, steps and restarts, with LoRA; what they refuse falls back to Hugging Face's path."""

import pytest
import torch
from tiny_models import TINY_SHAPE
from transformers import (
    GemmaConfig,
    GemmaForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from text_envs.lm import load_causal_lm
from text_envs_agents import IncrementalLM
from text_envs_agents.llm.gpt2_decoding import GPT2Decoder
from text_envs_agents.llm.llama_decoding import LlamaDecoder
from text_envs_agents.llm.slot_decoding import slot_decoder

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CAPACITY = 40
TINY = {
    "llama": (LlamaConfig, LlamaForCausalLM, {}),
    "llama-head-dim": (LlamaConfig, LlamaForCausalLM, {"head_dim": 32}),
    "llama-tied": (LlamaConfig, LlamaForCausalLM, {"tie_word_embeddings": True}),
    "llama-linear-rope": (
        LlamaConfig,
        LlamaForCausalLM,
        {"rope_parameters": {"rope_type": "linear", "factor": 4.0, "rope_theta": 10000.0}},
    ),
    "qwen2": (Qwen2Config, Qwen2ForCausalLM, {}),
    "mistral": (MistralConfig, MistralForCausalLM, {"sliding_window": CAPACITY}),
}


def tiny_model(architecture, **overrides):
    """A random model of ``TINY[architecture]``; biases and norm weights random too, so that they count."""
    config_class, model_class, options = TINY[architecture]
    torch.manual_seed(0)
    model = model_class(config_class(**{**TINY_SHAPE, **options, **overrides}))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.dim() == 1:
                parameter.normal_(1.0 if "norm" in name else 0.0, 0.3)
    return model.eval()


def model_of(architecture):
    return load_causal_lm().eval() if architecture == "gpt2" else tiny_model(architecture)


@torch.no_grad()
def last_position(model, token_lists):
    """Next-token logits and final hidden state after each token list, one plain forward per list."""
    logits, hidden = [], []
    for tokens in token_lists:
        output = model(input_ids=torch.tensor([tokens]), output_hidden_states=True)
        logits.append(output.logits[0, -1])
        hidden.append(output.hidden_states[-1][0, -1])
    return torch.stack(logits), torch.stack(hidden)


def right_padded(token_lists, pad=1):
    width = max(len(tokens) for tokens in token_lists)
    ids = torch.full((len(token_lists), width), pad)
    for row, tokens in enumerate(token_lists):
        ids[row, : len(tokens)] = torch.tensor(tokens)
    return ids, torch.tensor([len(tokens) for tokens in token_lists])


def check_against_plain_forwards(model, generator, steps=12):
    """Prefill 5 rows of different lengths, then step them, restarting two rows half-way."""
    contexts = [torch.randint(2, 900, (n,), generator=generator).tolist() for n in (3, 9, 1, 6, 4)]
    decoder = slot_decoder(model, len(contexts), CAPACITY)
    assert decoder is not None
    with torch.no_grad():
        outputs = decoder.prefill(torch.arange(len(contexts)), *right_padded(contexts))
        for step in range(steps):
            expected = last_position(model, contexts)
            torch.testing.assert_close(outputs[0], expected[0], atol=1e-4, rtol=0)
            torch.testing.assert_close(outputs[1], expected[1], atol=1e-4, rtol=0)
            tokens = torch.randint(2, 900, (len(contexts),), generator=generator)
            outputs = decoder.step(tokens)
            for row, token in enumerate(tokens.tolist()):
                contexts[row].append(token)
            if step == steps // 2:
                restarted = torch.tensor([1, 3])
                fresh = [torch.randint(2, 900, (n,), generator=generator).tolist() for n in (7, 2)]
                new_outputs = decoder.prefill(restarted, *right_padded(fresh))
                for row, tokens_of_row, logits, hidden in zip(restarted.tolist(), fresh, *new_outputs, strict=True):
                    contexts[row] = tokens_of_row
                    outputs[0][row], outputs[1][row] = logits, hidden


@pytest.mark.parametrize("architecture", ["gpt2", *TINY])
def test_decoder_matches_plain_forwards_through_steps_and_restarts(architecture):
    check_against_plain_forwards(model_of(architecture), torch.Generator().manual_seed(0))


def test_the_tiny_configs_exercise_what_they_are_named_for():
    attention = tiny_model("llama-head-dim").model.layers[0].self_attn
    assert attention.head_dim == 32 and attention.q_proj.out_features == 4 * 32 != TINY_SHAPE["hidden_size"]
    tied = tiny_model("llama-tied")
    assert tied.lm_head.weight is tied.model.embed_tokens.weight
    assert tiny_model("llama").lm_head.weight is not tiny_model("llama").model.embed_tokens.weight
    assert tiny_model("qwen2").model.layers[0].self_attn.q_proj.bias.abs().sum() > 0
    assert tiny_model("llama-linear-rope").model.rotary_emb.rope_type == "linear"
    assert type(slot_decoder(tiny_model("mistral"), 2, CAPACITY)) is LlamaDecoder
    assert type(slot_decoder(load_causal_lm(), 2, CAPACITY)) is GPT2Decoder


LORA_TARGETS = {"gpt2": ["c_attn", "c_fc"], "llama": ["q_proj", "v_proj"], "qwen2": ["q_proj", "v_proj"]}


@pytest.mark.parametrize("architecture", list(LORA_TARGETS))
def test_decoder_runs_lora_adapters_and_the_disabled_adapter_base(architecture):
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        task_type="CAUSAL_LM",
        r=4,
        target_modules=LORA_TARGETS[architecture],
        fan_in_fan_out=architecture == "gpt2",
        init_lora_weights=False,
    )
    model = get_peft_model(model_of(architecture), config).eval()
    generator = torch.Generator().manual_seed(1)
    check_against_plain_forwards(model, generator)
    with model.disable_adapter():
        check_against_plain_forwards(model, generator)
    # The adapters change the outputs, so the two checks above compared different functions.
    ids = torch.tensor([[5, 6, 7]])
    with torch.no_grad():
        adapted = model(input_ids=ids).logits
        with model.disable_adapter():
            assert not torch.allclose(adapted, model(input_ids=ids).logits)


def test_decoder_runs_lora_on_the_embeddings():
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=4, target_modules=["wte"], init_lora_weights=False)
    check_against_plain_forwards(get_peft_model(load_causal_lm(), config).eval(), torch.Generator().manual_seed(3))


def test_decoder_keeps_the_model_dtype_and_grouped_keys():
    model = tiny_model("llama").to(torch.bfloat16)
    decoder = slot_decoder(model, 2, CAPACITY)
    assert decoder.keys.dtype == torch.bfloat16 and decoder.keys.shape[2] == TINY_SHAPE["num_key_value_heads"]
    ids = torch.randint(2, 900, (2, 6), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        logits, hidden = decoder.prefill(torch.arange(2), ids, torch.tensor([6, 6]))
        logits, hidden = decoder.step(torch.tensor([7, 8]))
        expected = model(input_ids=torch.cat([ids, torch.tensor([[7], [8]])], 1), output_hidden_states=True)
    assert logits.dtype == hidden.dtype == torch.bfloat16
    # bfloat16 keeps 8 bits of mantissa: the same function, to its rounding.
    torch.testing.assert_close(logits, expected.logits[:, -1], atol=0.1, rtol=0.05)


def test_what_slots_cannot_compute_exactly_is_refused():
    short_window = tiny_model("mistral", sliding_window=CAPACITY - 1)
    assert LlamaDecoder.max_positions(short_window) == TINY_SHAPE["max_position_embeddings"]
    assert slot_decoder(short_window, 2, CAPACITY) is None
    assert slot_decoder(short_window, 2, CAPACITY - 1) is not None
    qwen_window = tiny_model("qwen2", use_sliding_window=True, sliding_window=16, max_window_layers=0)
    assert qwen_window.model.layers[1].self_attn.sliding_window == 16
    assert slot_decoder(qwen_window, 2, CAPACITY) is None
    dynamic = tiny_model("llama", rope_parameters={"rope_type": "dynamic", "factor": 2.0, "rope_theta": 10000.0})
    assert slot_decoder(dynamic, 2, CAPACITY) is not None  # within the original context, dynamic RoPE is plain
    assert slot_decoder(tiny_model("llama"), 2, TINY_SHAPE["max_position_embeddings"] + 1) is None
    gemma = GemmaForCausalLM(GemmaConfig(**TINY_SHAPE, head_dim=16))
    assert LlamaDecoder.max_positions(gemma) == GPT2Decoder.max_positions(gemma) == 0
    assert slot_decoder(gemma, 2, CAPACITY) is None
    with pytest.raises(TypeError, match="GemmaForCausalLM"):
        LlamaDecoder(gemma, 2, CAPACITY)
    with pytest.raises(ValueError, match="sliding window"):
        LlamaDecoder(short_window, 2, CAPACITY)


def test_incremental_lm_falls_back_to_full_forwards_for_a_short_sliding_window():
    model = tiny_model("mistral", sliding_window=6)
    lm = IncrementalLM(model, merge_restarts=False)
    ids = torch.randint(2, 900, (2, 12), generator=torch.Generator().manual_seed(5))
    mask = torch.ones_like(ids)
    mask[0, :4] = 0
    with torch.no_grad(), pytest.warns(UserWarning, match="cannot shift"):
        for _ in range(3):
            output = lm(ids, mask)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            expected = model(input_ids=ids, attention_mask=mask, position_ids=positions, output_hidden_states=True)
            torch.testing.assert_close(output.logits, expected.logits[:, -1], atol=1e-4, rtol=0)
            torch.testing.assert_close(output.hidden, expected.hidden_states[-1][:, -1], atol=1e-4, rtol=0)
            ids, mask = torch.roll(ids, -1, 1), torch.roll(mask, -1, 1)
            ids[:, -1], mask[:, -1] = 9, 1
    assert not any(isinstance(state.kv_cache, LlamaDecoder) for state in lm._states.values())


def test_a_rollout_longer_than_the_models_positions_decodes_on_its_own_forward():
    """RoPE models read past ``max_position_embeddings``; slots of that length are refused, not overflowed."""
    from text_envs import TextGenerationVectorEnv
    from text_envs.rewards.lexicon import lexicon_sentiment_reward
    from text_envs_agents.llm.rollout import sample_episodes

    model = tiny_model("llama", max_position_embeddings=16)
    env = TextGenerationVectorEnv(3, reward_model=lexicon_sentiment_reward, max_new_tokens=24)
    batch = sample_episodes(model, env, 0, torch.Generator().manual_seed(0))
    assert int((batch.prompt_mask.sum(1) + batch.completion_mask.sum(1)).max()) > 16
