"""The vector env against the single env, move by move, and its own autoreset and error semantics."""

import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from hypothesis import given, settings
from hypothesis import strategies as st

from text_envs import TicTacToeEnv, TicTacToeVectorEnv


class LowestEmptyCell:
    """A deterministic opponent, so that boards of a vector env can be replayed one by one."""

    def predict(self, observation, state=None, episode_start=None, deterministic=False, action_masks=None):
        return np.asarray(action_masks).reshape(-1, 9).argmax(axis=1), state


def assert_step_equal(single_step, vector_step, board: int):
    observation, reward, terminated, truncated, info = single_step
    observations, rewards, terminateds, truncateds, infos = vector_step
    np.testing.assert_array_equal(observation, observations[board])
    assert reward == rewards[board] and terminated == terminateds[board] and truncated == truncateds[board]
    np.testing.assert_array_equal(info["action_mask"], infos["action_mask"][board])
    assert info["illegal_move"] == infos["illegal_move"][board]


opponents = st.sampled_from([("random", 0.0), ("minimax", 0.0), ("minimax", 0.4)])
agent_sides = st.sampled_from([True, False, None])


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    opponent=opponents,
    agent_first=agent_sides,
    moves=st.lists(st.integers(0, 8), min_size=1, max_size=30),
)
def test_one_board_vector_env_replays_the_single_env(seed, opponent, agent_first, moves):
    """Same seed, same draws: with num_envs=1 the two agree exactly, random opponents included."""
    kwargs = dict(opponent=opponent[0], opponent_epsilon=opponent[1], agent_first=agent_first)
    single = TicTacToeEnv(**kwargs)
    vector = TicTacToeVectorEnv(1, autoreset_mode=AutoresetMode.SAME_STEP, **kwargs)
    observation, info = single.reset(seed=seed)
    observations, infos = vector.reset(seed=seed)
    np.testing.assert_array_equal(observation, observations[0])
    np.testing.assert_array_equal(info["action_mask"], infos["action_mask"][0])
    for move in moves:  # arbitrary cells: illegal moves are part of what must agree
        single_step = single.step(move)
        vector_step = vector.step(np.array([move]))
        if single_step[2]:
            _, _, _, _, infos = vector_step
            np.testing.assert_array_equal(single_step[0], infos["final_obs"][0])
            assert single_step[1] == vector_step[1][0] and vector_step[2][0]
            np.testing.assert_array_equal(single_step[4]["action_mask"], infos["final_info"]["action_mask"][0])
            assert single_step[4]["illegal_move"] == infos["final_info"]["illegal_move"][0]
            observation, info = single.reset()
            np.testing.assert_array_equal(observation, vector_step[0][0])
        else:
            assert_step_equal(single_step, vector_step, 0)


@settings(max_examples=40, deadline=None)
@given(
    agent_first=st.sampled_from([True, False]),
    moves=st.lists(st.lists(st.integers(0, 8), min_size=4, max_size=4), min_size=1, max_size=8),
)
def test_each_board_of_a_vector_env_follows_the_single_env_rules(agent_first, moves):
    boards = 4
    vector = TicTacToeVectorEnv(
        boards, opponent=LowestEmptyCell(), agent_first=agent_first, autoreset_mode=AutoresetMode.NEXT_STEP
    )
    singles = [TicTacToeEnv(opponent=LowestEmptyCell(), agent_first=agent_first) for _ in range(boards)]
    vector.reset(seed=0)
    for env in singles:
        env.reset(seed=0)
    done = [False] * boards
    for step_moves in moves:
        vector_step = vector.step(np.array(step_moves))
        for board, env in enumerate(singles):
            if done[board]:  # NEXT_STEP: this step reset the board and ignored its action
                reset_observation, reset_info = env.reset()
                np.testing.assert_array_equal(reset_observation, vector_step[0][board])
                assert vector_step[1][board] == 0.0 and not vector_step[2][board]
                done[board] = False
                continue
            single_step = env.step(step_moves[board])
            assert_step_equal(single_step, vector_step, board)
            done[board] = single_step[2]


def test_next_step_autoreset_ignores_the_action_and_gives_zero_reward():
    env = TicTacToeVectorEnv(2, agent_first=False)
    observations, _ = env.reset(seed=0)
    occupied = np.array([np.flatnonzero(o)[0] for o in observations])
    _, rewards, terminated, _, info = env.step(occupied)
    assert (rewards == -1).all() and terminated.all() and info["illegal_move"].all()
    assert not info["action_mask"].any()
    observations, rewards, terminated, _, info = env.step(np.array([0, 0]))
    assert (rewards == 0).all() and not terminated.any() and not info["illegal_move"].any()
    assert ((observations == -1).sum(axis=1) == 1).all()  # fresh boards after the opponent's first move


def test_disabled_autoreset_refuses_finished_boards():
    env = TicTacToeVectorEnv(2, agent_first=False, autoreset_mode=AutoresetMode.DISABLED)
    observations, _ = env.reset(seed=0)
    env.step(np.array([np.flatnonzero(o)[0] for o in observations]))
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.array([0, 0]))


@pytest.mark.parametrize("actions", [np.array([0, 1, 2]), np.array([0, 9]), np.array([0.0, 1.0]), [[0, 1]]])
def test_bad_actions_raise(actions):
    env = TicTacToeVectorEnv(2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="actions"):
        env.step(actions)


def test_step_before_reset_raises():
    with pytest.raises(RuntimeError, match="reset"):
        TicTacToeVectorEnv(2).step(np.array([0, 0]))


def test_illegal_move_can_raise():
    env = TicTacToeVectorEnv(3, agent_first=False, raise_on_illegal_move=True)
    observations, _ = env.reset(seed=0)
    with pytest.raises(ValueError, match="illegal move on board"):
        env.step(np.array([np.flatnonzero(o)[0] for o in observations]))


def test_render_returns_one_frame_per_board():
    env = TicTacToeVectorEnv(3, render_mode="rgb_array")
    env.reset(seed=0)
    frames = env.render()
    assert len(frames) == 3 and frames[0].shape == (192, 192, 3)


def test_outcome_rates_match_the_single_env_under_random_play():
    """A statistical cross-check at scale: random vs random, agent first, ~58.5% wins and ~12.7% draws."""
    env = TicTacToeVectorEnv(20_000, opponent="random")
    _, info = env.reset(seed=1)
    rng = np.random.default_rng(1)
    final = np.full(20_000, np.nan)
    while np.isnan(final).any():
        playing = np.isnan(final)
        masks = info["action_mask"]
        actions = np.where(masks.astype(bool), rng.random(masks.shape), -1).argmax(axis=1)
        # Finished boards get all-zero masks (action 0, ignored) and restart; only first games count.
        _, rewards, terminated, _, info = env.step(actions)
        final[playing & terminated] = rewards[playing & terminated]
    assert abs((final == 1).mean() - 0.585) < 0.015
    assert abs((final == 0).mean() - 0.127) < 0.012
