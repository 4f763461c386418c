"""TextPPO on a tiny random Llama: devices, bf16 mixed precision, the LM head on completion positions only,
gradient checkpointing, and checkpoint resume (all on the CPU)."""

import pytest
import torch
from tiny_models import tiny_causal_lm
from transformers import LlamaForCausalLM

from text_envs import TextGenerationVectorEnv
from text_envs.rewards.lexicon import lexicon_sentiment_reward
from text_envs_agents.llm import rollout as lm_rollout
from text_envs_agents.llm.model import with_lora
from text_envs_agents.llm.rollout import sample_episodes
from text_envs_agents.text_ppo import TextPPO, TextPPOConfig
from text_envs_agents.text_ppo.checkpoint import load_state, save_state

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONFIG = TextPPOConfig(seed=1, ppo_epochs=2, minibatch_size=2)
LORA = {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]}


def make_env(num_envs=4, max_new_tokens=8):
    return TextGenerationVectorEnv(num_envs, reward_model=lexicon_sentiment_reward, max_new_tokens=max_new_tokens)


def tiny_llama(model_class=LlamaForCausalLM):
    """conftest's ``tiny_llama``, built on demand: the same weights at every call."""
    return tiny_causal_lm(model_class=model_class)


class ScaledLogitsLlama(LlamaForCausalLM):
    """A Llama whose logits are not its head applied to its last hidden states (as Cohere's ``logit_scale``)."""

    def forward(self, *args, **kwargs):
        output = super().forward(*args, **kwargs)
        output.logits = output.logits * 2.0
        return output


@pytest.mark.parametrize("device", ["cpu", "auto", torch.device("cpu")])
def test_device_holds_policy_reference_value_head_sampler_and_batch(device):
    ppo = TextPPO(make_env(), tiny_llama(), CONFIG, device=device)
    assert ppo.device == torch.device("cpu")  # "auto" without CUDA
    modules = [ppo.policy.model, ppo.policy.value_head, ppo.reference]
    assert {p.device for module in modules for p in module.parameters()} == {torch.device("cpu")}
    assert ppo.sampler.device == torch.device("cpu")
    batch = ppo.rollout()
    assert {t.device for t in (batch.prompt_ids, batch.completion_ids, batch.logprobs, batch.values, batch.scores)} == {
        torch.device("cpu")
    }
    assert batch.completion_lengths == batch.completion_mask.sum(1).tolist()
    assert batch.prompt_lengths == batch.prompt_mask.sum(1).tolist()


def test_mixed_precision_is_checked_naming_the_field():
    with pytest.raises(ValueError, match="mixed_precision"):
        TextPPOConfig(mixed_precision="fp16")
    with pytest.raises(ValueError, match="mixed_precision='bf16' keeps float32 master weights"):
        TextPPO(make_env(), tiny_llama().to(torch.bfloat16), TextPPOConfig(mixed_precision="bf16"))


def test_bf16_on_a_cpu_without_native_bf16_warns_and_on_one_with_it_does_not(monkeypatch):
    import warnings

    from text_envs_agents.llm import model as llm_model

    cpu = torch.device("cpu")
    monkeypatch.setattr(llm_model, "CPU_BF16_CHECKS", ("_no_such_probe",))
    assert not llm_model.native_bf16(cpu)
    with pytest.warns(UserWarning, match="does not compute in bfloat16 natively"):
        TextPPO(make_env(), tiny_llama(), TextPPOConfig(mixed_precision="bf16"), device="cpu")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    monkeypatch.setattr(llm_model, "CPU_BF16_CHECKS", ("_is_avx512_bf16_supported",))
    assert llm_model.native_bf16(cpu)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        TextPPO(make_env(), tiny_llama(), TextPPOConfig(mixed_precision="bf16"), device="cpu")
        TextPPO(make_env(), tiny_llama(), TextPPOConfig(mixed_precision="no"), device="cpu")


def test_bf16_mixed_precision_runs_forwards_in_bf16_over_float32_weights_and_optimizer_state():
    ppo = TextPPO(
        make_env(), tiny_llama(), TextPPOConfig(seed=1, ppo_epochs=2, minibatch_size=2, mixed_precision="bf16")
    )
    before = [p.detach().clone() for p in ppo.policy.parameters()]
    seen = []
    layer = ppo.policy.model.model.layers[0].mlp.down_proj
    layer.register_forward_hook(lambda module, inputs, output: seen.append((torch.is_grad_enabled(), output.dtype)))
    metrics = ppo.learn(iterations=1).history[-1]
    assert {dtype for _, dtype in seen} == {torch.bfloat16}
    assert any(grad for grad, _ in seen) and not all(grad for grad, _ in seen)  # rollout and update forwards
    assert all(torch.isfinite(torch.tensor(metrics[key])) for key in ("kl", "policy_loss", "value_loss", "entropy"))
    parameters = list(ppo.policy.parameters())
    assert {p.dtype for p in parameters} == {torch.float32}
    assert any(not torch.equal(a, b) for a, b in zip(before, parameters, strict=True))
    states = [ppo.optimizer.state[p] for p in parameters]
    assert {s[key].dtype for s in states for key in ("exp_avg", "exp_avg_sq")} == {torch.float32}


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_packed_logits_with_the_head_on_completion_positions_equal_the_padded_batch(lora, monkeypatch):
    model = tiny_llama()
    if lora:
        model = with_lora(model, {**LORA, "target_modules": ["q_proj", "v_proj", "lm_head"]})
        for name, parameter in model.named_parameters():  # non-zero adapters, so that they count
            if "lora_B" in name:
                torch.nn.init.normal_(parameter, std=0.1)
    env = make_env(5, 12)
    batch = sample_episodes(model, env, 4, torch.Generator().manual_seed(4))
    assert len(set(batch.completion_lengths)) > 1, "completions of different lengths"
    assert lm_rollout.reads_packed_sequences(model) and lm_rollout.splits_lm_head(model)
    head_inputs = []
    head = lm_rollout.unwrap_peft(model).get_output_embeddings()
    head.register_forward_hook(lambda module, inputs, output: head_inputs.append(inputs[0].shape))
    with torch.no_grad():
        logits, hidden = lm_rollout.completion_outputs(model, batch, hidden=True)
        assert head_inputs == [(*batch.completion_ids.shape, 64)]  # the completion positions only
        monkeypatch.setattr(lm_rollout, "reads_packed_sequences", lambda model: False)
        padded_logits, padded_hidden = lm_rollout.completion_outputs(model, batch, hidden=True)
    mask = batch.completion_mask.bool()
    torch.testing.assert_close(logits[mask], padded_logits[mask], atol=1e-4, rtol=0)
    torch.testing.assert_close(hidden[mask], padded_hidden[mask], atol=1e-4, rtol=0)


def test_a_head_that_scales_its_logits_keeps_the_full_forward(monkeypatch):
    model = tiny_llama(ScaledLogitsLlama)
    assert not lm_rollout.splits_lm_head(model)
    batch = sample_episodes(model, make_env(5, 12), 4, torch.Generator().manual_seed(4))
    with torch.no_grad():
        logits, _ = lm_rollout.completion_outputs(model, batch)
        monkeypatch.setattr(lm_rollout, "reads_packed_sequences", lambda model: False)
        padded_logits, _ = lm_rollout.completion_outputs(model, batch)
    mask = batch.completion_mask.bool()
    torch.testing.assert_close(logits[mask], padded_logits[mask], atol=1e-4, rtol=0)


def _loss_and_gradients(gradient_checkpointing: bool, lora: bool):
    config = TextPPOConfig(seed=1, gradient_checkpointing=gradient_checkpointing, lora=LORA if lora else None)
    ppo = TextPPO(make_env(), tiny_llama(), config)
    mlp = lm_rollout.unwrap_peft(ppo.policy.model).model.layers[0].mlp
    forward, mlp_calls = mlp.forward, []
    # module hooks do not see the recompute; the no-grad probe forwards of the packing checks do not count
    mlp.forward = lambda x: (mlp_calls.append(torch.is_grad_enabled()), forward(x))[1]
    batch = ppo.rollout()
    # outside the update's grad-enabled forward no layer is flagged (older transformers drop a flagged layer's cache)
    assert not any(module.training for module in ppo.policy.modules())
    mlp_calls.clear()
    logprobs, values, _ = ppo._sequence_outputs(batch)
    mask = batch.completion_mask
    loss = (logprobs * mask).sum() + ((values - 1.0) ** 2 * mask).sum()
    loss.backward()
    gradients = {name: p.grad.clone() for name, p in ppo.policy.named_parameters() if p.requires_grad}
    return loss.detach(), gradients, sum(mlp_calls)


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_gradient_checkpointing_recomputes_the_layers_and_gives_the_same_loss_and_gradients(lora):
    loss, gradients, calls = _loss_and_gradients(False, lora)
    checkpointed_loss, checkpointed_gradients, checkpointed_calls = _loss_and_gradients(True, lora)
    assert (calls, checkpointed_calls) == (1, 2)  # forward, then the recompute in the backward pass
    torch.testing.assert_close(checkpointed_loss, loss, atol=1e-5, rtol=0)
    assert checkpointed_gradients.keys() == gradients.keys()
    for name, gradient in gradients.items():
        torch.testing.assert_close(checkpointed_gradients[name], gradient, atol=1e-5, rtol=0, msg=name)


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_an_iteration_and_checkpoint_resume_on_a_tiny_llama(lora, tmp_path):
    config = TextPPOConfig(seed=1, ppo_epochs=2, minibatch_size=2, lora=LORA if lora else None)
    ppo = TextPPO(make_env(), tiny_llama(), config)
    ppo.learn(iterations=1).save(tmp_path)
    ppo.learn(iterations=1)
    resumed = TextPPO.load(tmp_path, model=tiny_llama(), device="cpu")
    assert resumed.iteration == 1
    resumed.learn(iterations=1)
    for (name, a), b in zip(ppo.policy.named_parameters(), resumed.policy.parameters(), strict=True):
        assert torch.equal(a, b), name
    assert resumed.history[-1]["kl"] == ppo.history[-1]["kl"]


def test_a_checkpoint_sampled_on_another_device_type_restarts_the_sampling_stream(tmp_path):
    TextPPO(make_env(), tiny_llama(), CONFIG).save(tmp_path)
    rng = load_state(tmp_path / "rng.safetensors")
    assert rng["sampler_device"] == "cpu"
    # a CUDA generator's state: seed and offset, 16 bytes
    save_state(
        tmp_path / "rng.safetensors", {**rng, "sampler_device": "cuda", "sampler": torch.zeros(16, dtype=torch.uint8)}
    )
    with pytest.warns(UserWarning, match="the run sampled on cuda, this trainer on cpu; the sampling stream restarts"):
        resumed = TextPPO.load(tmp_path, model=tiny_llama())
    resumed.learn(iterations=1)
