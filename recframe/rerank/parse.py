"""Read a ranking out of what a language model wrote (listwise mode).

The prompt numbers the candidates ``[1]..[N]`` and asks for an answer such as
``[3] > [1] > [2]``. Models answer in many shapes (``3, 1, 2``, a numbered
list of titles, prose, nothing useful), so parsing is forgiving and says how
much it understood:

1. bracketed identifiers ``[k]`` with ``1 <= k <= N``, in order of appearance;
2. if there are none, bare integers ``1..N`` that are not part of a longer
   number or a year in parentheses;
3. if there are none, candidate titles found in the text, in order of appearance.

Repeats keep their first position. The status is ``full`` (every candidate
named), ``partial`` (some; the stage puts the others after them in the base model's
order) or ``unparsable`` (none; the stage falls back to the base order and
counts it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_BRACKETED = re.compile(r"\[\s*(\d{1,4})\s*\]")
_BARE = re.compile(r"(?<![\d.(])(\d{1,4})(?![\d)])")

FULL, PARTIAL, UNPARSABLE = "full", "partial", "unparsable"


@dataclass(frozen=True)
class ParsedRanking:
    """``named``: positions (0-based, in the shown order) of the candidates the model
    named, best first; ``status``: full/partial/unparsable."""

    named: tuple[int, ...]
    status: str


def _unique(values: Sequence[int], n: int) -> list[int]:
    seen: set[int] = set()
    out = []
    for v in values:
        if 0 <= v < n and v not in seen:
            seen.add(v)
            out.append(v)
    return out


def _titles_in(text: str, titles: Sequence[str]) -> list[int]:
    lowered = text.lower()
    found = []
    for i, title in enumerate(titles):
        t = title.strip().lower()
        if len(t) >= 3:
            pos = lowered.find(t)
            if pos >= 0:
                found.append((pos, i))
    return [i for _, i in sorted(found)]


def parse_ranking(text: str, n: int, titles: Sequence[str] = ()) -> ParsedRanking:
    """The ranking of ``n`` shown candidates that ``text`` states (see module doc)."""
    named = _unique([int(m) - 1 for m in _BRACKETED.findall(text)], n)
    if not named:
        named = _unique([int(m) - 1 for m in _BARE.findall(text)], n)
    if not named and titles:
        named = _unique(_titles_in(text, titles), n)
    if not named:
        return ParsedRanking((), UNPARSABLE)
    return ParsedRanking(tuple(named), FULL if len(named) == n else PARTIAL)
