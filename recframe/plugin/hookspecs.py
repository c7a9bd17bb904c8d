"""Hook specifications: the whole API between recframe and its plugins.

Every hook is prefixed ``recframe_``. A plugin is a module (or object) with
functions decorated by :data:`recframe.plugin.hookimpl`, exposed through the
``recframe`` entry-point group of its distribution::

    [project.entry-points.recframe]
    mymodels = "my_package.plugin"

The docstrings below are the hook reference.
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("recframe")


@hookspec
def recframe_register_datasets(registry: Any) -> None:
    """Register data sources.

    Call ``registry.add(DatasetSpec(name, load, description))`` once per data
    set. ``load(cfg)`` receives the ``dataset`` config node and returns a
    :class:`recframe.data.Dataset`. Loading must fail with a
    :class:`recframe.errors.DataError` that names the file (and line) on bad
    input.
    """


@hookspec
def recframe_register_preprocessors(registry: Any) -> None:
    """Register preprocessing steps.

    Call ``registry.add(PreprocessorSpec(name, build, description))``.
    ``build(cfg)`` receives one entry of the ``preprocess`` list and returns a
    pure function ``Dataset -> Dataset`` (it must not modify its input).
    """


@hookspec
def recframe_register_splitters(registry: Any) -> None:
    """Register splitters.

    Call ``registry.add(SplitterSpec(name, build, description))``.
    ``build(cfg)`` receives the ``split`` config node and returns a function
    ``Dataset -> Split`` whose parts partition the interactions.
    """


@hookspec
def recframe_register_models(registry: Any) -> None:
    """Register models.

    Call ``registry.add(ModelSpec(name, build, family, needs, description))``.
    ``build(info, cfg)`` receives the :class:`recframe.data.DataInfo` of the
    encoded data and the ``model`` config node and returns a
    :class:`recframe.models.RecModel`.
    """


@hookspec
def recframe_register_metrics(registry: Any) -> None:
    """Register ranking metrics.

    Call ``registry.add(MetricSpec(name, fn, description, higher_is_better,
    kind, needs))``. A per-user metric (``kind="per_user"``, the default):
    ``fn(inp, k)`` gets a :class:`recframe.eval.MetricInput` and the cut-off
    ``k`` and returns a float tensor with one value per user of the batch. A
    global metric (``kind="global"``): ``fn(inp, k)`` gets a
    :class:`recframe.eval.GlobalInput` (top-k recommendation counts per item
    over all evaluated users) and returns a scalar. ``needs`` asks for
    optional inputs: ``scores``, ``item_features``, ``item_popularity``.
    """


@hookspec
def recframe_register_llm_backends(registry: Any) -> None:
    """Register language-model backends for the LLM re-ranking stage.

    Call ``registry.add(LLMBackendSpec(name, build, description))``; a run picks
    one with ``rerank=llm rerank.backend=NAME``. ``build(cfg)`` receives the
    ``rerank`` config node and returns an :class:`recframe.rerank.LLMBackend`
    (subclass it: pointwise backends implement ``score``, listwise ones
    ``generate``). A backend that needs an optional package raises
    :class:`recframe.errors.ConfigError` naming the extra to install.
    """


@hookspec
def recframe_config_searchpath() -> str | list[str] | None:
    """Return Hydra search-path entries holding this plugin's config groups.

    For example ``"pkg://my_package.conf"`` (a package with ``model/mine.yaml``)
    or ``"file:///abs/path"``. Entries are appended after recframe's own
    ``conf/``, so a plugin can add files but never shadow core ones.
    """
