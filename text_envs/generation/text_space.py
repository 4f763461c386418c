"""The observation space of text observations: Gymnasium's ``Text`` over every Unicode character.

A decoded context can hold any character: byte-level tokens spell control characters (the embedded
tokenizer's id 190 is ``'\\x00'``), emoji and other characters outside the Basic Multilingual Plane,
and ``U+FFFD`` where bytes do not form UTF-8. Gymnasium's ``Text`` stores its charset as a frozenset, a
tuple, a dict and a sorted string, and deep-copies all four for every env of a batched space: four tables of
1,112,064 entries for the Unicode scalar values, hundreds of megabytes. :class:`UnicodeText` is that
``Text`` without the tables: the characters are the code points in order with the surrogates
(``U+D800``..``U+DFFF``, which no decoded UTF-8 holds) left out, and membership, indexing, sampling and
flattening are arithmetic on code points.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence, Set
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import batch_differing_spaces

_SURROGATES = range(0xD800, 0xE000)
_CHARACTER_COUNT = 0x110000 - len(_SURROGATES)


class UnicodeCharacters(Set, Sequence):
    """Every Unicode scalar value as one-character strings, ordered by code point: a set and a sequence.

    Index ``i`` is ``chr(i)`` below the surrogates and ``chr(i + 2048)`` above them.
    """

    def __contains__(self, char: object) -> bool:
        return isinstance(char, str) and len(char) == 1 and ord(char) not in _SURROGATES

    def __len__(self) -> int:
        return _CHARACTER_COUNT

    def __iter__(self) -> Iterator[str]:
        return map(self.__getitem__, range(_CHARACTER_COUNT))

    def __getitem__(self, index: int) -> str:  # type: ignore[override]  # no slices: Text indexes one at a time
        index = int(index)
        if not 0 <= index < _CHARACTER_COUNT:
            raise IndexError(f"character index {index} outside 0..{_CHARACTER_COUNT - 1}")
        return chr(index if index < _SURROGATES.start else index + len(_SURROGATES))

    def __eq__(self, other: object) -> bool:  # all instances hold the same characters: no walk over them
        return isinstance(other, UnicodeCharacters) or NotImplemented

    __hash__ = object.__hash__

    def index(self, char: str, *_: Any) -> int:  # type: ignore[override]
        if char not in self:
            raise ValueError(f"{char!r} is not a Unicode scalar value")
        code = ord(char)
        return code if code < _SURROGATES.start else code - len(_SURROGATES)


class UnicodeText(spaces.Text):
    """``Text(max_length, min_length=min_length)`` whose charset is every Unicode character but the surrogates.

    Exactly the strings of at most ``max_length`` characters that can be encoded as UTF-8, so every string a
    tokenizer decodes is a member. ``character_set`` and ``character_list`` are one
    :class:`UnicodeCharacters`; ``sample`` draws code points uniformly (or with a ``mask``/``probability``
    over all of them, as ``Text`` does); Gymnasium's ``flatten``, batching and shared memory work unchanged.
    """

    def __init__(self, max_length: int, *, min_length: int = 0, seed: int | np.random.Generator | None = None):
        super().__init__(max_length, min_length=min_length, charset="", seed=seed)
        self._char_set = self._char_list = UnicodeCharacters()  # type: ignore[assignment]
        self._char_index = {}

    def character_index(self, char: str) -> np.int32:
        return np.int32(self._char_list.index(char))

    @property
    def characters(self) -> UnicodeCharacters:  # type: ignore[override]
        """The characters as a sequence, not the ``str`` of ``Text`` (which would hold 1,112,064 of them)."""
        return self._char_list

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        if mask is not None or probability is not None:
            return super().sample(mask=mask, probability=probability)
        length = self.np_random.integers(self.min_length, self.max_length + 1)
        return "".join(map(self._char_list.__getitem__, self.np_random.integers(_CHARACTER_COUNT, size=length)))

    def contains(self, x: Any) -> bool:
        if not isinstance(x, str) or not self.min_length <= len(x) <= self.max_length:
            return False
        try:
            x.encode("utf-8")  # fails exactly on surrogates
        except UnicodeEncodeError:
            return False
        return True

    def __repr__(self) -> str:
        return f"UnicodeText({self.min_length}, {self.max_length})"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, UnicodeText) and (self.min_length, self.max_length) == (
            other.min_length,
            other.max_length,
        )


# Vector envs over differing sub-spaces batch a Text as a Tuple of them; the registry matches types exactly.
batch_differing_spaces.register(UnicodeText)(batch_differing_spaces.dispatch(spaces.Text))
