"""The interface every LLM backend implements, and what its calls return.

A backend is built by an :class:`recframe.plugin.specs.LLMBackendSpec` from the
``rerank`` config node. The stage talks to it through two calls:

- pointwise: :meth:`LLMBackend.score` gets one prompt prefix shared by a user's
  candidates (the history) and one continuation per candidate, and returns the
  log-probability of each continuation and, after it, of each target (``Yes`` /
  ``No``). A local model computes the prefix once and reuses its key/value cache
  for every continuation.
- listwise: :meth:`LLMBackend.generate` gets one chat prompt and returns the text
  the model wrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from recframe.errors import ConfigError

MODES: tuple[str, ...] = ("pointwise", "listwise")


@dataclass(frozen=True)
class Scored:
    """One continuation scored after a prefix: the summed log-probability of its
    tokens, their number, and the log-probability of each target's first token
    right after it (``{"Yes": -0.3, "No": -1.5}``)."""

    logprob: float
    n_tokens: int
    targets: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoreResult:
    """What :meth:`LLMBackend.score` returns: one :class:`Scored` per continuation,
    and the tokens read (prefix once plus every continuation)."""

    scored: tuple[Scored, ...]
    tokens_in: int


@dataclass(frozen=True)
class Generation:
    """What :meth:`LLMBackend.generate` returns: the text and the token counts."""

    text: str
    tokens_in: int
    tokens_out: int


class LLMBackend:
    """Base class of LLM backends (subclass it in a plugin).

    ``name`` is the registry name, ``model`` the model identifier recorded in
    ``results.json`` and in the cache key, ``context_length`` the model's context
    in tokens (prompts longer than that lose their oldest history items first),
    ``modes`` the scoring modes implemented. ``load_seconds`` is recorded too.
    """

    name: str = ""
    model: str = ""
    context_length: int = 2048
    modes: frozenset[str] = frozenset(MODES)
    load_seconds: float = 0.0

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` for this model (used to fit prompts in the context)."""
        return max(1, len(text) // 4)

    def chat_prefix(self, system: str, user_start: str) -> str:
        """The raw text a pointwise prompt starts with: the chat template applied to
        a system message and the beginning of the user's message (the history).
        Continuations finish the user's message and open the assistant's turn
        (:meth:`chat_suffix`). Default: a plain-text layout."""
        return f"{system}\n\n{user_start}"

    def chat_suffix(self) -> str:
        """The raw text that ends the user's message and starts the answer."""
        return "\nAnswer:"

    def score(self, prefix: str, continuations: Sequence[str],
              targets: Sequence[str] = ()) -> ScoreResult:
        """Log-probabilities of ``continuations`` after ``prefix`` (pointwise mode)."""
        raise ConfigError(
            f"rerank.backend={self.name!r} cannot score candidates pointwise; use "
            f"rerank.mode=listwise")

    def generate(self, system: str, prompt: str, max_new_tokens: int) -> Generation:
        """The model's answer to a chat of ``system`` and user ``prompt`` (listwise)."""
        raise ConfigError(
            f"rerank.backend={self.name!r} cannot generate text; use rerank.mode=pointwise")

    def close(self) -> None:
        """Release the model (called once after the stage)."""
