"""Every registered env passes both env checkers and vectorizes with Gymnasium's sync and async vector envs."""

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import text_envs


@pytest.mark.parametrize("env_id", text_envs.ENV_IDS)
def test_gymnasium_env_checker(env_id):
    env = gym.make(env_id)
    gymnasium_check_env(env.unwrapped, skip_render_check=False)
    env.close()


@pytest.mark.parametrize("env_id", text_envs.ENV_IDS)
def test_sb3_env_checker(env_id):
    env = gym.make(env_id)
    sb3_check_env(env.unwrapped, warn=True)
    env.close()


@pytest.mark.parametrize("env_id", text_envs.ENV_IDS)
@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("autoreset_mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_make_vec_sync_and_async(env_id, mode, autoreset_mode):
    envs = gym.make_vec(env_id, num_envs=3, vectorization_mode=mode, vector_kwargs={"autoreset_mode": autoreset_mode})
    observations, info = envs.reset(seed=0)
    assert envs.observation_space.contains(observations)
    envs.action_space.seed(0)
    rng = np.random.default_rng(0)
    episodes_ended = 0
    for _ in range(40):
        actions = envs.action_space.sample()
        if "action_mask" in info:  # legal moves only; a finished sub-env has an all-zero mask and ignores its action
            actions = np.array([rng.choice(np.flatnonzero(m)) if m.any() else 0 for m in info["action_mask"]])
        observations, rewards, terminated, truncated, info = envs.step(actions)
        assert envs.observation_space.contains(observations)
        assert rewards.shape == (3,) and terminated.dtype == bool
        episodes_ended += int((terminated | truncated).sum())
        if autoreset_mode is AutoresetMode.SAME_STEP and terminated.any():
            assert info["_final_obs"][terminated].all()
    assert episodes_ended > 0
    envs.close()


def test_make_with_module_prefix_needs_no_prior_import():
    code = (
        "import gymnasium as gym\n"
        "env = gym.make('text_envs:text_envs/TicTacToe-v0')\n"
        "obs, info = env.reset(seed=0)\n"
        "print(obs.shape, info['action_mask'].dtype)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "(9,) int8"


def test_vector_entry_point_is_registered():
    envs = gym.make_vec("text_envs/TicTacToe-v0", num_envs=8, vectorization_mode="vector_entry_point")
    assert isinstance(envs.unwrapped, text_envs.TicTacToeVectorEnv)
    assert envs.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP
