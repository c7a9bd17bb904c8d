"""A deterministic backend for tests: no model, answers from a rule.

``rerank.fake_rule``: ``even`` prefers candidates whose title ends in an even
number (``item 42``), ``hash`` scores a title by a hash of it, ``base`` gives
every candidate the same score (so the base order stays). Pointwise: the rule's
score is the log-probability of ``Yes`` (``No`` gets its negative) and of the
title. Listwise: it reads the numbered candidates back from the prompt and
answers, per ``rerank.fake_output``, with the full ordering (``ranking``),
text without any identifier (``garbage``), the best half (``partial``) or the
ordering with every identifier repeated (``duplicates``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from recframe.api import ConfigError, Generation, LLMBackend, Scored, ScoreResult

RULES = ("even", "hash", "base")
OUTPUTS = ("ranking", "garbage", "partial", "duplicates")
_CANDIDATE = re.compile(r"^\[(\d+)\] (.*)$", re.M)
_LAST_NUMBER = re.compile(r"(\d+)\D*$")
_QUESTION = re.compile(r"next: (.*)\? Answer Yes or No\.", re.S)


def title_of(continuation: str) -> str:
    """The candidate title inside a pointwise continuation (the question or the title)."""
    m = _QUESTION.search(continuation)
    return m.group(1) if m else continuation.strip()


def rule_score(rule: str, text: str) -> float:
    """The fake preference for a candidate text (higher is better)."""
    if rule == "base":
        return 0.0
    digest = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 2**32
    if rule == "hash":
        return digest
    m = _LAST_NUMBER.search(text)
    even = m is not None and int(m.group(1)) % 2 == 0
    return (1.0 if even else 0.0) + 0.01 * digest


class FakeBackend(LLMBackend):
    """See the module docstring."""

    name = "fake"
    modes = frozenset({"pointwise", "listwise"})

    def __init__(self, rule: str = "even", output: str = "ranking",
                 context_length: int = 4096) -> None:
        if rule not in RULES:
            raise ConfigError(f"rerank.fake_rule={rule!r}: choose one of {list(RULES)}")
        if output not in OUTPUTS:
            raise ConfigError(f"rerank.fake_output={output!r}: choose one of {list(OUTPUTS)}")
        self.rule, self.output = rule, output
        self.model = f"fake-{rule}-{output}"
        self.context_length = context_length
        self.calls = 0

    @classmethod
    def from_config(cls, cfg: Any) -> FakeBackend:
        return cls(str(cfg.get("fake_rule", "even")), str(cfg.get("fake_output", "ranking")),
                   int(cfg.get("context_length") or 4096))

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def score(self, prefix: str, continuations: Sequence[str],
              targets: Sequence[str] = ()) -> ScoreResult:
        self.calls += 1
        scored = []
        for c in continuations:
            s = rule_score(self.rule, title_of(c.replace(self.chat_suffix(), "")))
            lp = {t: (s if t == "Yes" else -s) for t in targets}
            scored.append(Scored(s - 1.0, self.count_tokens(c), lp))
        return ScoreResult(tuple(scored), self.count_tokens(prefix)
                           + sum(self.count_tokens(c) for c in continuations))

    def generate(self, system: str, prompt: str, max_new_tokens: int) -> Generation:
        self.calls += 1
        shown = [(int(k), t) for k, t in _CANDIDATE.findall(prompt)]
        ranked = sorted(shown, key=lambda kt: (-rule_score(self.rule, kt[1]), kt[0]))
        ids = [f"[{k}]" for k, _ in ranked]
        if self.output == "garbage":
            text = "I am sorry, but I cannot help with ranking these items."
        elif self.output == "partial":
            text = " > ".join(ids[: max(1, len(ids) // 2)])
        elif self.output == "duplicates":
            text = " > ".join(i for i in ids for _ in range(2))
        else:
            text = " > ".join(ids)
        return Generation(text, self.count_tokens(system) + self.count_tokens(prompt),
                          self.count_tokens(text))
