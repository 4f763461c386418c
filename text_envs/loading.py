"""Loading tokenizers and language models from the Hub or local paths, with errors that say what went wrong.

``trust_remote_code`` is off unless the caller turns it on: a name on the Hub must not run code
from the Hub by default.
"""

from __future__ import annotations

from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from text_envs.defaults import DEFAULT_LM_DIR


def load_tokenizer(
    name_or_path: str | Path | PreTrainedTokenizerBase | None = None, trust_remote_code: bool = False
) -> PreTrainedTokenizerBase:
    """A tokenizer by Hub name or local directory (``None``: the embedded default); objects pass through."""
    if isinstance(name_or_path, PreTrainedTokenizerBase):
        return name_or_path
    source = DEFAULT_LM_DIR if name_or_path is None else name_or_path
    try:
        return AutoTokenizer.from_pretrained(str(source), trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise OSError(f"could not load a tokenizer from {str(source)!r}: {_why(source, 'tokenizer')}") from error


def load_causal_lm(name_or_path: str | Path | None = None, trust_remote_code: bool = False) -> PreTrainedModel:
    """A causal LM by Hub name or local directory (``None``: the embedded default), in eval mode."""
    source = DEFAULT_LM_DIR if name_or_path is None else name_or_path
    try:
        model = AutoModelForCausalLM.from_pretrained(str(source), trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise OSError(f"could not load a causal LM from {str(source)!r}: {_why(source, 'model')}") from error
    return model.eval()


def _why(source: str | Path, what: str) -> str:
    path = Path(source)
    if path.exists():
        expected = "tokenizer.json / tokenizer_config.json" if what == "tokenizer" else "config.json and weights"
        return f"the path exists but holds no {what} files ({expected})"
    if str(source).startswith((".", "/", "~")) or path.suffix:
        return "no such file or directory"
    return "not a local directory, and not found on (or not reachable from) the Hugging Face Hub"
