"""Prompts of the re-ranking stage, fitted into the model's context.

Every prompt starts with the user's recent history (titles, oldest first) and
names the candidates by title. Three shapes:

- pointwise ``yes_no``: prefix = system + history; one continuation per candidate
  asks whether the user would like it, and the score is
  ``log P(Yes) - log P(No)`` of the answer's first token;
- pointwise ``title``: prefix = system + history + "the next item is"; the score
  of a candidate is the mean log-probability per token of its title;
- listwise: one prompt lists the candidates as ``[1]..[N]`` (in a shuffled
  order, see :mod:`recframe.rerank.bootstrap`) and asks for an ordering.

A prompt longer than the model's context (less room for the answer) loses its
oldest history items first; :class:`Fitted` says how many were dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from recframe.errors import ConfigError

SYSTEM = ("You are a recommender system. From the items a user interacted with, "
          "you judge which items the user will want next.")


@dataclass(frozen=True)
class Fitted:
    """A prompt (or pointwise prefix) that fits, and how many history items it lost."""

    text: str
    history_used: int
    history_dropped: int


def history_text(titles: Sequence[str]) -> str:
    lines = "\n".join(f"{i + 1}. {t}" for i, t in enumerate(titles))
    return f"The user recently interacted with these items, oldest first:\n{lines}\n"


def yes_question(title: str) -> str:
    return f"\nWould the user like this item next: {title}? Answer Yes or No."


TITLE_REQUEST = "\nName the one item the user will want next."


def listwise_request(titles: Sequence[str]) -> str:
    lines = "\n".join(f"[{i + 1}] {t}" for i, t in enumerate(titles))
    example = " > ".join(f"[{i}]" for i in (3, 1, 2)[: max(1, min(3, len(titles)))])
    return (f"\nCandidates:\n{lines}\n\nRank all {len(titles)} candidates from most to least "
            f"likely to be wanted next. Answer only with their identifiers, best first, "
            f"like {example}.")


def fit_history(history: Sequence[str], build: Callable[[Sequence[str]], str],
                count: Callable[[str], int], budget: int, where: str) -> Fitted:
    """The longest recent suffix of ``history`` whose prompt ``build(h)`` takes at most
    ``budget`` tokens (``count``). Fails with the key to change when even no history
    does not fit."""
    n = len(history)
    text = build(history)
    if count(text) <= budget:
        return Fitted(text, n, 0)
    lo, hi = 0, n - 1  # largest kept count in [lo, hi] that fits (n does not)
    if count(build(history[n:])) > budget:
        raise ConfigError(
            f"{where}: the prompt does not fit the model's context ({budget} tokens for "
            f"the prompt) even without any history; lower rerank.top_n or "
            f"rerank.max_new_tokens, or use a model with a longer context "
            f"(rerank.context_length).")
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(build(history[n - mid:])) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return Fitted(build(history[n - lo:]), lo, n - lo)
