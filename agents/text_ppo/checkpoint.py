"""Training checkpoints as safetensors + JSON (no pickle): weights, optimizer state and RNG states.

An optimizer's ``state_dict`` is a tree of tensors and plain values; :func:`flatten_state` splits
it into named tensors (saved with safetensors) and a JSON skeleton (saved in the safetensors
metadata), and :func:`unflatten_state` puts the two back together.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

_TENSOR = "__tensor__"


def flatten_state(state: Any, prefix: str = "") -> tuple[Any, dict[str, torch.Tensor]]:
    """A JSON-able skeleton of ``state`` with every tensor replaced by a reference, and the tensors by name."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, torch.Tensor):
            tensors[path] = value.detach().contiguous().clone()
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
