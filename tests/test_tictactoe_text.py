"""TicTacToeText-v0: the text interface plays exactly the numeric env's game, parses moves, and carries the board."""

import unicodedata

import gymnasium as gym
import numpy as np
import pytest

from text_envs import TicTacToeEnv, TicTacToeTextEnv
from text_envs.tictactoe import rules
from text_envs.tictactoe.evaluation import evaluate_tictactoe, evaluate_tictactoe_text
from text_envs.tictactoe.text_env import PROMPT_STATES, parse_move, prompt_text, state_from_prompt
from text_envs_agents import MinimaxAgent, RandomAgent, TextTicTacToeAgent


@pytest.fixture(scope="module")
def env():
    return TicTacToeTextEnv()


def move_tokens(env: TicTacToeTextEnv, cell: int) -> list[int]:
    return env.tokenizer.encode(f" {cell + 1}", add_special_tokens=False)


def play_move(env: TicTacToeTextEnv, cell: int):
    """Emit the tokens of ``" <digit>"``; only the last may end the turn."""
    tokens = move_tokens(env, cell)
    for token in tokens[:-1]:
        observation, reward, terminated, truncated, info = env.step(token)
        assert (reward, terminated, truncated, info["move"]) == (0.0, False, False, -1)
    return env.step(tokens[-1])


def derived_seed(seed: int) -> int:
    return int(np.random.default_rng(seed).integers(2**63))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"opponent": "random", "agent_first": True},
        {"opponent": "random", "agent_first": False},
        {"opponent": "minimax", "agent_first": None, "opponent_epsilon": 0.3},
    ],
)
def test_scripted_tokens_play_the_numeric_game(kwargs):
    text_env, numeric_env = TicTacToeTextEnv(**kwargs), TicTacToeEnv(**kwargs)
    rng = np.random.default_rng(0)
    for game in range(12):
        seed = 100 + game if game % 3 == 0 else None  # unseeded resets must follow the inner stream too
        _, info = text_env.reset(seed=seed)
        board, numeric_info = numeric_env.reset(seed=None if seed is None else derived_seed(seed))
        np.testing.assert_array_equal(info["board"], board)
        np.testing.assert_array_equal(info["legal_moves"], numeric_info["action_mask"])
        while True:
            cell = int(rng.choice(np.flatnonzero(numeric_info["action_mask"])))
            _, reward, terminated, truncated, info = play_move(text_env, cell)
            board, numeric_reward, numeric_terminated, _, numeric_info = numeric_env.step(cell)
            np.testing.assert_array_equal(info["board"], board)  # the opponent's reply included
            np.testing.assert_array_equal(info["legal_moves"], numeric_info["action_mask"])
            assert info["legal_moves"].dtype == np.int8 and info["board"].dtype == np.float32
            assert type(reward) is float and reward == numeric_reward
            assert terminated is numeric_terminated and truncated is False
            assert info["move"] == cell and info["illegal_move"] is False
            if terminated:
                break


def test_a_digit_token_ends_the_turn_at_once(env):
    env.reset(seed=0)
    tokens = move_tokens(env, 4)
    _, _, _, _, info = env.step(tokens[0])  # " "
    assert info["move"] == -1 and info["board"][4] == 0
    _, _, _, _, info = env.step(tokens[1])  # "5"
    assert info["move"] == 4 and info["board"][4] == 1.0
    assert env.render_text().endswith("your move:")  # a fresh prompt replaced the context


def test_parse_move_rule():
    assert parse_move(" 5") == (4, True)
    assert parse_move("x9 1") == (8, True)
    assert parse_move("0 7") == (6, True)  # 0 names no cell and is skipped
    assert parse_move(" x") == (None, False)
    assert parse_move(" \n5") == (None, True)  # a newline before any digit ends the turn without a move
    assert parse_move("") == (None, False)


@pytest.mark.parametrize("max_move_tokens", [1, 4])
def test_unparsable_move_ends_the_episode(max_move_tokens):
    env = TicTacToeTextEnv(max_move_tokens=max_move_tokens)
    (x_token,) = env.tokenizer.encode("x", add_special_tokens=False)
    _, info = env.reset(seed=1)
    for _ in range(max_move_tokens - 1):
        _, reward, terminated, _, info = env.step(x_token)
        assert (reward, terminated, info["illegal_move"]) == (0.0, False, False)
    _, reward, terminated, truncated, info = env.step(x_token)
    assert (reward, terminated, truncated) == (-1.0, True, False)
    assert info["illegal_move"] is True and info["move"] == -1 and not info["legal_moves"].any()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(x_token)


@pytest.mark.parametrize("ender", ["newline", "eos"])
def test_newline_or_eos_without_a_digit_is_illegal(env, ender):
    env.reset(seed=2)
    token = env.eos_token_id if ender == "eos" else env.tokenizer.encode("\n", add_special_tokens=False)[0]
    _, reward, terminated, _, info = env.step(token)
    assert (reward, terminated, info["illegal_move"], info["move"]) == (-1.0, True, True, -1)


def test_occupied_cell_is_illegal(env):
    _, info = env.reset(seed=3)
    _, _, _, _, info = play_move(env, 4)
    board = info["board"].copy()
    occupied = int(np.flatnonzero(board == -1)[0])  # the opponent's reply
    _, reward, terminated, _, info = play_move(env, occupied)
    assert (reward, terminated, info["illegal_move"], info["move"]) == (-1.0, True, True, occupied)
    np.testing.assert_array_equal(info["board"], board)


def test_raise_on_illegal_move():
    env = TicTacToeTextEnv(raise_on_illegal_move=True)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="no move"):
        env.step(env.tokenizer.encode("\n", add_special_tokens=False)[0])
    env.reset(seed=0)
    _, _, _, _, info = play_move(env, 0)
    occupied = int(np.flatnonzero(info["board"] == -1)[0])
    with pytest.raises(ValueError, match=f"cell {occupied + 1} is occupied"):
        play_move(env, occupied)


def test_prompt_shows_board_and_legal_moves():
    state = rules.play(rules.play(rules.EMPTY_BOARD, 4), 0)  # X in the centre, O top-left: X to move
    text = prompt_text(state)
    assert text == (
        "tic-tac-toe. you play X. cells are numbered 1 to 9, row by row from the top left.\n"
        "board:\nO . .\n. X .\n. . .\nlegal moves: 2 3 4 6 7 8 9\nyour move:"
    )
    assert "you play O" in prompt_text(rules.play(rules.EMPTY_BOARD, 4))


def test_text_observation_is_the_decoded_context():
    token_env, text_env = (
        TicTacToeTextEnv(agent_first=False),
        TicTacToeTextEnv(agent_first=False, observation_mode="text"),
    )
    observation, info = token_env.reset(seed=5)
    text, _ = text_env.reset(seed=5)
    assert text_env.observation_space.contains(text) and token_env.observation_space.contains(observation)
    cell = int(np.flatnonzero(info["legal_moves"])[0])
    for token in [*move_tokens(token_env, cell), None]:
        mask = observation["attention_mask"]
        assert mask[-1] == 1 and (np.diff(mask) >= 0).all()  # left-padded: real tokens at the end
        assert token_env.tokenizer.decode(observation["input_ids"][mask == 1], skip_special_tokens=True) == text
        assert text == token_env.render_text()
        assert "board:\n" in text and "legal moves: " in text and "you play O" in text
        if token is None:
            break
        observation, *_ = token_env.step(token)
        text, *_ = text_env.step(token)
    assert text.endswith("your move:")  # the next turn's prompt
    token_env.render_mode = "ansi"
    assert token_env.render() == text + "\n"


def test_text_observations_with_control_characters_and_emoji_are_in_the_space():
    probe = TicTacToeTextEnv()
    tokenizer = probe.tokenizer
    controls = [
        i
        for i in range(len(tokenizer))
        if any(c not in "\n\t\r" and unicodedata.category(c) == "Cc" for c in tokenizer.decode([i]))
        and parse_move(tokenizer.decode([i])) == (None, False)  # no digit, no newline: the turn goes on
    ]
    emoji = tokenizer.encode(" 🍕", add_special_tokens=False)
    assert 190 in controls and len(emoji) > 1  # id 190 is "\x00"; the emoji is spelled in byte tokens
    env = TicTacToeTextEnv(observation_mode="text", max_move_tokens=len(controls) + len(emoji) + 1)
    text, info = env.reset(seed=0)
    for token in [*controls, *emoji]:
        text, _, terminated, _, _ = env.step(token)
        assert env.observation_space.contains(text) and not terminated, repr(text)
    assert "\x00" in text and text.endswith("🍕")
    cell = int(np.flatnonzero(info["legal_moves"])[0])
    text, *_ = env.step(move_tokens(env, cell)[-1])
    assert env.observation_space.contains(text)


def test_reset_with_same_seed_is_reproducible_and_fresh(env):
    first, info_first = env.reset(seed=9)
    first["input_ids"][:] = 0
    info_first["board"][:] = 5
    second, info_second = env.reset(seed=9)
    again, info_again = env.reset(seed=9)
    np.testing.assert_array_equal(second["input_ids"], again["input_ids"])
    assert not (second["input_ids"] == 0).all() and not (info_second["board"] == 5).any()
    assert second["input_ids"] is not again["input_ids"]


@pytest.mark.parametrize("agent_first", [True, False, None])
def test_minimax_through_text_never_loses(agent_first):
    env = gym.make("text_envs/TicTacToeText-v0", opponent="random", agent_first=agent_first)
    agent = MinimaxAgent(seed=0)
    outcomes = []
    for game in range(17):
        _, info = env.reset(seed=game)
        reward, terminated = 0.0, False
        while not terminated:
            cell = int(np.asarray(agent.predict(info["board"], deterministic=True)[0]).reshape(-1)[0])
            for token in move_tokens(env.unwrapped, cell):
                _, reward, terminated, _, info = env.step(token)
            assert not info["illegal_move"]
        outcomes.append(reward)
    assert min(outcomes) >= 0.0 and max(outcomes) == 1.0


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_move_tokens": 0}, "max_move_tokens"),
        ({"max_move_tokens": 2.5}, "max_move_tokens"),
        ({"observation_mode": "pixels"}, "observation_mode"),
        ({"render_mode": "human"}, "render_mode"),
        ({"opponent": "perfect"}, "opponent"),
        ({"opponent_epsilon": 1.5}, "opponent_epsilon"),
        ({"agent_first": "yes"}, "agent_first"),
        ({"prompt_format": "html"}, "prompt_format"),
        ({"prompt_format": "chat"}, "prompt_format='chat' needs a tokenizer with a chat template"),
        ({"system_prompt": "play well"}, "system_prompt"),
    ],
)
def test_bad_arguments_raise(kwargs, error):
    with pytest.raises(ValueError, match=error):
        TicTacToeTextEnv(**kwargs)


def test_bad_actions_and_step_before_reset():
    env = TicTacToeTextEnv()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset(seed=0)
    for action in (-1, env.vocab_size, 1.5, "5"):
        with pytest.raises(ValueError, match="token id"):
            env.step(action)


def test_state_from_prompt_inverts_every_prompt():
    assert all(state_from_prompt(prompt_text(int(state)) + " 7") == state for state in PROMPT_STATES)
    with pytest.raises(ValueError, match="no tic-tac-toe board"):
        state_from_prompt("board:\nX . O\n. X\n")


def test_numeric_agents_play_through_text():
    """Minimax reading the prompt never loses; random reading it never moves illegally; rates match the numeric env."""
    perfect = evaluate_tictactoe_text(TextTicTacToeAgent(MinimaxAgent()), "random", games=60)
    assert perfect.loss == 0.0 and perfect.illegal == 0.0 and perfect.win > 0.8
    wild = evaluate_tictactoe_text(TextTicTacToeAgent(RandomAgent(seed=0)), "random", games=200, seed=1)
    numeric = evaluate_tictactoe(RandomAgent(seed=0), "random", games=2000, seed=1)
    assert wild.illegal == 0.0 and abs(wild.win - numeric.win) < 0.12


def test_text_agent_reads_text_observations():
    env = TicTacToeTextEnv(opponent="minimax", agent_first=False, observation_mode="text")
    agent = TextTicTacToeAgent(MinimaxAgent(), tokenizer=env.tokenizer)
    for seed in range(3):
        observation, _ = env.reset(seed=seed)
        terminated = False
        while not terminated:
            observation, reward, terminated, _, info = env.step(agent.predict(observation, deterministic=True)[0])
        assert reward == 0.0 and not info["illegal_move"]  # perfect play against perfect play: a draw
