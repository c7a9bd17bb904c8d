"""Any OpenAI-style chat endpoint (vLLM, Ollama, llama.cpp's server, hosted models).

``rerank.base_url`` (e.g. ``http://127.0.0.1:8000/v1``) and ``rerank.model`` name
the endpoint and model; the API key is read from the environment variable named
by ``rerank.api_key_env`` (none set: no ``Authorization`` header, as local
servers expect). The key lives only in the request header: it is never part of
the config, the cache key, an error message, a log line or ``results.json``.

Requests use the standard library (``urllib``): a per-request timeout
(``rerank.timeout_s``), and on a connection error, a timeout, HTTP 429 or 5xx,
up to ``rerank.retries`` retries with exponential backoff (``rerank.backoff_s``
times 1, 2, 4, ...). Anything else (401, 404, a body that is not an OpenAI
answer) fails at once with a :class:`recframe.api.BackendError` that says what
the endpoint answered. Listwise only: chat endpoints do not return the
log-probabilities of given continuations.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from typing import Any

from recframe.api import (
    BackendError,
    ConfigError,
    Generation,
    LLMBackend,
    backend_float,
    backend_int,
)

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


class OpenAICompatibleBackend(LLMBackend):
    """See the module docstring."""

    name = "openai_compatible"
    modes = frozenset({"listwise"})

    def __init__(self, base_url: str, model: str, api_key_env: str | None = None,
                 timeout_s: float = 60.0, retries: int = 3, backoff_s: float = 1.0,
                 context_length: int = 8192) -> None:
        if not base_url or not str(base_url).startswith(("http://", "https://")):
            raise ConfigError(
                f"rerank.base_url={base_url!r}: rerank.backend=openai_compatible needs the "
                f"endpoint's URL, e.g. rerank.base_url=http://127.0.0.1:8000/v1")
        if not model:
            raise ConfigError("rerank.model: rerank.backend=openai_compatible needs the model "
                              "name the endpoint serves, e.g. rerank.model=qwen2.5-7b-instruct")
        self.url = str(base_url).rstrip("/") + "/chat/completions"
        self.base_url = str(base_url)
        self.model = str(model)
        self._key = os.environ.get(api_key_env) if api_key_env else None
        self.timeout_s, self.retries, self.backoff_s = timeout_s, retries, backoff_s
        self.context_length = context_length

    @classmethod
    def from_config(cls, cfg: Any) -> OpenAICompatibleBackend:
        return cls(cfg.get("base_url"), cfg.get("model"), cfg.get("api_key_env"),
                   backend_float(cfg, "timeout_s", 60.0),
                   int(backend_int(cfg, "retries", 3, 0) or 0),
                   backend_float(cfg, "backoff_s", 1.0),
                   int(backend_int(cfg, "context_length", None, 1, optional=True) or 8192))

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            request = urllib.request.Request(self.url, data=body, headers=headers,
                                             method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    raw = response.read()
            except urllib.error.HTTPError as exc:
                detail = exc.read()[:300].decode("utf-8", "replace")
                last = f"HTTP {exc.code}: {detail}"
                if exc.code in RETRY_STATUS:
                    continue
                raise BackendError(
                    f"rerank.base_url={self.base_url}: the endpoint answered {last}. Check "
                    f"rerank.model and the key in the variable named by rerank.api_key_env."
                ) from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                reason = getattr(exc, "reason", exc)
                last = f"{type(exc).__name__}: {reason}"
                continue
            try:
                return json.loads(raw)
            except ValueError:
                raise BackendError(
                    f"rerank.base_url={self.base_url}: the answer is not JSON "
                    f"({raw[:120]!r}); is this an OpenAI-compatible endpoint (…/v1)?"
                ) from None
        raise BackendError(
            f"rerank.base_url={self.base_url} unreachable after {self.retries + 1} attempt(s) "
            f"(timeout {self.timeout_s:g} s each; last: {last}). Start the server or fix "
            f"rerank.base_url; raise rerank.timeout_s or rerank.retries for a slow one.")

    def generate(self, system: str, prompt: str, max_new_tokens: int) -> Generation:
        answer = self._post({
            "model": self.model,
            "messages": [{"role": "system", "content": system},
                         {"role": "user", "content": prompt}],
            "max_tokens": max_new_tokens,
            "temperature": 0,
        })
        try:
            text = answer["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise BackendError(
                f"rerank.base_url={self.base_url}: the answer has no "
                f"choices[0].message.content ({str(answer)[:160]}); is this an "
                f"OpenAI-compatible chat endpoint?") from None
        usage = answer.get("usage") or {}
        return Generation(str(text), int(usage.get("prompt_tokens") or 0),
                          int(usage.get("completion_tokens") or 0))
