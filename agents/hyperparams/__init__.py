"""Tuned hyper-parameters as RL Zoo (``rl_zoo3``) configuration files, shipped inside the package.

``ppo_mask.yml`` holds sb3-contrib MaskablePPO's settings for ``text_envs/TicTacToe-v0``, in the format of
RL Zoo's ``hyperparams/<algo>.yml`` (keyed by env id; ``env_kwargs``, ``n_envs``, ``n_timesteps``,
``policy``, ``lin_<value>`` schedules, ``policy_kwargs`` as a string RL Zoo evaluates with ``nn`` in
scope). Train with RL Zoo::

    python -m text_envs_agents.hyperparams.zoo --algo ppo_mask --env text_envs/TicTacToe-v0 \\
        --conf-file "$(python -m text_envs_agents.hyperparams)" --gym-packages text_envs

(:mod:`text_envs_agents.hyperparams.zoo` is ``python -m rl_zoo3.train`` with MaskablePPO registered as
``ppo_mask``, which rl_zoo3 2.x no longer ships.) :func:`algorithm_kwargs` reads the same file into the
keyword arguments of the algorithm's constructor, for code that builds the model itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

CONF_FILES = {"ppo_mask": "ppo_mask.yml"}
"""RL Zoo algorithm name -> its configuration file in this package."""

# Keys RL Zoo consumes itself rather than passing to the algorithm's constructor.
_ZOO_KEYS = ("env_kwargs", "n_envs", "n_timesteps", "policy", "env_wrapper", "normalize", "frame_stack", "callback")


def conf_file(algo: str = "ppo_mask") -> Path:
    """The path of ``algo``'s RL Zoo configuration file (for ``rl_zoo3.train --conf-file``)."""
    if algo not in CONF_FILES:
        raise ValueError(f"no hyper-parameters for {algo!r}; this package has {sorted(CONF_FILES)}")
    return Path(str(resources.files(__name__).joinpath(CONF_FILES[algo])))


def zoo_hyperparams(algo: str, env_id: str) -> dict[str, Any]:
    """The entry of ``env_id`` in ``algo``'s configuration file, as RL Zoo reads it (strings unevaluated)."""
    import yaml

    with open(conf_file(algo)) as f:
        entries = yaml.safe_load(f)
    if env_id not in entries:
        raise ValueError(f"{conf_file(algo)} has no entry for {env_id!r}; it has {sorted(entries)}")
    return dict(entries[env_id])


def linear_schedule(initial_value: float) -> Callable[[float], float]:
    """RL Zoo's ``lin_<value>``: ``initial_value`` falling linearly to 0 (SB3 passes progress_remaining, 1 to 0).

    ``progress_remaining * initial_value``, as RL Zoo's ``SimpleLinearSchedule`` computes it; picklable.
    """
    return functools.partial(_linear, initial_value)


def _linear(initial_value: float, progress_remaining: float) -> float:
    return progress_remaining * initial_value


def algorithm_kwargs(algo: str, env_id: str) -> dict[str, Any]:
    """The constructor keyword arguments RL Zoo would pass for ``env_id`` (policy, envs and timesteps left out).

    ``lin_<value>`` strings become linear schedules and string ``policy_kwargs`` are evaluated with
    ``nn`` (``torch.nn``) in scope, as RL Zoo does; the env settings are in :func:`zoo_hyperparams`.
    """
    kwargs = {key: value for key, value in zoo_hyperparams(algo, env_id).items() if key not in _ZOO_KEYS}
    for key in ("learning_rate", "clip_range", "clip_range_vf"):
        if isinstance(kwargs.get(key), str):
            schedule, _, value = kwargs[key].partition("_")
            if schedule != "lin":
                raise ValueError(f"{conf_file(algo)}: unknown schedule {kwargs[key]!r} for {key} (RL Zoo has lin_)")
            kwargs[key] = linear_schedule(float(value))
    if isinstance(kwargs.get("policy_kwargs"), str):
        from torch import nn

        kwargs["policy_kwargs"] = eval(kwargs["policy_kwargs"], {"nn": nn, "dict": dict})  # as RL Zoo does
    return kwargs
