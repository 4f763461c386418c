"""Property-based fuzzing of every registered env, single and vector, in every observation and autoreset mode.

Hypothesis draws seeds, prompts and token/cell sequences (biased towards the ids that decode to control
characters, byte tokens that spell emoji, EOS and move digits); every reset and step is checked against the
env's contract, independently of its implementation where that is possible:

- observations are in ``observation_space`` (text observations included, whatever the ids decode to);
- rewards are finite floats (a Python ``float`` in a single env, a float64 array in a vector env), and
  ``terminated``/``truncated`` are Python ``bool`` in a single env and numpy bool arrays in a vector env;
- Tic-Tac-Toe's masks are the empty cells of the board while the game is on (and none once it is over),
  and a board the env calls unfinished has no line and an empty cell;
- every finished TextGeneration episode reports its completion, its ids (exactly the actions taken in the
  episode) and its score, equal to the reward; with a reward model that raises, retrying the same step
  reports the episode, so a failed scoring call loses no completion.

Examples are derandomized (the same on every run, so CI cannot flake and the step count is a fixed
figure) and the file stays well under a minute on one thread: the lexicon reward model, a few new tokens
per episode, envs built once per configuration. ``pytest -s`` prints the number of steps fuzzed.
"""

from __future__ import annotations

import functools
import math
import unicodedata
from collections import Counter
from datetime import timedelta
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import text_envs
from text_envs import TextGenerationVectorEnv, TicTacToeTextVectorEnv, TicTacToeVectorEnv
from text_envs.lm import load_tokenizer
from text_envs.rewards.lexicon import lexicon_sentiment_reward

MAX_NEW_TOKENS = 3
NUM_ENVS = 3
# Prompts the envs are built with: emoji (outside the Basic Multilingual Plane), accents, control characters.
PROMPTS = ["I loved it \U0001f600", "caf\u00e9 \u2615 was", "odd \x00 bytes \x07 here", "the film was"]
FUZZ = settings(
    max_examples=20,
    deadline=timedelta(seconds=5),  # generous: the machine's cores are shared; a hang still fails
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
AUTORESET_MODES = (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP, AutoresetMode.DISABLED)

STEPS: Counter[str] = Counter()
"""Steps fuzzed, by test; the last test prints the total."""


# ------------------------------------------------------------------------------------------------ the envs
REGISTERED = sorted(env_id for env_id in gym.registry if env_id.startswith("text_envs/"))
OBSERVATION_MODES = {
    "text_envs/TicTacToe-v0": (None,),
    "text_envs/TextGeneration-v0": ("tokens", "text"),
    "text_envs/TicTacToeText-v0": ("tokens", "text"),
}
ENV_ARGUMENTS = {
    "text_envs/TicTacToe-v0": {"agent_first": None},
    "text_envs/TextGeneration-v0": {
        "prompts": PROMPTS,
        "reward_model": lexicon_sentiment_reward,
        "max_new_tokens": MAX_NEW_TOKENS,
        "max_prompt_tokens": 24,
    },
    "text_envs/TicTacToeText-v0": {"agent_first": None, "max_move_tokens": 2},
}
SINGLE_CASES = [(env_id, mode) for env_id in REGISTERED for mode in OBSERVATION_MODES.get(env_id, ())]
VECTOR_CASES = [
    (env_id, mode, autoreset)
    for env_id in REGISTERED
    for mode in OBSERVATION_MODES.get(env_id, ())
    for autoreset in AUTORESET_MODES
]


def arguments(env_id: str, observation_mode: str | None, **extra: Any) -> dict[str, Any]:
    mode = {} if observation_mode is None else {"observation_mode": observation_mode}
    return {**ENV_ARGUMENTS[env_id], **mode, **extra}


@functools.cache
def single_env(env_id: str, observation_mode: str | None) -> gym.Env:
    return gym.make(env_id, **arguments(env_id, observation_mode))


@functools.cache
def vector_env(env_id: str, observation_mode: str | None, autoreset: AutoresetMode, how: str) -> gym.vector.VectorEnv:
    """``how``: ``"make_vec"`` (the vector entry point, or Gymnasium's SyncVectorEnv for an env without one)
    or ``"class"`` (the vector env class itself)."""
    if how == "class":
        cls = {
            "text_envs/TextGeneration-v0": TextGenerationVectorEnv,
            "text_envs/TicTacToe-v0": TicTacToeVectorEnv,
            "text_envs/TicTacToeText-v0": TicTacToeTextVectorEnv,
        }
        return cls[env_id](NUM_ENVS, autoreset_mode=autoreset, **arguments(env_id, observation_mode))
    if gym.spec(env_id).vector_entry_point is None:
        return gym.make_vec(
            env_id,
            num_envs=NUM_ENVS,
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": autoreset},
            **arguments(env_id, observation_mode),
        )
    return gym.make_vec(
        env_id,
        num_envs=NUM_ENVS,
        vectorization_mode="vector_entry_point",
        autoreset_mode=autoreset,
        **arguments(env_id, observation_mode),
    )


def vector_constructions(env_id: str) -> list[str]:
    return ["make_vec", "class"] if gym.spec(env_id).vector_entry_point is not None else ["make_vec"]


VECTOR_BUILDS = [(*case, how) for case in VECTOR_CASES for how in vector_constructions(case[0])]


# ------------------------------------------------------------------------------------------- what to draw
@functools.lru_cache(maxsize=1)
def token_fragments() -> tuple[tuple[int, ...], ...]:
    """Id sequences worth drawing whole: every id that decodes to a control character (id 190 is ``'\\x00'``),
    the byte tokens of emoji, EOS, and the move digits of TicTacToeText."""
    tokenizer = load_tokenizer()
    control = [
        (i,) for i in range(len(tokenizer)) if any(unicodedata.category(c) == "Cc" for c in tokenizer.decode([i]))
    ]
    spelled = [tuple(tokenizer.encode(text)) for text in ("\U0001f600", " \U0001f914", "\u2615", "\n", " 5", "3")]
    return (*control, *spelled, (tokenizer.eos_token_id,))


def token_actions(vocab_size: int, max_size: int) -> st.SearchStrategy[list[int]]:
    token = st.one_of(st.integers(0, vocab_size - 1).map(lambda i: (i,)), st.sampled_from(token_fragments()))
    return st.lists(token, min_size=1, max_size=max_size).map(lambda parts: [i for part in parts for i in part])


def actions_for(env_id: str, vocab_size: int) -> st.SearchStrategy[list[int]]:
    if env_id == "text_envs/TicTacToe-v0":
        return st.lists(st.integers(0, 8), min_size=1, max_size=30)
    return token_actions(vocab_size, 25)


prompt_texts = st.one_of(
    st.none(),
    st.sampled_from(["\U0001f600\U0001f600 so good", "\u00e9\u00e8 \u4e2d\u6587", "tab\tnew\nline"]),
    st.text(min_size=1, max_size=16).filter(lambda text: text.strip()),
)


# ------------------------------------------------------------------------------------------------- checks
def action_count(env: gym.Env | gym.vector.VectorEnv) -> int:
    space = getattr(env, "single_action_space", env.action_space)
    return int(space.n)


def has_line(board: np.ndarray) -> bool:
    """Three equal non-empty marks in a row, column or diagonal (written here, apart from the env's rules)."""
    cells = np.asarray(board).reshape(3, 3)
    lines = [*cells, *cells.T, cells.diagonal(), np.fliplr(cells).diagonal()]
    return any(line[0] != 0 and (line == line[0]).all() for line in lines)


def check_board_mask(board: np.ndarray, mask: np.ndarray, game_over: bool) -> None:
    """The mask is the empty cells while the game is on, nothing once it is over; an unfinished game has
    neither a line nor a full board."""
    board, mask = np.asarray(board), np.asarray(mask)
    assert mask.shape == (9,)
    expected = np.zeros(9, dtype=bool) if game_over else board == 0
    np.testing.assert_array_equal(mask.astype(bool), expected)
    if not game_over:
        assert not has_line(board) and (board == 0).any(), f"the game goes on at a finished board {board}"


def assert_in_space(space: gym.Space, observation: Any, what: str = "observation") -> None:
    """``observation in space``, or an error naming what is outside it (a Text space's whole charset is too long
    to print)."""
    if space.contains(observation):
        return
    texts = [observation] if isinstance(space, gym.spaces.Text) else None
    if isinstance(space, gym.spaces.Tuple) and isinstance(observation, tuple):
        texts = [text for text, part in zip(observation, space.spaces, strict=False) if not part.contains(text)]
        space = space.spaces[0]
    if texts is not None and isinstance(space, gym.spaces.Text):
        outside = sorted({c for text in texts if isinstance(text, str) for c in text} - set(space.character_set))
        raise AssertionError(f"{what} {texts[0]!r:.120} not in its Text space: characters {outside!r:.120} outside")
    raise AssertionError(f"{what} {observation!r:.200} not in its space {space}")


def check_single_step(env: gym.Env, observation: Any, reward: Any, terminated: Any, truncated: Any) -> None:
    assert_in_space(env.observation_space, observation)
    assert type(reward) is float and math.isfinite(reward), f"reward {reward!r} is not a finite float"
    assert type(terminated) is bool and type(truncated) is bool, (type(terminated), type(truncated))


def check_vector_step(env: gym.vector.VectorEnv, step: tuple) -> None:
    observations, rewards, terminated, truncated, _ = step
    assert_in_space(env.observation_space, observations, "observations")
    assert isinstance(rewards, np.ndarray) and rewards.shape == (env.num_envs,) and rewards.dtype.kind == "f"
    assert np.isfinite(rewards).all(), rewards
    for flags in (terminated, truncated):
        assert isinstance(flags, np.ndarray) and flags.dtype == np.bool_ and flags.shape == (env.num_envs,), flags


def check_game_info(env_id: str, info: dict, game_over: bool, board: np.ndarray | None = None) -> None:
    """One game's (single env or one row's) info: TicTacToe-v0's ``action_mask``, TicTacToeText-v0's ``legal_moves``."""
    if env_id == "text_envs/TicTacToe-v0":
        check_board_mask(board, info["action_mask"], game_over)
    elif env_id == "text_envs/TicTacToeText-v0":
        check_board_mask(info["board"], info["legal_moves"], game_over)


def check_completion(info: dict, reward: float, actions: list[int]) -> None:
    """A finished TextGeneration episode reports its completion, every action as its ids, and its score."""
    assert isinstance(info.get("completion"), str), f"no completion reported: info keys {sorted(info)}"
    np.testing.assert_array_equal(info["completion_ids"], actions)
    assert info["score"] == reward and math.isfinite(info["score"])


# ----------------------------------------------------------------------------------------------- the tests
def test_every_registered_env_is_fuzzed():
    assert REGISTERED == sorted(text_envs.ENV_IDS)
    assert set(REGISTERED) == set(OBSERVATION_MODES) == set(ENV_ARGUMENTS)


@pytest.mark.parametrize(("env_id", "observation_mode"), SINGLE_CASES)
def test_single_env(env_id, observation_mode, one_torch_thread):
    env = single_env(env_id, observation_mode)
    vocab_size = action_count(env)

    @FUZZ
    @given(seed=st.integers(0, 2**32 - 1), actions=actions_for(env_id, vocab_size), prompt=prompt_texts)
    def fuzz(seed, actions, prompt):
        options = {"prompt": prompt} if prompt is not None and env_id == "text_envs/TextGeneration-v0" else None
        observation, info = env.reset(seed=seed, options=options)
        assert_in_space(env.observation_space, observation, "reset observation")
        check_game_info(env_id, info, game_over=False, board=observation)
        episode: list[int] = []
        for action in actions:
            observation, reward, terminated, truncated, info = env.step(action)
            STEPS[env_id] += 1
            episode.append(action)
            check_single_step(env, observation, reward, terminated, truncated)
            check_game_info(env_id, info, terminated or truncated, observation)
            if env_id == "text_envs/TicTacToe-v0":
                np.testing.assert_array_equal(env.unwrapped.action_masks(), info["action_mask"].astype(bool))
            if env_id == "text_envs/TextGeneration-v0":
                assert len(episode) <= MAX_NEW_TOKENS
                if terminated or truncated:
                    check_completion(info, reward, episode)
                else:
                    assert reward == 0.0
            if terminated or truncated:
                observation, info = env.reset()
                assert_in_space(env.observation_space, observation, "reset observation")
                episode = []

    fuzz()


@pytest.mark.parametrize(("env_id", "observation_mode", "autoreset", "how"), VECTOR_BUILDS)
def test_vector_env(env_id, observation_mode, autoreset, how, one_torch_thread):
    env = vector_env(env_id, observation_mode, autoreset, how)
    vocab_size = action_count(env)
    rows = st.lists(actions_for(env_id, vocab_size), min_size=NUM_ENVS, max_size=NUM_ENVS)

    @FUZZ
    @given(seed=st.integers(0, 2**32 - 1), row_actions=rows)
    def fuzz(seed, row_actions):
        steps = max(len(actions) for actions in row_actions)
        observations, info = env.reset(seed=seed)
        assert_in_space(env.observation_space, observations, "reset observations")
        for row in range(NUM_ENVS):
            check_game_info(env_id, row_info(info, row), False, board=row_of(observations, row))
        episodes = Episodes(NUM_ENVS, autoreset)
        for t in range(steps):
            actions = np.array([actions[t % len(actions)] for actions in row_actions], dtype=np.int64)
            step = env.step(actions)
            STEPS[f"{env_id} vector"] += NUM_ENVS
            check_vector_step(env, step)
            observations, rewards, terminated, truncated, info = step
            ended = terminated | truncated
            for row in range(NUM_ENVS):
                restarted = episodes.restarting[row]
                final = (
                    row_info(info["final_info"], row) if autoreset is AutoresetMode.SAME_STEP and ended[row] else None
                )
                check_game_info(
                    env_id,
                    row_info(info, row),
                    game_over=bool(ended[row]) and autoreset is not AutoresetMode.SAME_STEP,
                    board=row_of(observations, row),
                )
                if final is not None:
                    check_game_info(env_id, final, True, board=info["final_obs"][row])
                if restarted:
                    assert rewards[row] == 0.0 and not ended[row], "the autoreset step gives reward 0 and no end"
                if env_id == "text_envs/TextGeneration-v0":
                    episode = episodes.step(row, int(actions[row]))
                    assert len(episode) <= MAX_NEW_TOKENS, f"row {row} ran past max_new_tokens: it never restarted"
                    if ended[row]:
                        check_completion(final if final is not None else row_info(info, row), rewards[row], episode)
                    elif not restarted:
                        assert rewards[row] == 0.0
                episodes.end(row, bool(ended[row]))
            if autoreset is AutoresetMode.DISABLED and ended.any():
                observations, info = env.reset()
                episodes.reset_all()

    fuzz()


class Episodes:
    """The actions each row's current episode has taken, following the autoreset mode's convention."""

    def __init__(self, num_envs: int, autoreset: AutoresetMode):
        self.autoreset = autoreset
        self.actions: list[list[int]] = [[] for _ in range(num_envs)]
        self.restarting = [False] * num_envs

    def step(self, row: int, action: int) -> list[int]:
        if not self.restarting[row]:  # NEXT_STEP ignores the action of the step that restarts a row
            self.actions[row].append(action)
        return self.actions[row]

    def end(self, row: int, ended: bool) -> None:
        if self.restarting[row]:
            self.restarting[row] = False
            self.actions[row] = []
        elif ended:
            if self.autoreset is AutoresetMode.NEXT_STEP:
                self.restarting[row] = True
            else:
                self.actions[row] = []

    def reset_all(self) -> None:
        self.actions = [[] for _ in self.actions]
        self.restarting = [False] * len(self.restarting)


def row_of(observations: Any, row: int) -> Any:
    return observations[row] if not isinstance(observations, dict) else {k: v[row] for k, v in observations.items()}


def row_info(info: dict, row: int) -> dict:
    """One row's entries of a vector info dict (Gymnasium's ``key``/``_key`` convention)."""
    entries = {}
    for key, value in info.items():
        if key.startswith("_") or key in ("final_obs", "final_info"):
            continue
        present = info.get("_" + key)
        if present is None or present[row]:
            entries[key] = value[row]
    return entries


# ----------------------------------------------------------------------------- a reward model that raises
class FlakyReward:
    """The lexicon reward model, raising ``RuntimeError`` on the calls ``failures`` marks (cycled)."""

    def __init__(self):
        self.failures = [False]
        self.calls = 0

    def __call__(self, prompts, completions):
        fail = self.failures[self.calls % len(self.failures)]
        self.calls += 1
        if fail:
            raise RuntimeError("reward model unavailable")
        return lexicon_sentiment_reward(prompts, completions)


def step_retrying(env, actions, reward: FlakyReward):
    """``env.step(actions)``, retried with the same actions while the reward model raises (at most as many
    times in a row as ``reward.failures`` is long, since the cycle ends with a success)."""
    retries = len(reward.failures)
    for _ in range(retries):
        try:
            return env.step(actions)
        except RuntimeError as error:
            assert "reward model unavailable" in str(error) or "reward model" in str(error.__cause__ or ""), error
    raise AssertionError(f"the reward model failed {retries} times in a row; failures cycle {reward.failures}")


failure_patterns = st.lists(st.booleans(), min_size=1, max_size=4).map(lambda f: [*f, False])


@functools.cache
def flaky_env(kind: str, autoreset: AutoresetMode | None) -> tuple[Any, FlakyReward]:
    reward = FlakyReward()
    args = arguments("text_envs/TextGeneration-v0", "tokens", reward_model=reward)
    if kind == "single":
        return gym.make("text_envs/TextGeneration-v0", **args), reward
    return TextGenerationVectorEnv(NUM_ENVS, autoreset_mode=autoreset, **args), reward


def test_single_env_keeps_the_completion_when_the_reward_model_raises(one_torch_thread):
    env, reward = flaky_env("single", None)

    @FUZZ
    @given(seed=st.integers(0, 2**32 - 1), actions=token_actions(action_count(env), 12), failures=failure_patterns)
    def fuzz(seed, actions, failures):
        reward.failures, reward.calls = failures, 0
        env.reset(seed=seed)
        episode: list[int] = []
        for action in actions:
            observation, value, terminated, truncated, info = step_retrying(env, action, reward)
            STEPS["TextGeneration-v0 raising reward model"] += 1
            episode.append(action)
            check_single_step(env, observation, value, terminated, truncated)
            if terminated or truncated:
                check_completion(info, value, episode)
                env.reset()
                episode = []

    fuzz()


@pytest.mark.parametrize("autoreset", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_vector_env_keeps_the_completions_when_the_reward_model_raises(autoreset, one_torch_thread):
    env, reward = flaky_env("vector", autoreset)
    rows = st.lists(token_actions(action_count(env), 10), min_size=NUM_ENVS, max_size=NUM_ENVS)

    @FUZZ
    @given(seed=st.integers(0, 2**32 - 1), row_actions=rows, failures=failure_patterns)
    def fuzz(seed, row_actions, failures):
        reward.failures, reward.calls = failures, 0
        env.reset(seed=seed)
        episodes = Episodes(NUM_ENVS, autoreset)
        for t in range(max(len(a) for a in row_actions)):
            actions = np.array([a[t % len(a)] for a in row_actions], dtype=np.int64)
            step = step_retrying(env, actions, reward)
            STEPS["TextGeneration-v0 vector raising reward model"] += NUM_ENVS
            check_vector_step(env, step)
            _, rewards, terminated, truncated, info = step
            ended = terminated | truncated
            for row in range(NUM_ENVS):
                restarted = episodes.restarting[row]
                episode = episodes.step(row, int(actions[row]))
                assert len(episode) <= MAX_NEW_TOKENS, f"row {row} never restarted after a failed scoring call"
                if ended[row]:
                    source = info["final_info"] if autoreset is AutoresetMode.SAME_STEP else info
                    check_completion(row_info(source, row), rewards[row], episode)
                elif restarted:
                    assert rewards[row] == 0.0
                episodes.end(row, bool(ended[row]))

    fuzz()


@pytest.fixture(scope="module", autouse=True)
def report_steps_fuzzed():
    """The figure for the README, printed after the file's tests (``pytest -s`` shows it)."""
    yield
    total = sum(STEPS.values())
    print(f"\nfuzzed {total} env steps: " + ", ".join(f"{name} {count}" for name, count in sorted(STEPS.items())))
