"""Semantics of the single Tic-Tac-Toe env: rewards, masks, sides, seeding, illegal moves and bad input."""

import gymnasium as gym
import numpy as np
import pytest

from text_envs import TicTacToeEnv
from text_envs_agents import MinimaxAgent


def play_random_game(env: TicTacToeEnv, rng: np.random.Generator, seed=None):
    observation, info = env.reset(seed=seed)
    trajectory = [(observation, info["action_mask"])]
    while True:
        action = int(rng.choice(np.flatnonzero(info["action_mask"])))
        observation, reward, terminated, truncated, info = env.step(action)
        trajectory.append((action, observation, reward, terminated, info["action_mask"]))
        if terminated or truncated:
            return trajectory


def test_reward_flags_and_types():
    env = TicTacToeEnv(opponent="random")
    rng = np.random.default_rng(1)
    rewards = set()
    for game in range(300):
        observation, info = env.reset(seed=game)
        while True:
            action = int(rng.choice(np.flatnonzero(info["action_mask"])))
            observation, reward, terminated, truncated, info = env.step(action)
            assert type(reward) is float and type(terminated) is bool and type(truncated) is bool
            assert truncated is False
            if terminated:
                rewards.add(reward)
                assert not info["action_mask"].any()  # no legal move once the game is over
                assert not env.action_masks().any()
                break
            assert reward == 0.0
    assert rewards == {-1.0, 0.0, 1.0}


def test_observation_is_from_the_agents_perspective():
    env = TicTacToeEnv(opponent="random", agent_first=False)
    observation, info = env.reset(seed=0)
    assert observation.dtype == np.float32
    assert (observation == -1).sum() == 1 and (observation == 1).sum() == 0  # the opponent (X) moved first
    action = int(np.flatnonzero(info["action_mask"])[0])
    observation, *_ = env.step(action)
    assert observation[action] == 1.0
    assert (observation == 1).sum() == 1 and (observation == -1).sum() == 2


def test_seeding_reproduces_games_and_sides():
    def trajectories(seed):
        env = TicTacToeEnv(opponent="minimax", agent_first=None, opponent_epsilon=0.3)
        rng = np.random.default_rng(7)
        games = [play_random_game(env, rng, seed=seed)] + [play_random_game(env, rng) for _ in range(5)]
        return [[np.asarray(x).tolist() if isinstance(x, np.ndarray) else x for step in g for x in step] for g in games]

    assert trajectories(3) == trajectories(3)
    assert trajectories(3) != trajectories(4)


def test_alternating_sides():
    env = TicTacToeEnv(agent_first=None)
    first_moves = []
    for game in range(6):
        observation, _ = env.reset(seed=11 if game == 0 else None)
        first_moves.append(bool((observation == 0).all()))
    assert first_moves[::2] == [first_moves[0]] * 3 and first_moves[1::2] == [not first_moves[0]] * 3


def test_illegal_move_ends_the_episode_with_a_loss():
    env = TicTacToeEnv(agent_first=False)
    observation, _ = env.reset(seed=0)
    occupied = int(np.flatnonzero(observation)[0])
    observation, reward, terminated, truncated, info = env.step(occupied)
    assert (reward, terminated, truncated, info["illegal_move"]) == (-1.0, True, False, True)
    assert not info["action_mask"].any()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


def test_illegal_move_can_raise():
    env = TicTacToeEnv(agent_first=False, raise_on_illegal_move=True)
    observation, _ = env.reset(seed=0)
    with pytest.raises(ValueError, match="occupied"):
        env.step(int(np.flatnonzero(observation)[0]))


@pytest.mark.parametrize("action", [9, -1, 2.5, "3", None])
def test_actions_outside_the_space_raise(action):
    env = TicTacToeEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="cell index"):
        env.step(action)


@pytest.mark.parametrize("action", [np.int64(4), np.int32(4), np.array(4), np.uint8(4)], ids=repr)
def test_numpy_integer_actions_are_accepted(action):
    env = TicTacToeEnv(opponent="random")
    env.reset(seed=0)
    observation, reward, terminated, truncated, info = env.step(action)
    assert observation[4] == 1.0 and (observation == 1).sum() == 1  # the agent's mark is in the centre
    assert (observation == -1).sum() == 1 and info["action_mask"][4] == 0 and not info["illegal_move"]
    env.reset(seed=0)
    assert np.array_equal(env.step(4)[0], observation)  # the same move as the Python int, same seed


def test_step_before_reset_raises():
    with pytest.raises(RuntimeError, match="reset"):
        TicTacToeEnv().step(0)


def test_arrays_are_fresh_on_every_call():
    env = TicTacToeEnv()
    observation, info = env.reset(seed=0)
    observation[:] = 5
    info["action_mask"][:] = 0
    observation2, info2 = env.reset(seed=0)
    assert (observation2 == 0).all() and info2["action_mask"].all()


@pytest.mark.parametrize(
    "bad",
    [
        dict(opponent="perfect"),
        dict(opponent=object()),
        dict(opponent_epsilon=1.5),
        dict(agent_first="yes"),
        dict(render_mode="human"),
    ],
)
def test_bad_arguments_raise(bad):
    with pytest.raises((ValueError, TypeError)):
        TicTacToeEnv(**bad)


def test_agent_object_as_opponent():
    env = TicTacToeEnv(opponent=MinimaxAgent(seed=0), agent_first=None)
    rng = np.random.default_rng(0)
    rewards = [play_random_game(env, rng, seed=game)[-1][2] for game in range(50)]
    assert max(rewards) <= 0.0  # nobody beats perfect play


def test_opponent_without_action_masks_parameter_is_called_without_them():
    class FirstEmptyCell:  # the shape of a stable-baselines3 PPO/DQN: predict() takes no masks
        def predict(self, observation, state=None, episode_start=None, deterministic=False):
            return np.flatnonzero(observation == 0)[0], state

    env = TicTacToeEnv(opponent=FirstEmptyCell(), agent_first=False)
    observation, _ = env.reset(seed=0)
    assert observation[0] == -1.0


def test_opponent_that_moves_illegally_raises():
    class Cheater:
        def predict(self, observation, state=None, episode_start=None, deterministic=False):
            return 4, state

    env = TicTacToeEnv(opponent=Cheater())
    env.reset(seed=0)
    with pytest.raises(ValueError, match="opponent"):
        env.step(4)


def test_render_modes():
    env = TicTacToeEnv(render_mode="ansi", agent_first=False)
    env.reset(seed=0)
    text = env.render()
    assert text.count("\n") == 4 and text.count("X") == 1 and "agent plays O" in text
    env = gym.make("text_envs/TicTacToe-v0", render_mode="rgb_array")
    env.reset(seed=0)
    before = env.render()
    env.step(4)
    image = env.render()
    assert image.shape == (192, 192, 3) and image.dtype == np.uint8
    assert (image != before).any() and env.metadata["render_fps"] > 0


def test_minimax_opponent_never_loses():
    env = TicTacToeEnv(opponent="minimax", agent_first=None)
    rng = np.random.default_rng(3)
    rewards = [play_random_game(env, rng, seed=g)[-1][2] for g in range(200)]
    assert max(rewards) <= 0.0 and min(rewards) == -1.0


LINES = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]


def reward_by_hand(board):
    """The agent's reward for a final board seen from its side (+1 its marks), from the lines alone."""
    if any(all(board[c] == 1 for c in line) for line in LINES):
        return 1.0
    if any(all(board[c] == -1 for c in line) for line in LINES):
        return -1.0
    assert (board != 0).all(), f"the game ended without a line on a board with empty cells: {board}"
    return 0.0


@pytest.mark.parametrize("agent_first", [True, False])
def test_final_rewards_follow_the_lines_on_the_board(agent_first):
    env = TicTacToeEnv(opponent="random", agent_first=agent_first)
    rng = np.random.default_rng(5)
    rewards = []
    for game in range(100):
        _, board, reward, terminated, _ = play_random_game(env, rng, seed=game)[-1]
        assert terminated and reward == reward_by_hand(board)
        rewards.append(reward)
    assert set(rewards) == {-1.0, 0.0, 1.0}  # wins, losses and draws were all checked
