"""Training checkpoints as safetensors + JSON (no pickle): weights, optimizer state, RNG states, and what
rebuilds the run (the base model's name, the env's arguments).

An optimizer's ``state_dict`` is a tree of tensors and plain values; :func:`flatten_state` splits
it into named tensors (saved with safetensors) and a JSON skeleton (saved in the safetensors
metadata), and :func:`unflatten_state` puts the two back together. Tensors are saved from the CPU
and loaded onto it, whatever device they lived on: the trainer copies them onto its own.
:func:`read_checkpoint` reads and checks a whole checkpoint directory (its JSON, its safetensors headers
and tensors) before anything is built from it; :func:`model_record` / :func:`env_record` write down the
base model and the env, :func:`build_env` rebuilds the env.

A checkpoint is replaced as a whole (:func:`replace_directory`): the new one is written into
``<name>.new`` beside it and fsynced, then the old one is renamed to ``<name>.old``, the new one to
``<name>``, and ``<name>.old`` removed. A crash leaves ``<name>`` complete (old or new) except
between the two renames, when only ``<name>.old`` and ``<name>.new`` exist: then
:func:`read_checkpoint` reads ``<name>.old`` (the previous checkpoint) and the next save puts it back
in place first. ``<name>.new`` is never read. This holds for crashes of the process; after a power
loss it holds where the filesystem honours fsync on files and directories.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from text_envs.durable import fsync_path

_TENSOR = "__tensor__"


def flatten_state(state: Any, prefix: str = "") -> tuple[Any, dict[str, torch.Tensor]]:
    """A JSON-able skeleton of ``state`` with every tensor replaced by a reference, and the tensors by name."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, torch.Tensor):
            tensors[path] = value.detach().to("cpu", copy=True).contiguous()
            return {_TENSOR: path}
        if isinstance(value, dict):
            return {
                "__dict__": [
                    [walk(k, f"{path}.k{i}"), walk(v, f"{path}.{i}")] for i, (k, v) in enumerate(value.items())
                ]
            }
        if isinstance(value, (list, tuple)):
            return {
                "__list__": [walk(v, f"{path}.{i}") for i, v in enumerate(value)],
                "tuple": isinstance(value, tuple),
            }
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise TypeError(f"cannot checkpoint a {type(value).__name__} at {path or 'the root'}")

    return walk(state, prefix or "state"), tensors


def unflatten_state(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The inverse of :func:`flatten_state`."""
    if isinstance(skeleton, dict):
        if _TENSOR in skeleton:
            return tensors[skeleton[_TENSOR]]
        if "__dict__" in skeleton:
            return {unflatten_state(k, tensors): unflatten_state(v, tensors) for k, v in skeleton["__dict__"]}
        items = [unflatten_state(v, tensors) for v in skeleton["__list__"]]
        return tuple(items) if skeleton["tuple"] else items
    return skeleton


def save_state(path: str | Path, state: Any) -> None:
    """Write any tree of tensors and plain values to one safetensors file."""
    skeleton, tensors = flatten_state(state)
    save_file(tensors, str(path), metadata={"skeleton": json.dumps(skeleton)})


def load_state(path: str | Path) -> Any:
    """Read a tree written by :func:`save_state`."""
    with safe_open(str(path), framework="pt") as f:
        skeleton = json.loads(f.metadata()["skeleton"])
    return unflatten_state(skeleton, load_file(str(path)))


# ------------------------------------------------------------------------------------ checkpoint contents
CHECKPOINT_FILES = ("trainer_state.json", "policy.safetensors", "optimizer.safetensors", "rng.safetensors")
"""The files of a TextPPO checkpoint directory, all required."""
FORMAT_VERSION = 2
"""1: weights, optimizer, β and RNG states; 2: also the base model, the env's arguments, timesteps and history."""
_STATE_KEYS = {"iteration": int, "kl_beta": (int, float), "env_rng": dict, "config": dict}
_OPTIONAL_STATE_KEYS = {"num_timesteps": int, "env_seed": (int, type(None)), "history": list, "shaping": list}


@dataclass
class SafetensorsHeader:
    """What a file written by :func:`save_state` holds, read from its header only (no tensor data)."""

    path: Path
    skeleton: Any
    shapes: dict[str, tuple[int, ...]]

    def tree(self) -> Any:
        """The saved tree with each tensor replaced by its shape."""
        return unflatten_state(self.skeleton, self.shapes)


@dataclass
class Checkpoint:
    """A checkpoint directory whose files were all found, parsed and cross-checked by :func:`read_checkpoint`.

    The headers describe what the files hold; ``weights``, ``optimizer_state`` and ``rng_state`` are
    their tensors, already read, so restoring them cannot fail halfway on an unreadable file.
    """

    directory: Path
    state: dict[str, Any]
    policy: SafetensorsHeader
    optimizer: SafetensorsHeader
    rng: SafetensorsHeader
    weights: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any]
    rng_state: dict[str, Any]

    @property
    def state_path(self) -> Path:
        return self.directory / "trainer_state.json"


def _references(skeleton: Any) -> set[str]:
    if isinstance(skeleton, dict):
        if _TENSOR in skeleton:
            return {skeleton[_TENSOR]}
        if "__dict__" in skeleton:
            children = [x for pair in skeleton["__dict__"] for x in pair]
        else:
            children = skeleton["__list__"]
        return set().union(*(_references(child) for child in children))
    if isinstance(skeleton, list):
        return set().union(*(_references(child) for child in skeleton))
    return set()


def read_header(path: str | Path) -> SafetensorsHeader:
    """The skeleton and tensor shapes of a :func:`save_state` file; ``ValueError`` naming the file if unreadable."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            shapes = {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}
    except Exception as error:  # safetensors raises its own SafetensorError, or OSError
        raise ValueError(f"{path}: not a readable safetensors file ({error})") from error
    if "skeleton" not in metadata:
        raise ValueError(f"{path}: its header has no 'skeleton' metadata, so TextPPO.save did not write it")
    try:
        skeleton = json.loads(metadata["skeleton"])
        referenced = _references(skeleton)
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: its 'skeleton' metadata is not a valid state tree ({error!r})") from error
    if referenced != set(shapes):
        absent, unused = sorted(referenced - set(shapes)), sorted(set(shapes) - referenced)
        raise ValueError(
            f"{path}: the skeleton and the tensors disagree (missing {absent[:5]}, unreferenced {unused[:5]})"
        )
    return SafetensorsHeader(path, skeleton, shapes)


def _sibling(directory: Path, suffix: str) -> Path:
    return directory.with_name(directory.name + suffix)


def replace_directory(directory: str | Path, write: Callable[[Path], None]) -> None:
    """Replace the checkpoint folder ``directory`` as a whole with what ``write(folder)`` puts into an empty folder.

    The module docstring gives the order of the steps and what a crash at each leaves. ``directory``
    must be missing, empty or a checkpoint (only :data:`CHECKPOINT_FILES`), and so must its ``.old`` and
    ``.new`` siblings: they are removed with their contents, so a folder holding anything else is
    refused. A symlink is followed (the folder it points at is replaced); a mount point is refused, as
    a folder that cannot be renamed.
    """
    directory = Path(directory).resolve()
    staging, previous = _sibling(directory, ".new"), _sibling(directory, ".old")
    if os.path.ismount(directory):
        raise ValueError(
            f"cannot save a TextPPO checkpoint to {directory}: it is a mount point, which a save cannot replace "
            f"as a whole; save into a folder inside it, e.g. {directory / 'checkpoint'}"
        )
    for folder in (directory, staging, previous):
        _check_replaceable(folder)
    if staging.exists():  # an interrupted save's folder, perhaps incomplete
        shutil.rmtree(staging)
    if previous.exists() and not directory.exists():  # interrupted between the renames: the old one goes back
        os.rename(previous, directory)
    if previous.exists():
        shutil.rmtree(previous)
    staging.mkdir(parents=True)
    try:
        write(staging)
        for file in staging.iterdir():
            fsync_path(file)
        fsync_path(staging)
        if directory.exists():
            os.rename(directory, previous)
        os.rename(staging, directory)
    except OSError:
        if not directory.exists() and previous.exists():
            os.rename(previous, directory)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    fsync_path(directory.parent)
    if previous.exists():
        shutil.rmtree(previous)


def _check_replaceable(folder: Path) -> None:
    """Refuse to replace ``folder`` unless it is missing, empty or a checkpoint (a save removes it whole)."""
    if not folder.exists() and not folder.is_symlink():
        return
    if folder.is_symlink():
        raise ValueError(
            f"cannot save a TextPPO checkpoint beside {folder}: it is a symlink, which a save would remove"
        )
    if not folder.is_dir():
        raise ValueError(f"cannot save a TextPPO checkpoint to {folder}: it is a file")
    foreign = sorted(entry.name for entry in folder.iterdir() if entry.name not in CHECKPOINT_FILES)
    if foreign:
        raise ValueError(
            f"cannot save a TextPPO checkpoint to {folder}: it holds {foreign[:5]}, which are not checkpoint "
            "files, and a save replaces the whole folder; give the checkpoint a folder of its own"
        )


def _checkpoint_directory(directory: Path) -> Path:
    """``directory``, or its ``.old`` folder when a save was interrupted between its renames (module docstring)."""
    previous = _sibling(directory, ".old")
    return previous if not directory.exists() and previous.is_dir() else directory


def _read_tensors(header: SafetensorsHeader) -> Any:
    try:
        return load_state(header.path)
    except Exception as error:  # safetensors raises its own SafetensorError, or OSError
        raise ValueError(f"{header.path}: its tensors cannot be read ({error})") from error


def read_checkpoint(directory: str | Path) -> Checkpoint:
    """Find, parse, check and read every file of a checkpoint directory (see the module docstring for ``.old``).

    ``FileNotFoundError`` for a missing directory or file, ``ValueError`` naming the file and the problem
    for anything unreadable (bad JSON, a missing or mistyped key, a damaged safetensors file).
    """
    requested = Path(directory)
    directory = _checkpoint_directory(requested)
    if not directory.is_dir():
        raise FileNotFoundError(f"no TextPPO checkpoint in {requested}: not a directory")
    missing = [name for name in CHECKPOINT_FILES if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"no TextPPO checkpoint in {directory}: {', '.join(missing)} missing")
    state_path = directory / "trainer_state.json"
    try:
        state = json.loads(state_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{state_path}: not valid JSON ({error})") from error
    if not isinstance(state, dict):
        raise ValueError(f"{state_path}: expected a JSON object, got {type(state).__name__}")
    for key, kind in {**_STATE_KEYS, **_OPTIONAL_STATE_KEYS}.items():
        if key not in state:
            if key in _OPTIONAL_STATE_KEYS:  # older formats have no such entry
                continue
            raise ValueError(f"{state_path}: no {key!r} entry")
        if not isinstance(state[key], kind) or isinstance(state[key], bool):
            expected = " or ".join(k.__name__ for k in kind) if isinstance(kind, tuple) else kind.__name__
            raise ValueError(f"{state_path}: {key!r} should be {expected}, got {state[key]!r}")
    if state["iteration"] < 0 or state.get("num_timesteps", 0) < 0:
        raise ValueError(f"{state_path}: negative 'iteration' or 'num_timesteps'")
    if not math.isfinite(state["kl_beta"]) or state["kl_beta"] < 0:
        raise ValueError(f"{state_path}: 'kl_beta' should be a finite number of at least 0, got {state['kl_beta']!r}")
    if state.get("format", 1) > FORMAT_VERSION:
        raise ValueError(f"{state_path}: format {state['format']} is newer than this TextPPO reads ({FORMAT_VERSION})")
    headers = {name: read_header(directory / f"{name}.safetensors") for name in ("policy", "optimizer", "rng")}
    policy = headers["policy"].tree()
    if not isinstance(policy, dict) or not all(isinstance(k, str) and isinstance(v, tuple) for k, v in policy.items()):
        raise ValueError(f"{headers['policy'].path}: expected a mapping of parameter names to tensors")
    optimizer = headers["optimizer"].tree()
    if not isinstance(optimizer, dict) or not {"state", "param_groups"} <= set(optimizer):
        raise ValueError(f"{headers['optimizer'].path}: not an optimizer state_dict (no 'state' and 'param_groups')")
    rng = headers["rng"].tree()
    if not isinstance(rng, dict) or not {"sampler", "torch"} <= set(rng):
        raise ValueError(f"{headers['rng'].path}: expected the 'sampler' and 'torch' RNG states")
    torch_rng = rng["torch"]
    if torch_rng != tuple(torch.get_rng_state().shape):
        raise ValueError(f"{headers['rng'].path}: the torch RNG state has shape {torch_rng}, not a CPU generator's")
    weights, optimizer_state, rng_state = (_read_tensors(headers[name]) for name in ("policy", "optimizer", "rng"))
    return Checkpoint(
        directory, state, headers["policy"], headers["optimizer"], headers["rng"], weights, optimizer_state, rng_state
    )


# --------------------------------------------------------------------------------- what rebuilds the run
def _is_default_lm(name_or_path: str) -> bool:
    from text_envs.defaults import DEFAULT_LM_DIR

    try:
        return Path(name_or_path).resolve() == DEFAULT_LM_DIR.resolve()
    except (OSError, ValueError):
        return False


def model_record(model: Any) -> dict[str, Any]:
    """``{"name_or_path": name}`` (``None``: the embedded default LM) or ``{"unrecorded": why}``."""
    name = str(getattr(model, "name_or_path", "") or "")
    if not name:
        return {"unrecorded": f"the {type(model).__name__} has no name_or_path"}
    return {"name_or_path": None if _is_default_lm(name) else name}


def _importable_name(function: Any) -> str | None:
    """``"module:qualname"`` of a function of the text_envs package that importing gives back, else None."""
    module, qualname = getattr(function, "__module__", None), getattr(function, "__qualname__", "")
    if not isinstance(module, str) or not module.startswith("text_envs.") or "<" in qualname:
        return None
    try:
        return f"{module}:{qualname}" if _import_name(f"{module}:{qualname}") is function else None
    except (ImportError, AttributeError, ValueError):
        return None


def _import_name(name: str) -> Any:
    # Only the text_envs package's own functions: a checkpoint must not make load import arbitrary code.
    module, _, qualname = name.partition(":")
    if not module.startswith("text_envs.") or not qualname:
        raise ValueError(f"reward_model {name!r} is not a function of the text_envs package")
    value: Any = importlib.import_module(module)
    for part in qualname.split("."):
        value = getattr(value, part)
    return value


def env_record(env: Any) -> dict[str, Any]:
    """The arguments that rebuild ``env`` (a :class:`~text_envs.TextGenerationVectorEnv`), JSON-able.

    ``{"num_envs": n, "kwargs": {...}}``, or ``{"unrecorded": why}`` when the tokenizer (no name or
    path) or the reward model (an object, or a function outside the text_envs package) cannot be
    written down. Prompts are recorded as the list the env loaded (``None``: the embedded training
    prompts); the tokenizer and the reward model by name (``None``: the embedded defaults).
    """
    from text_envs.defaults import DEFAULT_PROMPTS_TRAIN
    from text_envs.generation.prompts import load_prompts
    from text_envs.rewards.trained import TrainedRewardModel, default_reward, default_reward_model

    task = env.task
    tokenizer = str(getattr(task.tokenizer, "name_or_path", "") or "")
    if not tokenizer:
        return {"unrecorded": "the env's tokenizer has no name_or_path"}
    if task.reward_model is default_reward or (
        isinstance(task.reward_model, TrainedRewardModel)
        and task.reward_model is default_reward_model(task.reward_model.device)
    ):
        reward_model = None
    else:
        reward_model = _importable_name(task.reward_model)
        if reward_model is None:
            return {
                "unrecorded": f"the env's reward model {task.reward_model!r} is an object or a function outside "
                "the text_envs package, which a checkpoint cannot hold"
            }
    prompts = None if list(task.prompts) == load_prompts(DEFAULT_PROMPTS_TRAIN) else list(task.prompts)
    stop_tokens = sorted(int(t) for t in task.stop_token_ids - task.prompt_format.turn_end_token_ids)
    context_length = task.sequence_length if task.architecture == "causal" else None
    if context_length == task.max_prompt_tokens + task.max_new_tokens:
        context_length = None
    kwargs = {
        "tokenizer": None if _is_default_lm(tokenizer) else tokenizer,
        "prompts": prompts,
        "reward_model": reward_model,
        "max_new_tokens": task.max_new_tokens,
        "max_prompt_tokens": task.max_prompt_tokens,
        "context_length": context_length,
        "stop_tokens": stop_tokens,
        "observation_mode": task.observation_mode,
        "architecture": task.architecture,
        "prompt_truncation": task.prompt_truncation,
        "prompt_format": task.prompt_format.name,
        "system_prompt": task.prompt_format.system_prompt,
        "render_mode": env.render_mode,
        "autoreset_mode": str(env.autoreset_mode.value),
    }
    return {"num_envs": int(env.num_envs), "kwargs": kwargs}


def build_env(record: Any, state_path: Path) -> Any:
    """The :class:`~text_envs.TextGenerationVectorEnv` an :func:`env_record` describes; errors name ``state_path``."""
    from text_envs.generation.vector_env import TextGenerationVectorEnv

    if not isinstance(record, dict):
        raise ValueError(f"{state_path} records no env (written before TextPPO recorded one): pass env= to load")
    if "unrecorded" in record:
        raise ValueError(f"{state_path} could not record the env ({record['unrecorded']}): pass env= to load")
    try:
        kwargs = dict(record["kwargs"])
        if kwargs.get("reward_model") is not None:
            kwargs["reward_model"] = _import_name(kwargs["reward_model"])
        return TextGenerationVectorEnv(int(record["num_envs"]), **kwargs)
    except (KeyError, TypeError, ValueError, ImportError, AttributeError, OSError) as error:
        raise ValueError(f"{state_path}: cannot rebuild the recorded env ({error}); pass env= to load") from error
