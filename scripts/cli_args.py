"""Command-line flags from a dataclass of settings: one ``--flag-name`` per field, its default the field's."""

from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any

_TYPES = {"int": int, "float": float, "str": str}


def add_dataclass_arguments(parser: argparse.ArgumentParser, settings: type) -> None:
    """Add ``--name`` for every field of the dataclass ``settings`` (``--name/--no-name`` for booleans)."""
    for field in fields(settings):
        flag = "--" + field.name.replace("_", "-")
        kind = field.type if isinstance(field.type, str) else field.type.__name__
        if kind == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default)
        elif kind in _TYPES:
            parser.add_argument(flag, type=_TYPES[kind], default=field.default)
        else:
            raise TypeError(f"{settings.__name__}.{field.name}: no command-line form for type {kind}")


def dataclass_from_arguments(settings: type, arguments: argparse.Namespace) -> Any:
    """An instance of ``settings`` from the parsed flags of :func:`add_dataclass_arguments`."""
    return settings(**{field.name: getattr(arguments, field.name) for field in fields(settings)})
