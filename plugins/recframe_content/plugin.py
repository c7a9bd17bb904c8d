"""Entry point of the content-based plugin: registers ``content``."""

from __future__ import annotations

from recframe.api import ModelSpec, hookimpl, lazy


@hookimpl
def recframe_register_models(registry) -> None:
    registry.add(ModelSpec(
        name="content", build=lazy("recframe_content.content:build_content"), family="content",
        needs=frozenset({"item_features", "fields"}),
        description="Content-based: cosine of a (time-decayed) mean profile of consumed items' "
                    "feature vectors (genre flags, categories, TF-IDF, MiniLM text embeddings) "
                    "to each item; ranks cold items (Lops et al., RecSys Handbook 2011)",
    ))
