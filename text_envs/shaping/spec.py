"""Shaping pieces from text, for command lines and sweep grids: ``"LengthTerm(coef=0.1)"``.

A spec is one call of a piece of :mod:`text_envs.shaping.terms` with literal arguments, or a stack of
them separated by ``;``::

    parse_shaping("LengthTerm(coef=0.1, target_length=8); MissingEOSTerm(penalty=1.0); ClipTransform(-5, 5)")

Arguments are Python literals (read with :func:`ast.literal_eval`, nothing is executed); a callable
argument (``DenseTerm``'s ``token_scorer``, ``PotentialTerm``'s ``potential``) is a ``"module:function"``
string, imported. ``KLTerm`` is not among them: the trainers build the KL term from their own β settings.
"""

from __future__ import annotations

import ast
import importlib

from text_envs.shaping.terms import (
    ClipTransform,
    CommonNgramTerm,
    DenseTerm,
    LengthTerm,
    MissingEOSTerm,
    PotentialTerm,
    ReturnStdScaling,
    RewardTransform,
    ShapingTerm,
)

PIECES = {
    cls.__name__: cls
    for cls in (
        LengthTerm,
        MissingEOSTerm,
        CommonNgramTerm,
        DenseTerm,
        PotentialTerm,
        ClipTransform,
        ReturnStdScaling,
    )
}
_CALLABLE_ARGUMENTS = {"token_scorer", "potential"}


def parse_piece(spec: str) -> ShapingTerm | RewardTransform:
    """One piece from ``"Name(arg, key=value)"``; ``ValueError`` naming the spec and what is wrong."""
    _check_text(spec)
    try:
        call = ast.parse(spec.strip(), mode="eval").body
    except SyntaxError as error:
        raise ValueError(f"shaping spec {spec!r} is not a call like 'LengthTerm(coef=0.1)': {error.msg}") from None
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
        raise ValueError(f"shaping spec {spec!r} is not a call like 'LengthTerm(coef=0.1)'")
    if call.func.id not in PIECES:
        raise ValueError(f"shaping spec {spec!r}: unknown piece {call.func.id!r}; known: {', '.join(PIECES)}")
    try:
        args = [ast.literal_eval(node) for node in call.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    except ValueError:
        raise ValueError(f"shaping spec {spec!r}: arguments must be literals (numbers, strings, None)") from None
    if None in kwargs:
        raise ValueError(f"shaping spec {spec!r}: **kwargs are not supported")
    for name in _CALLABLE_ARGUMENTS & set(kwargs):
        kwargs[name] = _import(kwargs[name], spec)
    try:
        return PIECES[call.func.id](*args, **kwargs)
    except TypeError as error:
        raise ValueError(f"shaping spec {spec!r}: {error}") from None


def parse_shaping(spec: str) -> list[ShapingTerm | RewardTransform]:
    """A stack of pieces separated by ``;`` (an empty spec is no extra shaping)."""
    _check_text(spec)
    return [parse_piece(part) for part in spec.split(";") if part.strip()]


def _import(target: object, spec: str) -> object:
    module, _, name = str(target).partition(":")
    try:
        value = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as error:
        raise ValueError(f"shaping spec {spec!r}: cannot import {target!r} ('module:function'): {error}") from None
    if not callable(value):
        raise ValueError(f"shaping spec {spec!r}: {target!r} is not callable")
    return value


def _check_text(spec: object) -> None:
    if not isinstance(spec, str):
        raise TypeError(f"a shaping spec must be a string like 'LengthTerm(coef=0.1)', got {spec!r}")
