"""Entry point of the generative-retrieval plugin: ``tiger`` (imports nothing heavy until
a run builds the model)."""

from __future__ import annotations

from recframe.api import ModelSpec, hookimpl, lazy


@hookimpl
def recframe_register_models(registry) -> None:
    registry.add(ModelSpec(
        name="tiger",
        build=lazy("recframe_generative.build:build_tiger"),
        family="generative", needs=frozenset({"timestamps"}),
        description="TIGER, generative retrieval: RQ-VAE semantic IDs of item text (or SVD "
                    "embeddings), an encoder-decoder Transformer and constrained beam search "
                    "(Rajput et al., NeurIPS 2023)",
    ))
