"""Users' own agents and envs in the benchmark: :func:`register_agent`, :func:`register_env`, entry points.

Both add to the registry's :data:`~text_envs_agents.benchmark.registry.AGENTS` and
:data:`~text_envs_agents.benchmark.registry.ENVS` (as ``gymnasium.register`` adds to Gymnasium's registry),
so a registered name works everywhere a built-in one does: in specs, tables, figures and resumed results.
A spec's ``custom_agents`` and ``custom_envs`` keys call these functions when the spec is loaded
(:mod:`text_envs_agents.benchmark.spec`). The contract is in :mod:`text_envs_agents.benchmark`'s docstring.
"""

from __future__ import annotations

import importlib
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from text_envs.agent_protocol import Agent, accepts_action_masks
from text_envs_agents.benchmark.registry import (
    _GAME_COLUMNS,
    AGENTS,
    CURVE_POINTS,
    ENVS,
    TEXT_GENERATION,
    AgentInfo,
    CellContext,
    CellResult,
    Column,
    EnvInfo,
    Runner,
    env_id_for,
)

AgentFactory = Callable[..., Agent]
"""``make_agent(env, *, seed, budget) -> agent``: see :func:`register_agent`."""

EVALUATIONS = ("episode_return", "game")
"""How a registered env scores an agent: the mean episode return, or game results (win/draw/loss/illegal)."""

CUSTOM_CURVE_EPISODES = 20
"""Episodes per learning-curve point on a registered env."""

_BUILTIN_AGENTS = frozenset(AGENTS)
_BUILTIN_ENVS = frozenset(ENVS)
_ENTRIES: dict[tuple[str, str], Any] = {}  # (kind, name) -> what it was registered from, to tell re-registrations


# ------------------------------------------------------------------------------------------------ entry points
def load_entry_point(text: str) -> Any:
    """The object an entry point ``"package.module:name"`` (or ``"module:Class.attribute"``) names.

    Raises ``ValueError`` naming ``text`` when it is not of that form, its module does not import or the
    module has no such name.
    """
    module_name, colon, attribute = text.partition(":") if isinstance(text, str) else ("", "", "")
    if not colon or not module_name or not _is_dotted_identifier(module_name) or not _is_dotted_identifier(attribute):
        raise ValueError(f"{text!r} is not an entry point of the form 'package.module:name'")
    try:
        value: Any = importlib.import_module(module_name)
    except Exception as error:  # the user's module may fail in any way while it imports
        raise ValueError(f"cannot import {text!r}: {type(error).__name__}: {error}") from error
    for part in attribute.split("."):
        if not hasattr(value, part):
            raise ValueError(f"cannot import {text!r}: module {module_name!r} has no attribute {attribute!r}")
        value = getattr(value, part)
    return value


def _is_dotted_identifier(text: str) -> bool:
    return bool(text) and all(part.isidentifier() for part in text.split("."))


def _callable(entry: str | Callable, what: str) -> Callable:
    value = load_entry_point(entry) if isinstance(entry, str) else entry
    if not callable(value):
        origin = f"{entry!r} is" if isinstance(entry, str) else "it is"
        raise TypeError(f"{what} must be callable; {origin} a {type(value).__name__}")
    return value


# ------------------------------------------------------------------------------------------------------- envs
def register_env(
    env_id: str,
    entry: str | Callable[..., Any] | None = None,
    *,
    evaluation: str = "episode_return",
    episodes: int = 100,
    kwargs: Mapping[str, Any] | None = None,
    max_episode_steps: int | None = None,
    score_label: str | None = None,
) -> EnvInfo:
    """Add the env ``env_id`` to the benchmark; returns its :class:`~text_envs_agents.benchmark.registry.EnvInfo`.

    ``entry`` makes the env: a callable or ``"module:callable"`` string called as ``entry(**kwargs)`` that
    returns a ``gymnasium.Env``, or a registered Gymnasium id (``"CartPole-v1"``, ``"my_pkg:MyEnv-v0"``)
    given to ``gymnasium.make(entry, **kwargs)``; None (default): ``env_id`` itself is the Gymnasium id.
    ``evaluation`` is ``"episode_return"`` (score: the mean undiscounted return over ``episodes``
    episodes; column: mean episode length) or ``"game"`` (the episode's return is its outcome:
    > 0 a win, 0 a draw, < 0 a loss; ``info["illegal_move"]`` at the last step counts in ``illegal``;
    score: the mean return). ``episodes`` is the default per cell (a spec's ``episodes`` overrides it).
    ``max_episode_steps`` wraps the env in ``TimeLimit``: an evaluation episode must end.
    Registering a name again replaces the earlier registration (a warning if it differs); the
    built-in envs cannot be replaced.
    """
    if not isinstance(env_id, str) or not env_id.strip():
        raise ValueError(f"an env id must be a non-empty string, got {env_id!r}")
    builtin = env_id_for(env_id)
    if builtin in _BUILTIN_ENVS:
        raise ValueError(f"{env_id!r} is the built-in {builtin}; give your env another id")
    if evaluation not in EVALUATIONS:
        raise ValueError(f"evaluation must be one of {EVALUATIONS}, got {evaluation!r}")
    if not isinstance(episodes, int) or isinstance(episodes, bool) or episodes < 1:
        raise ValueError(f"episodes must be a positive integer, got {episodes!r}")
    if max_episode_steps is not None and (not isinstance(max_episode_steps, int) or max_episode_steps < 1):
        raise ValueError(f"max_episode_steps must be a positive integer, got {max_episode_steps!r}")
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise TypeError(f"kwargs must be a mapping of keyword arguments, got {type(kwargs).__name__}")
    make_env = _env_maker(entry if entry is not None else env_id, dict(kwargs or {}), max_episode_steps)
    if evaluation == "game":
        score, columns = Column("score", score_label or "mean game reward", 3), _GAME_COLUMNS
    else:
        score, columns = Column("score", score_label or "mean episode return", 2), (Column("length", "length", 1),)
    info = EnvInfo(
        env_id,
        episodes,
        score,
        columns,
        False,
        curve_label=f"{score.label} ({CUSTOM_CURVE_EPISODES} episodes)",
        curve_steps="env steps",
        evaluate=_episode_evaluation(make_env, evaluation),
        make_env=make_env,
        fits_by_default=True,
        curve_episodes=CUSTOM_CURVE_EPISODES,
    )
    _replace("env", env_id, (entry, evaluation, episodes, dict(kwargs or {}), max_episode_steps, score_label))
    ENVS[env_id] = info
    return info


def _env_maker(entry: str | Callable, kwargs: dict[str, Any], max_episode_steps: int | None) -> Callable[[], Any]:
    import gymnasium as gym

    if isinstance(entry, str) and not _is_entry_point(entry):
        gym_id = entry
        module, colon, name = entry.rpartition(":")
        if colon:  # Gymnasium's "module:Env-v0" form imports the module that registers the env
            try:
                importlib.import_module(module)
            except Exception as error:
                raise ValueError(f"cannot import {module!r} for the Gymnasium id {entry!r}: {error}") from error
            gym_id = name
        if gym_id not in gym.registry:
            raise ValueError(f"{entry!r} is neither a 'module:callable' entry point nor a registered Gymnasium id")
        steps = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
        return lambda: gym.make(gym_id, **kwargs, **steps)

    factory = _callable(entry, "an env entry")

    def make() -> Any:
        env = factory(**kwargs)
        if not isinstance(env, gym.Env):
            raise TypeError(f"the env entry {entry!r} returned a {type(env).__name__}, not a gymnasium.Env")
        return env if max_episode_steps is None else gym.wrappers.TimeLimit(env, max_episode_steps)

    return make


def _is_entry_point(text: str) -> bool:
    module, colon, attribute = text.partition(":")
    return bool(colon) and _is_dotted_identifier(module) and _is_dotted_identifier(attribute)


def _episode_evaluation(make_env: Callable[[], Any], evaluation: str):
    def evaluate(agent: Agent, episodes: int, seed: int) -> dict[str, float]:
        returns, lengths, illegal = play_episodes(make_env, agent, episodes, seed)
        if evaluation == "episode_return":
            return {"score": float(np.mean(returns)), "length": float(np.mean(lengths))}
        return {
            "score": float(np.mean(returns)),
            "win": float(np.mean(returns > 0)),
            "draw": float(np.mean(returns == 0)),
            "loss": float(np.mean(returns < 0)),
            "illegal": float(np.mean(illegal)),
        }

    return evaluate


def play_episodes(
    make_env: Callable[[], Any], agent: Agent, episodes: int, seed: int, deterministic: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Play ``episodes`` episodes of ``make_env()`` with ``agent.predict``: their returns, lengths and illegal endings.

    The first reset is seeded with ``seed`` and the rest continue the env's generator, so the same seed
    gives the same episodes. Action masks (``env.action_masks()`` or ``info["action_mask"]``) are passed to
    agents whose ``predict`` takes ``action_masks``. ``illegal``: ``info["illegal_move"]`` at the last step.
    """
    env = make_env()
    pass_masks = accepts_action_masks(agent)
    discrete = hasattr(env.action_space, "n") and env.action_space.shape == ()
    returns, lengths, illegal = np.zeros(episodes), np.zeros(episodes, dtype=np.int64), np.zeros(episodes, dtype=bool)
    try:
        for episode in range(episodes):
            observation, info = env.reset(seed=seed if episode == 0 else None)
            done = False
            while not done:
                kwargs: dict[str, Any] = {"deterministic": deterministic}
                if pass_masks:
                    mask = _action_mask(env, info)
                    if mask is not None:
                        kwargs["action_masks"] = mask
                action, _ = agent.predict(observation, **kwargs)
                action = np.asarray(action)
                observation, reward, terminated, truncated, info = env.step(
                    int(action.reshape(-1)[0]) if discrete else action
                )
                returns[episode] += float(reward)
                lengths[episode] += 1
                done = terminated or truncated
            illegal[episode] = bool(info.get("illegal_move", False))
    finally:
        env.close()
    return returns, lengths, illegal


def _action_mask(env: Any, info: dict[str, Any]) -> np.ndarray | None:
    try:
        return np.asarray(env.get_wrapper_attr("action_masks")(), dtype=bool)
    except AttributeError:
        mask = info.get("action_mask")
        return None if mask is None else np.asarray(mask, dtype=bool)


# ----------------------------------------------------------------------------------------------------- agents
def register_agent(
    name: str,
    make_agent: str | AgentFactory,
    *,
    envs: Sequence[str] | None = None,
    budget: int | None = None,
    budget_unit: str = "env steps",
    description: str = "",
) -> AgentInfo:
    """Add the agent ``name`` to the benchmark; returns its :class:`~text_envs_agents.benchmark.registry.AgentInfo`.

    ``make_agent`` (a callable or ``"module:callable"``) is called once per cell as
    ``make_agent(env, seed=seed, budget=budget)``: ``env`` is a fresh ``gymnasium.Env`` of the cell's env
    (for registered envs, made from their entry; for TicTacToe-v0, the training env of the built-in
    agents: minimax playing randomly half the time, alternating sides), ``seed`` the cell's seed,
    ``budget`` the cell's training budget (None for an agent registered without one). It returns an
    object with stable-baselines3's ``predict``. When ``budget`` is not None and the object has
    ``learn``, the benchmark then calls ``learn(total_timesteps=budget)`` (a stable-baselines3 model
    also gets a callback recording a learning curve) and evaluates what ``learn`` returns if that has
    ``predict``, else the object. ``envs``: the env ids or names the agent fits (default: every env
    with ``fits_by_default``: TicTacToe-v0 and every registered env; TicTacToeText-v0 must be named;
    TextGeneration-v0 scores language models and takes none). ``budget``: the default training budget,
    in ``budget_unit``; None makes an untrained agent.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"an agent name must be a non-empty string, got {name!r}")
    if name in _BUILTIN_AGENTS:
        raise ValueError(f"{name!r} is a built-in agent; give yours another name")
    if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool) or budget < 1):
        raise ValueError(f"budget must be a positive integer or None, got {budget!r}")
    factory = _callable(make_agent, "an agent factory")
    env_ids = None
    if envs is not None:
        if isinstance(envs, str) or not envs:
            raise ValueError(f"envs must be a non-empty list of env ids, got {envs!r}")
        env_ids = tuple(dict.fromkeys(_fittable_env(env) for env in envs))
    info = AgentInfo(
        name,
        description or f"registered from {make_agent if isinstance(make_agent, str) else _qualname(factory)}",
        _CustomRunners(factory, env_ids),
        default_budget=budget,
        budget_unit=budget_unit if budget is not None else "",
    )
    _replace("agent", name, (make_agent, env_ids, budget, budget_unit))
    AGENTS[name] = info
    return info


def _fittable_env(name: str) -> str:
    env_id = env_id_for(name) if isinstance(name, str) else None
    if env_id is None:
        raise ValueError(f"unknown env {name!r}; register it first (the envs are {', '.join(ENVS)})")
    if ENVS[env_id].evaluate is None:
        why = " (it scores language models' samples)" if env_id == TEXT_GENERATION else ""
        raise ValueError(f"{ENVS[env_id].name} takes only the built-in agents{why}")
    return env_id


def _qualname(value: Any) -> str:
    return f"{getattr(value, '__module__', '?')}:{getattr(value, '__qualname__', type(value).__name__)}"


def _replace(kind: str, name: str, entry: Any) -> None:
    previous = _ENTRIES.get((kind, name))
    if previous is not None and previous != entry:
        warnings.warn(
            f"registering the {kind} {name!r} again, differently: results already saved under this name are "
            "reused for it (give a changed agent or env a new name, e.g. a -v2 suffix)",
            stacklevel=3,
        )
    _ENTRIES[(kind, name)] = entry


class _CustomRunners(Mapping):
    """A registered agent's runners: one per env it fits, looked up when asked (envs may be registered later)."""

    def __init__(self, make_agent: AgentFactory, env_ids: tuple[str, ...] | None):
        self.make_agent = make_agent
        self.env_ids = env_ids

    def _fitting(self) -> list[str]:
        if self.env_ids is not None:
            return [env_id for env_id in self.env_ids if env_id in ENVS]
        return [env_id for env_id, info in ENVS.items() if info.fits_by_default and info.evaluate is not None]

    def __getitem__(self, env_id: str) -> Runner:
        if env_id not in self._fitting():
            raise KeyError(env_id)
        return lambda context: run_custom_agent(self.make_agent, env_id, context)

    def __iter__(self) -> Iterator[str]:
        return iter(self._fitting())

    def __len__(self) -> int:
        return len(self._fitting())


def run_custom_agent(make_agent: AgentFactory, env_id: str, context: CellContext) -> CellResult:
    """One cell of a registered agent: build it, train it if it is trained and has ``learn``, evaluate it."""
    info = ENVS[env_id]
    assert info.evaluate is not None and info.make_env is not None
    env = info.make_env()
    curve: list[tuple[int, float]] = []
    start = time.perf_counter()
    try:
        agent = make_agent(env, seed=context.seed, budget=context.budget)
        _check_agent(agent, make_agent)
        if context.budget is not None and callable(getattr(agent, "learn", None)):
            learn_kwargs = {}
            if _is_sb3_model(agent):
                learn_kwargs["callback"] = _curve_callback(info, context, curve)
            learned = agent.learn(total_timesteps=context.budget, **learn_kwargs)
            if callable(getattr(learned, "predict", None)):
                agent = learned
        train_seconds = time.perf_counter() - start if context.budget is not None else 0.0
    finally:
        env.close()
    return CellResult(info.evaluate(agent, context.episodes, context.eval_seed), train_seconds, curve)


def _check_agent(agent: Any, make_agent: AgentFactory) -> None:
    if not callable(getattr(agent, "predict", None)):
        raise TypeError(
            f"the agent factory {_qualname(make_agent)} returned a {type(agent).__name__}, which has no "
            "predict(observation, state=None, episode_start=None, deterministic=False)"
        )


def _is_sb3_model(agent: Any) -> bool:
    if "stable_baselines3" not in sys.modules:
        return False
    from stable_baselines3.common.base_class import BaseAlgorithm

    return isinstance(agent, BaseAlgorithm)


def _curve_callback(info: EnvInfo, context: CellContext, curve: list[tuple[int, float]]):
    """An SB3 callback scoring the model over ``info.curve_episodes`` episodes before, 20 times in, after training."""
    from stable_baselines3.common.callbacks import BaseCallback

    assert context.budget is not None and info.evaluate is not None
    interval = max(1, context.budget // CURVE_POINTS)
    episodes = max(2, min(info.curve_episodes, context.episodes))

    class Curve(BaseCallback):
        def _record(self) -> None:
            curve.append((self.num_timesteps, info.evaluate(self.model, episodes, context.eval_seed)["score"]))

        def _on_training_start(self) -> None:
            self._record()

        def _on_step(self) -> bool:
            if self.num_timesteps // interval > curve[-1][0] // interval:
                self._record()
            return True

        def _on_training_end(self) -> None:
            if curve[-1][0] < self.num_timesteps:  # the trained model, at the end of the budget
                self._record()

    return Curve()
