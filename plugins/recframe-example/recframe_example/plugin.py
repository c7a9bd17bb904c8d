"""Entry point of recframe-example: the hook implementations recframe calls.

``pyproject.toml`` exposes this module in the ``recframe`` entry-point group::

    [project.entry-points.recframe]
    example = "recframe_example.plugin"

Registering is cheap (a spec holds a name and a builder); the work happens
when a run builds the model, metric or step.
"""

from __future__ import annotations

from typing import Any

from recframe.api import MetricSpec, ModelSpec, PreprocessorSpec, hookimpl
from recframe_example.metric import rprecision
from recframe_example.model import build_example
from recframe_example.preprocess import build_cap_user_history


@hookimpl
def recframe_register_models(registry: Any) -> None:
    """Register the ``example`` model (config: ``conf/model/example.yaml``)."""
    registry.add(ModelSpec(
        name="example", build=build_example, family="cf",
        description="Item-item co-occurrence with asymmetric cosine (Aiolli, RecSys 2013), "
                    "closed form",
    ))


@hookimpl
def recframe_register_metrics(registry: Any) -> None:
    """Register ``rprecision`` (use it with ``metrics.names=[ndcg,rprecision]``)."""
    registry.add(MetricSpec(
        name="rprecision", fn=rprecision,
        description="Truncated R-precision@K: hits in the top min(|R_u|, K) / min(|R_u|, K).",
    ))


@hookimpl
def recframe_register_preprocessors(registry: Any) -> None:
    """Register ``cap_user_history`` (an entry of the ``preprocess`` list)."""
    registry.add(PreprocessorSpec(
        name="cap_user_history", build=build_cap_user_history,
        description="Keep each user's max_per_user (default 50) most recent interactions.",
    ))


@hookimpl
def recframe_config_searchpath() -> str:
    """Where Hydra finds this plugin's config groups (``model/example.yaml``, ...)."""
    return "pkg://recframe_example.conf"
