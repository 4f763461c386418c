"""The ``info["reward_components"]`` convention that every shaping wrapper keeps (see :mod:`text_envs.shaping`)."""

from __future__ import annotations

from typing import Any

NOT_ADDITIVE = frozenset({"normalised_reward"})
"""Entries of ``reward_components`` that record a transform's result instead of adding a term."""


def reward_components(info: dict[str, Any]) -> dict[str, float]:
    """A fresh copy of ``info["reward_components"]``, or a new dict holding only ``"score"`` if none exists yet.

    ``"score"`` is the env's per-sequence score: ``info["score"]`` on the final step, 0.0 before it.
    """
    if "reward_components" in info:
        return dict(info["reward_components"])
    return {"score": float(info.get("score", 0.0))}


def add_reward_term(info: dict[str, Any], name: str, value: float) -> dict[str, Any]:
    """A copy of ``info`` whose ``reward_components[name]`` has grown by ``value`` (a term added twice is summed)."""
    components = reward_components(info)
    components[name] = components.get(name, 0.0) + value
    return {**info, "reward_components": components}
