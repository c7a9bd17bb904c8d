"""Entry point of recframe-example: the hook implementations recframe calls.

``pyproject.toml`` exposes this module in the ``recframe`` entry-point group::

    [project.entry-points.recframe]
    example = "recframe_example.plugin"

Registering is cheap: a spec holds a name and a ``lazy("module:name")`` reference
to its builder, so loading this plugin (at every ``recframe`` start) imports
neither torch nor pandas; the module is imported when a run builds the model,
metric or step.
"""

from __future__ import annotations

from typing import Any

from recframe.api import MetricSpec, ModelSpec, PreprocessorSpec, hookimpl, lazy


@hookimpl
def recframe_register_models(registry: Any) -> None:
    """Register the ``example`` model (config: ``conf/model/example.yaml``)."""
    registry.add(ModelSpec(
        name="example", build=lazy("recframe_example.model:build_example"), family="cf",
        description="Item-item co-occurrence with asymmetric cosine (Aiolli, RecSys 2013), "
                    "closed form",
    ))


@hookimpl
def recframe_register_metrics(registry: Any) -> None:
    """Register ``rprecision`` (use it with ``metrics.names=[ndcg,rprecision]``)."""
    registry.add(MetricSpec(
        name="rprecision", fn=lazy("recframe_example.metric:rprecision"),
        description="Truncated R-precision@K: hits in the top min(|R_u|, K) / min(|R_u|, K).",
    ))


@hookimpl
def recframe_register_preprocessors(registry: Any) -> None:
    """Register ``cap_user_history`` (an entry of the ``preprocess`` list)."""
    registry.add(PreprocessorSpec(
        name="cap_user_history", build=lazy("recframe_example.preprocess:build_cap_user_history"),
        description="Keep each user's max_per_user (default 50) most recent interactions.",
    ))


@hookimpl
def recframe_config_searchpath() -> str:
    """Where Hydra finds this plugin's config groups (``model/example.yaml``, ...)."""
    return "pkg://recframe_example.conf"
