"""Annotators: who judges the items of a labelling round, a person at the terminal or a program, on the record.

Every annotator is an :class:`Annotator`: an ``annotator_id`` stored on each record it writes, a
``simulated`` flag (``True`` for anything that is not a person answering), and
:meth:`Annotator.annotate`, which judges a list of :class:`~text_envs.feedback.labelling.Item` in a mode
(``"label"``: 0/1, ``"compare"``: a/b) and appends one record per item to a feedback file through
:mod:`text_envs.feedback.records`, passing over the items it judged or skipped there before (so a
killed session resumes where it stopped, losing at most the record being written).

- :class:`TerminalAnnotator`: a person, through :func:`~text_envs.feedback.labelling.label_items` (keys,
  skip, undo, quit); not simulated.
- :class:`ScriptedAnnotator`: a program that labels with :meth:`~ScriptedAnnotator.accepts` and compares
  with :meth:`~ScriptedAnnotator.rank`; its records carry ``"simulated": true`` and the ``"round"`` they
  belong to, and its ``preference`` says in one sentence what it wants.
- :class:`ShortReviewAnnotator` and :class:`LongReviewAnnotator`: two simulated users with documented,
  opposite preferences (short, punchy reviews; long, detailed ones), for personalised reward models.

**No annotator may consult a judge.** VADER, the lexicon, the judge LM of :mod:`text_envs.judges`, a
reward model or any other scorer would leak into the reward model trained on its records, and the
evaluation that uses those judges would then measure the judge against itself. The built-in scripted
annotators read only the completion's text (its words and where its sentences end); this module imports
nothing beyond the standard library and :mod:`text_envs.feedback`. :func:`load_annotator` refuses a
plug-in whose module imports a judge (:data:`JUDGE_MODULES`), a guard against mistakes, not against a
plug-in that hides what it calls.
"""

from __future__ import annotations

import ast
import getpass
import importlib
import importlib.util
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from text_envs.feedback.labelling import COMPLETION_KEYS, MODES, Item, SessionSummary, label_items
from text_envs.feedback.records import append_record, make_record, read_feedback

JUDGE_MODULES = (
    "text_envs.judges",
    "text_envs.rewards",
    "text_envs.lm",
    "text_envs.models",
    "text_envs_agents",
    "vaderSentiment",
    "transformers",
)
"""Modules an annotator's own module must not import: the judges, the lexicon, every reward model, and what
loads a language model (the judge LM among them) or re-exports one of those."""
DYNAMIC_IMPORTS = ("import_module", "__import__")
"""Calls that would import a module by a name the check cannot read."""
SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)")


@runtime_checkable
class Annotator(Protocol):
    """Whoever judges a round's items; every record it writes names its ``annotator_id``."""

    annotator_id: str
    simulated: bool

    def annotate(self, items: Sequence[Item], mode: str, feedback_file: Path, round_number: int) -> SessionSummary:
        """Judge the items not yet judged or skipped by this annotator in ``feedback_file``; append each record.

        ``summary.remaining`` counts the items left for a later session (a person who quit).
        """
        ...


class TerminalAnnotator:
    """A person answering at the terminal (:func:`~text_envs.feedback.labelling.label_items`); not simulated.

    Its records carry ``"round"`` (and no ``simulated`` mark). ``input_fn`` and ``output_fn`` default to the
    terminal.
    """

    simulated = False

    def __init__(
        self,
        annotator_id: str = "",
        input_fn: Callable[[str], str] = input,
        output_fn: Callable[[str], None] = print,
    ) -> None:
        self.annotator_id = annotator_id or _login_name()
        self.input_fn = input_fn
        self.output_fn = output_fn

    def annotate(self, items: Sequence[Item], mode: str, feedback_file: Path, round_number: int) -> SessionSummary:
        self.output_fn(f"round {round_number}: {mode} {len(items)} item(s) into {feedback_file}")
        return label_items(
            items,
            feedback_file,
            self.annotator_id,
            mode,
            input_fn=self.input_fn,
            output_fn=self.output_fn,
            fields={"round": round_number},
        )


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in the environment or the password database
        return "annotator"


class ScriptedAnnotator:
    """A program as annotator: subclass it, set ``annotator_id`` and ``preference``, define ``accepts`` and ``rank``.

    ``label`` items get 1 when :meth:`accepts` the completion, else 0; ``compare`` items go to the
    completion of higher :meth:`rank`, and equal ranks are recorded as a skip (a tie teaches nothing).
    Records carry ``"round"`` and ``"simulated": true``. Judge the texts only: see the module docstring.
    """

    annotator_id: str = ""
    simulated = True
    preference: str = ""
    """what this annotator wants, in one sentence (kept with the loop's records)"""

    def accepts(self, prompt: str, completion: str) -> bool:
        """Whether ``completion`` (continuing ``prompt``) is what this annotator asks for: a label of 1."""
        raise NotImplementedError

    def rank(self, prompt: str, completion: str) -> tuple[Any, ...]:
        """A sort key: of two completions of one prompt, the one ranked higher is preferred."""
        raise NotImplementedError

    def judge(self, item: Item, mode: str) -> str | None:
        """The key a person would press: ``"0"``/``"1"`` or ``"a"``/``"b"``, or ``None`` to skip."""
        if mode == "label":
            return "1" if self.accepts(item.prompt, item.completions[0]) else "0"
        rank_a, rank_b = (self.rank(item.prompt, completion) for completion in item.completions)
        if rank_a == rank_b:
            return None
        return "a" if rank_a > rank_b else "b"

    def annotate(self, items: Sequence[Item], mode: str, feedback_file: Path, round_number: int) -> SessionSummary:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        seen = read_feedback(feedback_file).seen_item_ids(self.annotator_id)
        summary = SessionSummary()
        for item in {item.item_id: item for item in items}.values():
            if item.item_id in seen:
                continue
            key = self.judge(item, mode)
            on_record = {"round": round_number, "simulated": True}
            if key is None:
                append_record(feedback_file, make_record("skip", item.item_id, self.annotator_id, **on_record))
                summary.skipped += 1
                continue
            texts = dict(zip(COMPLETION_KEYS[mode], item.completions, strict=True))
            judgement = {"label": int(key)} if mode == "label" else {"choice": key}
            record_type = "label" if mode == "label" else "comparison"
            record = make_record(
                record_type, item.item_id, self.annotator_id, prompt=item.prompt, **texts, **judgement, **on_record
            )
            append_record(feedback_file, record)
            summary.judged += 1
        return summary


def words(text: str) -> list[str]:
    """The whitespace-separated pieces of ``text`` that hold a letter or digit (a lone ``"."`` is no word)."""
    return [piece for piece in text.split() if any(c.isalnum() for c in piece)]


def sentence_count(text: str) -> int:
    """How many sentence ends (runs of ``.``, ``!``, ``?`` before a space or the end) ``text`` holds."""
    return len(SENTENCE_END.findall(text))


def is_complete(text: str) -> bool:
    """Whether ``text`` holds a word and ends at the end of a sentence (``.``, ``!`` or ``?``), not mid-clause."""
    return bool(words(text)) and text.rstrip().endswith((".", "!", "?"))


class ShortReviewAnnotator(ScriptedAnnotator):
    """A simulated user who wants short, punchy reviews.

    Label 1: a complete completion (it ends with ``.``, ``!`` or ``?``) of at most ``max_words`` words.
    Compare: a complete completion beats an incomplete one, then one it would label 1 beats one it would
    not, then fewer words win, then fewer characters; equal on all four is a tie (skipped).
    """

    annotator_id = "simulated-short-reviews"

    def __init__(self, max_words: int = 12) -> None:
        if max_words < 1:
            raise ValueError(f"max_words must be at least 1, got {max_words}")
        self.max_words = max_words
        self.preference = f"short, punchy reviews: complete, at most {max_words} words; the shorter the better"

    def accepts(self, prompt: str, completion: str) -> bool:
        return is_complete(completion) and len(words(completion)) <= self.max_words

    def rank(self, prompt: str, completion: str) -> tuple[bool, bool, int, int]:
        return is_complete(completion), self.accepts(prompt, completion), -len(words(completion)), -len(completion)


class LongReviewAnnotator(ScriptedAnnotator):
    """A simulated user who wants long, detailed reviews.

    Label 1: a complete completion of at least ``min_words`` words and ``min_sentences`` sentences.
    Compare: a complete completion beats an incomplete one, then one it would label 1 beats one it would
    not, then more words win, then more characters; equal on all four is a tie (skipped).
    """

    annotator_id = "simulated-long-reviews"

    def __init__(self, min_words: int = 24, min_sentences: int = 2) -> None:
        if min_words < 1 or min_sentences < 1:
            raise ValueError(f"min_words and min_sentences must be at least 1, got {min_words}, {min_sentences}")
        self.min_words = min_words
        self.min_sentences = min_sentences
        self.preference = (
            f"long, detailed reviews: complete, at least {min_words} words in at least {min_sentences} "
            "sentences; the longer the better"
        )

    def accepts(self, prompt: str, completion: str) -> bool:
        return (
            is_complete(completion)
            and len(words(completion)) >= self.min_words
            and sentence_count(completion) >= self.min_sentences
        )

    def rank(self, prompt: str, completion: str) -> tuple[bool, bool, int, int]:
        return is_complete(completion), self.accepts(prompt, completion), len(words(completion)), len(completion)


BUILT_IN: dict[str, Callable[[], Annotator]] = {
    "short-reviews": ShortReviewAnnotator,
    "long-reviews": LongReviewAnnotator,
}
"""The scripted annotators by the names the command lines take (``terminal`` is the person)."""


def load_annotator(spec: str, annotator_id: str = "") -> Annotator:
    """The annotator a command line names.

    - ``terminal``: a person (:class:`TerminalAnnotator`), as ``annotator_id`` (empty: the login name);
    - ``short-reviews``, ``long-reviews``: the simulated users of :data:`BUILT_IN`;
    - ``module:name`` or ``path/to/file.py:name``: a plug-in, an :class:`Annotator` object or a callable
      (a class, a factory) that returns one when called with no arguments. Its module is refused if it
      imports one of :data:`JUDGE_MODULES`.

    ``annotator_id`` names the person only; a program carries its own id.
    """
    if spec == "terminal":
        return TerminalAnnotator(annotator_id)
    if annotator_id:
        raise ValueError(f"an annotator id is for the terminal annotator; {spec!r} carries its own")
    if spec in BUILT_IN:
        return BUILT_IN[spec]()
    location, _, name = spec.rpartition(":")
    if not location or not name:
        raise ValueError(
            f"annotator {spec!r}: expected terminal, {', '.join(BUILT_IN)}, module:name or path/to/file.py:name"
        )
    module = _import_plug_in(location, spec)
    try:
        value = getattr(module, name)
    except AttributeError:
        raise ValueError(f"annotator {spec!r}: {location} has no {name!r}") from None
    # A class passes the protocol's isinstance check too (its attributes are there): call classes and factories.
    annotator = value() if isinstance(value, type) or (callable(value) and not isinstance(value, Annotator)) else value
    if not isinstance(annotator, Annotator) or not isinstance(annotator.annotator_id, str):
        raise TypeError(
            f"annotator {spec!r} is not an Annotator: it needs annotator_id (a string), simulated and "
            "annotate(items, mode, feedback_file, round_number); subclass ScriptedAnnotator"
        )
    if not annotator.annotator_id.strip():
        raise ValueError(f"annotator {spec!r} has an empty annotator_id: every record must say who judged it")
    return annotator


def _import_plug_in(location: str, spec: str) -> Any:
    """The plug-in's module (a ``.py`` file or an importable name), run only once its source passed the check."""
    if location.endswith(".py"):
        path = Path(location)
        if not path.is_file():
            raise FileNotFoundError(f"annotator {spec!r}: {path} does not exist")
        check_no_judge_imports(path)
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_spec.name] = module  # as an import would: dataclasses look their module up there
        module_spec.loader.exec_module(module)
        return module
    module_spec = importlib.util.find_spec(location)
    if module_spec is None:
        raise ImportError(f"annotator {spec!r}: no module named {location!r}")
    if module_spec.origin and module_spec.origin.endswith(".py"):
        check_no_judge_imports(module_spec.origin)
    return importlib.import_module(location)


def check_no_judge_imports(source: str | Path, allow_dynamic_imports: bool = False) -> None:
    """Raise ``ValueError`` if the Python file ``source`` imports one of :data:`JUDGE_MODULES` (or a name in one),
    or, unless ``allow_dynamic_imports`` (this module's own plug-in loader), calls one of :data:`DYNAMIC_IMPORTS`."""
    tree = ast.parse(Path(source).read_text(encoding="utf-8"), filename=str(source))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if called in DYNAMIC_IMPORTS and not allow_dynamic_imports:
                raise ValueError(f"{source}:{node.lineno} calls {called}: an annotator's imports must be plain imports")
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for imported in names:
            if any(imported == judge or imported.startswith(judge + ".") for judge in JUDGE_MODULES):
                raise ValueError(
                    f"{source}:{node.lineno} imports {imported}: an annotator must not consult a judge or a reward "
                    "model (it would leak into the reward model trained on its records)"
                )
