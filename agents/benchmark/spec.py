"""The benchmark spec: which agents, envs and seeds, how many evaluation episodes, what training budgets.

A spec is a JSON or TOML file (or the same keys from the command line), every key optional (the
comments are for this description only)::

    {
      "agents": ["random", "minimax", "q-learning"],    # default: every agent that fits one of the envs
      "envs": ["TicTacToe-v0", "TicTacToeText-v0"],     # default: every registered env (text_envs/ optional)
      "seeds": [0, 1, 2],                               # default: 0 to 4
      "episodes": 500,                                  # or {"TicTacToe-v0": 500}; default: per env
      "budgets": {"q-learning": 200000},                # training budget per trained agent; default: per agent
      "threads": 1,                                     # torch threads of the LLM cells
      "model": "smollm2-135m-instruct",                 # the LM agents' model (default-lm, textppo): a registered
                                                        # name, Hub name or folder; default: the embedded LM
      "judge_lm": "",                                   # the LM whose perplexity judges TextGeneration-v0 cells'
                                                        # fluency (default: smollm2-135m-instruct; "" or null: no
                                                        # perplexity; never the policy's own model, as here)
      "custom_envs": {                                  # your envs, registered when the spec loads
        "MyEnv-v0": {"entry": "my_pkg.envs:make_env", "episodes": 100, "evaluation": "episode_return"},
        "CartPole-v1": {}                               # a registered Gymnasium id needs no entry
      },
      "custom_agents": {                                # your agents: an entry point, or a table of options
        "my-agent": "my_pkg.bench:make_agent",
        "my-ppo": {"entry": "my_pkg.bench:make_ppo", "envs": ["MyEnv-v0"], "budget": 20000}
      }
    }

The cells are agents × envs × seeds; pairs where the agent does not fit the env are left out with a
message, and a spec that names an agent fitting none of its envs is an error. Without an ``envs`` key,
the spec's ``custom_envs`` join the default envs. A ``custom_envs`` value is an entry (a string) or a
table of :func:`~text_envs_agents.benchmark.custom.register_env`'s arguments (``entry``, ``evaluation``,
``episodes``, ``kwargs``, ``max_episode_steps``, ``score_label``); a ``custom_agents`` value is an entry
or a table of :func:`~text_envs_agents.benchmark.custom.register_agent`'s (``entry``, ``envs``,
``budget``, ``budget_unit``, ``description``). Loading the spec registers them for the whole process.

``model`` is part of the LM agents' cells only (a cell of another model is a new cell; the Tic-Tac-Toe
agents' cells do not depend on it), and the envs those cells run on take their tokenizer from it.
``judge_lm`` is not part of any cell: it measures a cell without changing what the agent does, so a rerun
with another judge keeps the finished cells, and each row records the judge that measured it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from text_envs.judges import DEFAULT_JUDGE_LM
from text_envs_agents.benchmark import custom
from text_envs_agents.benchmark.registry import (
    AGENTS,
    ENVS,
    SB3_A2C_SETTINGS,
    SB3_N_ENVS,
    SB3_PPO_SETTINGS,
    TICTACTOE,
    env_id_for,
)

SPEC_KEYS = (
    "agents",
    "envs",
    "seeds",
    "episodes",
    "budgets",
    "threads",
    "model",
    "judge_lm",
    "custom_envs",
    "custom_agents",
)
_CUSTOM_ENV_KEYS = ("entry", "evaluation", "episodes", "kwargs", "max_episode_steps", "score_label")
_CUSTOM_AGENT_KEYS = ("entry", "envs", "budget", "budget_unit", "description")
MAX_SEED = 2**32 - 1
"""The largest seed a spec takes: 32 bits, which every seeded library takes (numpy's legacy seeding no more)."""


class SpecError(ValueError):
    """A benchmark spec that cannot run; the message names the problem and where it is."""


@dataclass(frozen=True)
class Cell:
    """One agent on one env with one seed: the unit the benchmark trains, evaluates, and resumes.

    ``model`` is the LM of an agent that runs one (:attr:`AgentInfo.uses_model`; ``None``: the embedded
    LM), and ``None`` for every other agent.
    """

    agent: str
    env_id: str
    seed: int
    episodes: int
    budget: int | None
    model: str | None = None

    @property
    def key(self) -> tuple[str, str, int, int, int | None, str | None]:
        """What identifies a finished cell in the results: a changed episode count, budget or model is a new cell."""
        return (self.agent, self.env_id, self.seed, self.episodes, self.budget, self.model)

    @property
    def name(self) -> str:
        model = "" if self.model is None else f" ({self.model})"
        return f"{self.agent}{model} on {ENVS[self.env_id].name}, seed {self.seed}"


@dataclass(frozen=True)
class BenchmarkSpec:
    """Agents × envs × seeds, with per-env episodes and per-agent budgets (missing: the registry's defaults).

    ``agents=None`` (the default) means every registered agent that fits one of ``envs``; ``model=None``
    the embedded LM for the LM agents; ``judge_lm=None`` no perplexity in the TextGeneration-v0 cells.
    """

    agents: tuple[str, ...] | None = None
    envs: tuple[str, ...] = tuple(ENVS)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    episodes: Mapping[str, int] = field(default_factory=dict)
    budgets: Mapping[str, int] = field(default_factory=dict)
    threads: int = 1
    model: str | None = None
    judge_lm: str | None = DEFAULT_JUDGE_LM

    def episodes_for(self, env_id: str) -> int:
        return self.episodes.get(env_id, ENVS[env_id].default_episodes)

    def budget_for(self, agent: str) -> int | None:
        return self.budgets.get(agent, AGENTS[agent].default_budget)

    def cells(self) -> tuple[list[Cell], list[str]]:
        """The cells to run, and one message per agent/env pair left out because the agent does not fit the env
        (and, without ``agents``, per agent left out because its extra or its registered model's wheel is not
        installed: :attr:`AgentInfo.missing`).

        An agent named in ``agents`` that fits none of ``envs``, or that misses what it needs, is a
        :class:`SpecError`.
        """
        cells, skipped = [], []
        if self.agents is None:
            fitting_agents = [name for name, info in AGENTS.items() if any(info.fits(env_id) for env_id in self.envs)]
            missing = {name: AGENTS[name].missing for name in fitting_agents}
            skipped += [f"leaving out {name}: it needs {needs}" for name, needs in missing.items() if needs]
            agents = [name for name in fitting_agents if not missing[name]]
        else:
            agents = list(self.agents)
        for agent in agents:
            info = AGENTS[agent]
            if info.missing:
                raise SpecError(f"agent {agent!r} needs {info.missing}")
            fitting = [env_id for env_id in self.envs if info.fits(env_id)]
            if not fitting:
                raise SpecError(
                    f"agent {agent!r} fits none of the envs {_names(self.envs)}; it fits {_names(info.runners)}"
                )
            skipped += [
                f"skipping {agent} on {ENVS[env_id].name}: it fits only {_names(info.runners)}"
                for env_id in self.envs
                if env_id not in fitting
            ]
            budget = self.budget_for(agent)
            model = self.model if info.uses_model else None
            cells += [
                Cell(agent, env_id, seed, self.episodes_for(env_id), budget, model)
                for env_id in fitting
                for seed in self.seeds
            ]
        return cells, skipped


QUICK_SPEC = BenchmarkSpec(
    seeds=(0, 1),
    episodes={env_id: 100 if env_id == TICTACTOE else 10 for env_id in ENVS},
    # The SB3 and RLlib agents get one update each (one rollout, one 256-token batch): they round a smaller budget up.
    budgets={
        "q-learning": 20_000,
        "maskable-ppo": 4_096,
        "textppo": 2,
        "sb3-ppo": SB3_PPO_SETTINGS.n_steps * SB3_N_ENVS,
        "sb3-a2c": SB3_A2C_SETTINGS.n_steps * SB3_N_ENVS,
        "rllib-ppo": 256,
        "lm-warm-start-ppo": 16,
        "smollm2-warm-start-textppo": 16,
    },
)
"""Every agent on every env it fits, two seeds, tiny budgets and few episodes: a smoke test of the whole benchmark."""


def env_id_from_name(name: str, where: str = "spec") -> str:
    """``TicTacToe-v0``, ``text_envs/TicTacToe-v0`` or a registered env's id -> its id; else a :class:`SpecError`."""
    env_id = env_id_for(name)
    if env_id is None:
        raise SpecError(f"{where}: unknown env {name!r}; the benchmark's envs are {_names(ENVS)}")
    return env_id


def spec_from_mapping(data: Any, where: str = "spec", base: BenchmarkSpec | None = None) -> BenchmarkSpec:
    """A checked :class:`BenchmarkSpec` from a dict of the module docstring's keys.

    Keys left out keep their value in ``base`` (default: the default spec). ``where`` names the source
    (a file path, ``"command line"``) in error messages.
    """
    if not isinstance(data, Mapping):
        raise SpecError(f"{where}: a spec must be a table/object of {SPEC_KEYS}, got {type(data).__name__}")
    unknown = sorted(set(data) - set(SPEC_KEYS))
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {unknown}; a spec has {list(SPEC_KEYS)}")
    spec = base or BenchmarkSpec()
    custom_envs = _register_custom(data.get("custom_envs"), "custom_envs", where)
    _register_custom(data.get("custom_agents"), "custom_agents", where)
    default_envs = spec.envs + tuple(env_id for env_id in custom_envs if env_id not in spec.envs)
    agents = _names_list(data, "agents", where, spec.agents)
    for agent in agents or ():
        if agent not in AGENTS:
            raise SpecError(f"{where}: unknown agent {agent!r}; the benchmark's agents are {sorted(AGENTS)}")
    envs = tuple(env_id_from_name(name, where) for name in _names_list(data, "envs", where, default_envs))
    seeds = data.get("seeds", spec.seeds)
    if (
        not isinstance(seeds, (list, tuple))
        or not seeds
        or not all(_is_int(seed) and 0 <= seed <= MAX_SEED for seed in seeds)
        or len(set(seeds)) != len(seeds)
    ):
        raise SpecError(
            f"{where}: 'seeds' must be a non-empty list of distinct integers from 0 to 2**32 - 1, got {seeds!r}"
        )
    return BenchmarkSpec(
        agents=agents,
        envs=envs,
        seeds=tuple(seeds),
        episodes=_episodes(data.get("episodes"), where, spec.episodes),
        budgets=_budgets(data.get("budgets"), where, spec.budgets),
        threads=_positive_int(data.get("threads", spec.threads), "'threads'", where),
        model=_model(data.get("model", spec.model), where),
        judge_lm=_judge_lm(data.get("judge_lm", spec.judge_lm), where),
    )


def load_spec(path: str | Path) -> BenchmarkSpec:
    """Read a ``.json`` or ``.toml`` spec file (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"no spec file at {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise SpecError(f"{path}: not a UTF-8 text file ({error.reason} at byte {error.start})") from None
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise SpecError(f"{path}:{error.lineno}: invalid JSON ({error.msg})") from None
    elif path.suffix == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            raise SpecError(f"{path}: TOML specs need Python 3.11 or later (tomllib); use a .json spec") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise SpecError(f"{path}: invalid TOML ({error})") from None
    else:
        raise SpecError(f"{path}: a spec file must end in .json or .toml")
    return spec_from_mapping(data, str(path))


def _register_custom(value: Any, key: str, where: str) -> list[str]:
    """Register a spec's ``custom_envs`` or ``custom_agents``; their names. Failures: SpecErrors naming the entry."""
    if value is None:
        return []
    if not isinstance(value, Mapping):
        raise SpecError(f"{where}: {key!r} must map names to entry points or tables, got {value!r}")
    allowed = _CUSTOM_ENV_KEYS if key == "custom_envs" else _CUSTOM_AGENT_KEYS
    names = []
    for name, definition in value.items():
        options = {"entry": definition} if isinstance(definition, str) else definition
        if not isinstance(options, Mapping):
            raise SpecError(
                f"{where}: {key!r} entry {name!r} must be an entry point string or a table, got {definition!r}"
            )
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise SpecError(
                f"{where}: {key!r} entry {name!r} has unknown key(s) {unknown}; it may have {list(allowed)}"
            )
        options = dict(options)
        try:
            if key == "custom_envs":
                custom.register_env(name, options.pop("entry", None), **options)
            else:
                if "entry" not in options:
                    raise ValueError("an agent needs an 'entry' (e.g. 'my_pkg.bench:make_agent')")
                custom.register_agent(name, options.pop("entry"), **options)
        except (ValueError, TypeError) as error:
            raise SpecError(f"{where}: {key!r} entry {name!r}: {error}") from None
        names.append(name)
    return names


def _names(names: Any) -> str:
    return ", ".join(ENVS[name].name if name in ENVS else name for name in names)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_int(value: Any, what: str, where: str, minimum: int = 1) -> int:
    if not _is_int(value) or value < minimum:
        raise SpecError(f"{where}: {what} must be an integer of at least {minimum}, got {value!r}")
    return value


def _model(value: Any, where: str) -> str | None:
    """The spec's ``model``: None (the embedded LM) or a non-empty name or path, as :func:`text_envs.lm.load_causal_lm`
    takes it (a registered name, a Hub name, a folder); whether it loads is found when its first cell runs."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise SpecError(
            f"{where}: 'model' must be a registered model name, Hub name or folder (a non-empty string), got {value!r}"
        )
    return value


def _judge_lm(value: Any, where: str) -> str | None:
    """The spec's ``judge_lm``: a registered name, Hub name or folder, or None (``""`` or null: no judge LM)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.strip():
        raise SpecError(f"{where}: 'judge_lm' must be a model name or folder, or \"\" for none, got {value!r}")
    return value


def _names_list(
    data: Mapping[str, Any], key: str, where: str, default: tuple[str, ...] | None
) -> tuple[str, ...] | None:
    if key not in data:
        return default
    value = data[key]
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(item, str) for item in value):
        raise SpecError(f"{where}: {key!r} must be a non-empty list of names (strings), got {value!r}")
    return tuple(dict.fromkeys(value))


def _episodes(value: Any, where: str, default: Mapping[str, int]) -> dict[str, int]:
    if value is None:
        return dict(default)
    if not isinstance(value, Mapping):  # one number for every env
        if not _is_int(value):
            raise SpecError(f"{where}: 'episodes' must be an integer or a table of env to integer, got {value!r}")
        return {env_id: _positive_int(value, "'episodes'", where, minimum=2) for env_id in ENVS}
    return {
        env_id_from_name(name, where): _positive_int(count, f"'episodes' of {name}", where, minimum=2)
        for name, count in value.items()
    }


def _budgets(value: Any, where: str, default: Mapping[str, int]) -> dict[str, int]:
    if value is None:
        return dict(default)
    if not isinstance(value, Mapping):
        raise SpecError(f"{where}: 'budgets' must map trained agents to budgets, got {value!r}")
    budgets = dict(default)
    for agent, budget in value.items():
        if agent not in AGENTS or not AGENTS[agent].trained:
            trained = sorted(name for name, info in AGENTS.items() if info.trained)
            raise SpecError(f"{where}: 'budgets' names {agent!r}, which is not a trained agent; those are {trained}")
        budgets[agent] = _positive_int(budget, f"the budget of {agent}", where)
    return budgets
