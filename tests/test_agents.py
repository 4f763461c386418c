"""Built-in agents, the shared predict interface, evaluation, and a short MaskablePPO run."""

import inspect

import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from stable_baselines3 import PPO

from text_envs import TicTacToeEnv, TicTacToeVectorEnv
from text_envs.agent_protocol import Agent, accepts_action_masks
from text_envs.tictactoe.evaluation import evaluate_tictactoe
from text_envs_agents import MinimaxAgent, QLearningAgent, RandomAgent


def test_predict_matches_stable_baselines3_signature():
    ours = list(inspect.signature(RandomAgent().predict).parameters)
    sb3 = list(inspect.signature(PPO.predict).parameters)[1:]  # drop self
    assert ours[: len(sb3)] == sb3 and ours[len(sb3) :] == ["action_masks"]
    assert isinstance(MinimaxAgent(), Agent) and accepts_action_masks(MinimaxAgent())


def test_random_agent_plays_only_legal_moves_and_handles_batches():
    agent = RandomAgent(seed=0)
    masks = np.zeros((500, 9), dtype=bool)
    masks[np.arange(500), np.arange(500) % 9] = True
    masks[:, 4] = True
    actions, state = agent.predict(np.zeros((500, 9)), action_masks=masks)
    assert actions.shape == (500,) and state is None
    assert masks[np.arange(500), actions].all()
    assert set(actions.tolist()) == set(range(9))  # uniform, not first-legal
    single, _ = agent.predict(np.zeros(9), action_masks=masks[0])
    assert single.shape == () and masks[0, single]


def test_random_agent_without_masks_needs_a_space():
    with pytest.raises(ValueError, match="action_space"):
        RandomAgent().predict(np.zeros(9))
    actions, _ = RandomAgent(spaces.Discrete(9), seed=0).predict(np.zeros((100, 9)))
    assert actions.min() >= 0 and actions.max() <= 8


def test_empty_mask_row_is_an_error():
    with pytest.raises(ValueError, match="no legal action"):
        RandomAgent().predict(np.zeros(9), action_masks=np.zeros(9, dtype=bool))


def test_minimax_is_perfect_against_both_opponents():
    agent = MinimaxAgent(seed=0)
    versus_random = evaluate_tictactoe(agent, "random", games=1000)
    versus_minimax = evaluate_tictactoe(agent, "minimax", games=1000)
    assert versus_random.loss == 0.0 and versus_random.win > 0.85
    assert versus_minimax.draw == 1.0


def test_minimax_tie_breaking():
    agent = MinimaxAgent(seed=0)
    empty = np.zeros(9, dtype=np.float32)
    assert agent.predict(empty, deterministic=True)[0] == 0  # all openings draw: lowest cell wins the tie
    picks = {int(agent.predict(empty, deterministic=False)[0]) for _ in range(200)}
    assert picks == set(range(9))


def test_minimax_refuses_a_finished_game():
    board = np.array([1, 1, 1, -1, -1, 0, 0, 0, 0], dtype=np.float32)  # X has won; O would be to move
    with pytest.raises(ValueError, match="finished"):
        MinimaxAgent().predict(board)


def test_q_learning_learns_and_round_trips(tmp_path):
    agent = QLearningAgent(seed=0)
    env = TicTacToeVectorEnv(
        256, opponent="minimax", opponent_epsilon=0.5, agent_first=None, autoreset_mode=AutoresetMode.SAME_STEP
    )
    agent.learn(env, total_timesteps=600_000)
    versus_random = evaluate_tictactoe(agent, "random", games=1000)
    assert versus_random.loss < 0.02 and versus_random.win > 0.85
    assert evaluate_tictactoe(agent, "minimax", games=1000).draw > 0.95
    agent.save(tmp_path / "q.safetensors")
    loaded = QLearningAgent.load(tmp_path / "q.safetensors")
    np.testing.assert_array_equal(loaded.q_values, agent.q_values)
    assert loaded.num_timesteps == agent.num_timesteps and loaded.learning_rate == agent.learning_rate
    observations, _ = TicTacToeVectorEnv(50, agent_first=False).reset(seed=0)
    np.testing.assert_array_equal(
        loaded.predict(observations, deterministic=True)[0], agent.predict(observations, deterministic=True)[0]
    )


def test_q_learning_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        QLearningAgent.load(tmp_path / "missing.safetensors")
    from safetensors.numpy import save_file

    save_file({"q_values": np.zeros((2, 2), dtype=np.float32)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="not a QLearningAgent"):
        QLearningAgent.load(tmp_path / "other.safetensors")


def test_q_learning_needs_same_step_autoreset():
    with pytest.raises(ValueError, match="SAME_STEP"):
        QLearningAgent().learn(TicTacToeVectorEnv(4), total_timesteps=10)


def test_evaluation_counts_illegal_moves_as_losses():
    class AlwaysCentre:
        def predict(self, observation, state=None, episode_start=None, deterministic=False):
            return np.full(len(observation), 4), state

    results = evaluate_tictactoe(AlwaysCentre(), "random", games=200)
    assert results.illegal > 0.3 and results.win + results.draw + results.loss == pytest.approx(1.0)
    assert results.illegal <= results.loss


def test_maskable_ppo_smoke(one_torch_thread):
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.env_util import make_vec_env

    env = make_vec_env("text_envs/TicTacToe-v0", n_envs=4, seed=0, env_kwargs={"agent_first": None})
    model = MaskablePPO("MlpPolicy", env, n_steps=64, batch_size=64, n_epochs=2, seed=0)
    model.learn(total_timesteps=1_024)
    results = evaluate_tictactoe(model, "random", games=200)
    assert results.illegal == 0.0  # masks reach the policy both in training and in evaluation
    observation, _ = TicTacToeEnv().reset(seed=0)
    mask = np.zeros(9, dtype=bool)
    mask[7] = True
    assert model.predict(observation, action_masks=mask, deterministic=True)[0] == 7
