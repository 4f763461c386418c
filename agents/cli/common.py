"""What the command-line tools share: parsing an ``Args`` dataclass with tyro, and reward models by name."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import tyro
from tyro.constructors import ConstructorRegistry, StructConstructorSpec, StructTypeInfo

T = TypeVar("T")


def parse(args_type: type[T], argv: Sequence[str] | None, doc: str | None, **kwargs: Any) -> T:
    """``tyro.cli(args_type, args=argv)`` with the first line of ``doc`` (a module docstring) as the description.

    ``argv=None`` reads ``sys.argv``. ``--help`` prints the flags and exits 0; a bad flag exits 2.
    """
    return tyro.cli(args_type, args=argv, description=(doc or "").strip().split("\n")[0], **kwargs)


def hiding_fields(struct_type: type, names: Collection[str]) -> ConstructorRegistry:
    """A tyro registry that leaves the fields ``names`` of the dataclass ``struct_type`` off the command line.

    For a settings dataclass nested in ``Args`` whose class is not ours to annotate (``TextPPOConfig``):
    the fields keep their defaults, and the tool sets them itself (from its own flags, like ``--beta``,
    or because tyro cannot render their type, like ``lora: dict[str, Any] | None``).
    """
    unknown = set(names) - {field.name for field in dataclasses.fields(struct_type)}
    if unknown:
        raise ValueError(f"{struct_type.__name__} has no field(s) {sorted(unknown)}")
    registry = ConstructorRegistry()
    inside: list[bool] = []  # set while the rule asks tyro's own rules for the spec it then edits

    @registry.struct_rule
    def hide(info: StructTypeInfo) -> StructConstructorSpec | None:
        if info.type is not struct_type or inside:
            return None
        inside.append(True)
        try:
            spec = ConstructorRegistry.get_struct_spec(info)
        finally:
            inside.pop()
        if not isinstance(spec, StructConstructorSpec):
            return None
        hidden = tuple(
            dataclasses.replace(field, type=Annotated[field.type, tyro.conf.Suppress]) if field.name in names else field
            for field in spec.fields
        )
        return dataclasses.replace(spec, fields=hidden)

    return registry


def load_reward_model_by_name(
    name: str, label: str = "", device: str = "auto", allow_external_backbone: bool = False
) -> Any:
    """The reward model the tools' ``--reward-model`` names, on ``device`` (``"auto"``: CUDA when present).

    ``default``: the embedded trained reward model (both feedback rounds); ``default-round1``: the embedded
    round-1 model it replaced; ``lexicon``: the gold lexicon score (plain Python,
    no device); a directory holding ``reward_model.json`` (written by ``text-envs-train-reward-model``),
    whose backbone loads only if this installation holds it unless ``allow_external_backbone`` (the
    tools' ``--allow-external-backbone``; see :func:`text_envs.rewards.trained.backbone_source`);
    anything else: a Hugging Face sequence classifier, scored by its class ``label`` (empty: its last class),
    which the user named on the command line themselves.
    """
    if name == "default":
        from text_envs.rewards.trained import default_reward_model

        return default_reward_model(device)
    if name == "default-round1":
        from text_envs.defaults import ROUND1_REWARD_MODEL_DIR
        from text_envs.rewards.trained import load_reward_model

        return load_reward_model(ROUND1_REWARD_MODEL_DIR, device=device)
    if name == "lexicon":
        from text_envs.rewards.lexicon import lexicon_sentiment_reward

        return lexicon_sentiment_reward
    if (Path(name) / "reward_model.json").is_file():
        from text_envs.rewards.trained import load_reward_model

        return load_reward_model(name, device=device, allow_external_backbone=allow_external_backbone)
    from text_envs.rewards.classifier import ClassifierRewardModel

    return ClassifierRewardModel(name, label=label or None, device=device)
