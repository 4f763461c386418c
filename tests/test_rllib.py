"""Ray RLlib (the ``rllib`` extra): the two RLModules' forward passes, then PPO iterations with 2 env runners.

One local Ray instance (2 CPUs, no dashboard) serves the whole file; each PPO test starts its own 2 env runners.
"""

import math
import os

import numpy as np
import pytest
import torch

ray = pytest.importorskip("ray")

from ray.rllib.core.columns import Columns  # noqa: E402
from ray.rllib.core.rl_module.rl_module import RLModuleSpec  # noqa: E402
from ray.rllib.utils.torch_utils import FLOAT_MIN  # noqa: E402

from text_envs.lm import positions_from_mask  # noqa: E402
from text_envs.rewards.lexicon import lexicon_sentiment_reward  # noqa: E402
from text_envs_agents.rllib import (  # noqa: E402
    ActionMaskingTorchRLModule,
    CausalLMTorchRLModule,
    episode_score_mean,
    ppo_config,
    text_generation_env_creator,
    tictactoe_env_creator,
)

TEXT_ENV_CONFIG = {"reward_model": lexicon_sentiment_reward, "max_new_tokens": 8}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance for the file: starting Ray takes seconds. Workers inherit one OpenMP thread."""
    omp = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"
    # address="local": a new instance even where a cluster started with `ray start` is running (or left its address).
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    if omp is None:
        del os.environ["OMP_NUM_THREADS"]
    else:
        os.environ["OMP_NUM_THREADS"] = omp


def build_module(env_name, env):
    """The module ``ppo_config`` gives RLlib for ``env``, built here in the test process."""
    return ppo_config(env_name, num_env_runners=0).get_rl_module_spec(env=env).build()


def tictactoe_batch(env, moves=12):
    """Observations of random legal play over several games: different legal cells, and terminal boards."""
    rng = np.random.default_rng(0)
    observation, _ = env.reset(seed=0)
    rows = [observation]
    while len(rows) < moves:
        action = rng.choice(np.flatnonzero(observation["action_mask"]))
        observation, _, terminated, truncated, _ = env.step(action)
        rows.append(observation)
        if terminated or truncated:
            observation, _ = env.reset()
            rows.append(observation)
    return {key: torch.as_tensor(np.stack([row[key] for row in rows])) for key in rows[0]}


def test_masking_module_gives_illegal_moves_no_probability():
    env = tictactoe_env_creator({"opponent": "random"})
    module = build_module("TicTacToe-v0", env)
    assert isinstance(module, ActionMaskingTorchRLModule)
    observations = tictactoe_batch(env)
    mask = observations["action_mask"]
    assert (mask == 0).any() and (mask == 1).any()
    unmasked = {**observations, "action_mask": torch.ones_like(mask)}
    with torch.no_grad():
        raw = module.forward_exploration({Columns.OBS: unmasked})[Columns.ACTION_DIST_INPUTS]
        for forward in (module.forward_exploration, module.forward_inference, module.forward_train):
            logits = forward({Columns.OBS: dict(observations)})[Columns.ACTION_DIST_INPUTS]
            assert torch.all(logits[mask == 0] == FLOAT_MIN)
            torch.testing.assert_close(logits[mask == 1], raw[mask == 1])
        # What RLlib samples from: no illegal cell in 2,000 draws per board.
        distribution = module.get_exploration_action_dist_cls().from_logits(
            module.forward_exploration({Columns.OBS: dict(observations)})[Columns.ACTION_DIST_INPUTS]
        )
        actions = torch.stack([distribution.sample() for _ in range(2000)])
    playable = mask.any(dim=1)  # the batch also holds terminal boards, where no move is legal
    assert playable.sum() >= 8
    assert torch.all(mask.gather(1, actions.T.long())[playable] == 1)
    # A terminal board (no legal move) stays a finite, uniform distribution.
    terminal = {Columns.OBS: {**observations, "action_mask": torch.zeros_like(mask)}}
    logits = module.forward_exploration(terminal)[Columns.ACTION_DIST_INPUTS]
    torch.testing.assert_close(torch.softmax(logits, dim=-1), torch.full_like(logits, 1 / 9))
    # The value head reads the board, not the mask; the batch given is left as it was.
    batch = {Columns.OBS: observations}
    values = module.compute_values(batch)
    assert values.shape == (len(mask),) and torch.isfinite(values).all()
    assert batch[Columns.OBS] is observations and set(observations) == {"action_mask", "observations"}


def test_causal_lm_module_logits_are_the_lm_last_position_logits():
    env = text_generation_env_creator({**TEXT_ENV_CONFIG, "max_new_tokens": 6})
    module = build_module("TextGeneration-v0", env)
    assert isinstance(module, CausalLMTorchRLModule)
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(4):  # contexts of different lengths, left-padded
        observation, _ = env.reset(seed=seed)
        for _ in range(seed):
            observation, *_ = env.step(int(rng.integers(5, env.action_space.n)))
        rows.append(observation)
    observations = {key: torch.as_tensor(np.stack([row[key] for row in rows])) for key in rows[0]}
    assert len(set(observations["attention_mask"].sum(dim=1).tolist())) > 1

    head = module.lm.get_output_embeddings()
    head_inputs = []
    hook = head.register_forward_hook(lambda _, inputs, __: head_inputs.append(inputs[0]))
    with torch.no_grad():
        output = module.forward_exploration({Columns.OBS: observations})
    hook.remove()
    # The LM head ran once, on one hidden vector per context: no full-sequence logits.
    assert [tuple(x.shape) for x in head_inputs] == [(4, head.weight.shape[1])]

    ids, mask = observations["input_ids"], observations["attention_mask"]
    with torch.no_grad():
        full = module.lm(input_ids=ids, attention_mask=mask, position_ids=positions_from_mask(mask))
    expected = full.logits[:, -1, : env.action_space.n]
    torch.testing.assert_close(output[Columns.ACTION_DIST_INPUTS], expected, rtol=1e-5, atol=1e-5)
    # Training forward: the same logits with gradients, the hidden state for the value loss; values start at 0.
    train_output = module.forward_train({Columns.OBS: observations})
    torch.testing.assert_close(train_output[Columns.ACTION_DIST_INPUTS].detach(), expected, rtol=1e-5, atol=1e-5)
    assert train_output[Columns.ACTION_DIST_INPUTS].requires_grad
    assert torch.all(module.compute_values({Columns.OBS: observations}, train_output[Columns.EMBEDDINGS]) == 0)
    assert module.training and not any(layer.training for layer in module.lm.modules())  # dropout stays off


class MaskIgnoringModule(ActionMaskingTorchRLModule):
    """The same network told that every cell is legal: the control for the illegal-move count."""

    def _forward(self, batch, **kwargs):
        observations = batch[Columns.OBS]
        every_cell = {**observations, "action_mask": torch.ones_like(observations["action_mask"])}
        return super()._forward({**batch, Columns.OBS: every_cell}, **kwargs)


def learner_losses(result):
    return [value for key, value in result["learners"]["default_policy"].items() if key.endswith("loss")]


@pytest.mark.usefixtures("local_ray")
def test_ppo_tictactoe_with_two_env_runners_never_moves_illegally():
    config = ppo_config(
        "TicTacToe-v0",
        env_config={"opponent": "random"},
        num_env_runners=2,
        train_batch_size_per_learner=400,
        minibatch_size=100,
        num_epochs=2,
    )
    algorithm = config.build_algo()
    try:
        assert algorithm.env_runner_group.num_healthy_remote_workers() == 2
        results = [algorithm.train() for _ in range(2)]
    finally:
        algorithm.stop()
    assert results[-1]["training_iteration"] == 2
    for result in results:
        runners = result["env_runners"]
        assert runners["num_env_steps_sampled"] >= 400
        assert runners["num_episodes"] >= 40
        # Without the mask, the same untrained network ends most games with an illegal move (next test).
        assert runners["illegal_moves"] == 0
        assert math.isfinite(runners["episode_return_mean"]) and -1 <= runners["episode_return_mean"] <= 1
        assert all(math.isfinite(loss) for loss in learner_losses(result))


@pytest.mark.usefixtures("local_ray")
def test_illegal_moves_are_counted_when_the_mask_is_ignored():
    config = ppo_config("TicTacToe-v0", env_config={"opponent": "random"}, num_env_runners=0)
    config = config.training(train_batch_size_per_learner=400, minibatch_size=100, num_epochs=1).rl_module(
        rl_module_spec=RLModuleSpec(module_class=MaskIgnoringModule, model_config=config.rl_module_spec.model_config)
    )
    algorithm = config.build_algo()
    try:
        result = algorithm.train()
    finally:
        algorithm.stop()
    assert result["env_runners"]["illegal_moves"] > 0


@pytest.mark.usefixtures("local_ray")
def test_ppo_text_generation_with_two_env_runners_updates_the_lm():
    config = ppo_config(
        "TextGeneration-v0",
        env_config=TEXT_ENV_CONFIG,
        num_env_runners=2,
        train_batch_size_per_learner=64,
        minibatch_size=32,
        num_epochs=1,
    )
    algorithm = config.build_algo()
    try:
        module = algorithm.get_module()
        assert isinstance(module, CausalLMTorchRLModule)
        before = {name: parameter.detach().clone() for name, parameter in module.named_parameters()}
        result = algorithm.train()
    finally:
        algorithm.stop()
    runners = result["env_runners"]
    assert result["training_iteration"] == 1
    assert runners["num_env_steps_sampled"] >= 64 and runners["num_episodes"] >= 1
    assert math.isfinite(runners["episode_return_mean"])
    assert -1.0 <= episode_score_mean(result) <= 1.0  # the lexicon's scores, summed over both runners' episodes
    assert all(math.isfinite(loss) for loss in learner_losses(result))
    after = dict(module.named_parameters())
    assert not torch.equal(before["value_head.bias"], after["value_head.bias"])
    assert any(not torch.equal(before[name], after[name]) for name in before if name.startswith("lm."))
