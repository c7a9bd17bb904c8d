"""Entry point of the generative-retrieval plugin: ``tiger``."""

from __future__ import annotations

from typing import Any

from recframe.api import DataInfo, ModelSpec, hookimpl


def _build_tiger(info: DataInfo, cfg: Any) -> Any:
    from recframe_generative.build import build_tiger

    return build_tiger(info, cfg)


@hookimpl
def recframe_register_models(registry) -> None:
    registry.add(ModelSpec(
        name="tiger", build=_build_tiger, family="generative", needs=frozenset({"timestamps"}),
        description="TIGER, generative retrieval: RQ-VAE semantic IDs of item text (or SVD "
                    "embeddings), an encoder-decoder Transformer and constrained beam search "
                    "(Rajput et al., NeurIPS 2023)",
    ))
