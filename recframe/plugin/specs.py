"""Frozen specs that plugins register: a name, a builder and a description.

A spec is cheap to create: registering it must not import heavy modules or
touch data; the ``build``/``load`` callables do the work when a run asks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DatasetSpec:
    """A data source. ``load(cfg)`` returns a :class:`recframe.data.Dataset`."""

    name: str
    load: Callable[[Any], Any]
    description: str = ""
    #: optional out-of-core form: ``scan(cfg)`` returns a
    #: :class:`recframe.data.ooc.ScanSource` (files the engine reads lazily) or ``None``
    #: when this config cannot be scanned (the engine then loads with ``load``)
    scan: Callable[[Any], Any] | None = None


@dataclass(frozen=True)
class PreprocessorSpec:
    """``build(cfg)`` returns a pure callable ``Dataset -> Dataset``.

    ``build_sql(cfg)`` (optional) returns the same step for the out-of-core engine
    (``data.engine=duckdb``): ``step(ctx, relation) -> relation``, see
    :class:`recframe.data.ooc.SqlContext`, or None when these parameters have no
    out-of-core form (``auto`` then stays in memory). Steps without it run only in memory.
    Under ``data.engine=ray`` the form runs on user-range partitions and must say so:
    ``step.partition_local = True`` when it reads the rows of one user at a time (E932
    otherwise; docs/scaling.md).
    """

    name: str
    build: Callable[[Any], Callable[[Any], Any]]
    description: str = ""
    build_sql: Callable[[Any], Callable[[Any, str], str] | None] | None = None


@dataclass(frozen=True)
class SplitterSpec:
    """``build(cfg)`` returns a callable ``Dataset -> Split``.

    ``build_sql(cfg)`` (optional) returns the out-of-core form: ``split(ctx, relation)
    -> relation`` adding a ``_part`` column (0 train, 1 valid, 2 test), or None when
    these parameters have no out-of-core form.
    ``split.partition_local = True`` lets ``data.engine=ray`` run it on user-range
    partitions; ``split.partition_keyed = True`` too when it is per user but for
    random keys it takes from ``ctx.kept_row_keys`` (E932 otherwise).
    """

    name: str
    build: Callable[[Any], Callable[[Any], Any]]
    description: str = ""
    build_sql: Callable[[Any], Callable[[Any, str], str] | None] | None = None


@dataclass(frozen=True)
class ModelSpec:
    """``build(info, cfg)`` returns a :class:`recframe.models.RecModel`.

    ``family`` is one of ``cf, mlp, rnn, transformer, content, hybrid`` (free
    text is allowed); ``needs`` names what the model requires of the data
    (``timestamps``, ``item_features``, ``user_features``).
    """

    name: str
    build: Callable[[Any, Any], Any]
    family: str = ""
    needs: frozenset[str] = field(default_factory=frozenset)
    description: str = ""


@dataclass(frozen=True)
class MetricSpec:
    """A ranking metric, per user (default) or global over all recommendation lists.

    ``kind="per_user"``: ``fn(inp, k)`` gets a :class:`recframe.eval.MetricInput`
    for one batch of users and a cut-off ``k`` and returns one value per user
    (shape ``[B]``); the reported metric is the mean over evaluated users.

    ``kind="global"``: ``fn(state, k)`` gets a :class:`recframe.eval.GlobalInput`
    (how often each item was recommended in the top ``k`` of all evaluated
    users, item popularity, the number of users) and returns a scalar tensor.
    Used for catalogue-level measures such as coverage and Gini.

    ``kind="pointwise"``: the metric exists only under the CTR protocol (its
    ``pointwise`` form below); ``fn`` is never called, and naming it when ranking
    all items is a configuration error.

    ``kind="audit"``: a privacy audit computed once after the test, not per batch:
    ``fn(inp, 0)`` gets a :class:`recframe.api.AuditInput` (one attack statistic per
    member and per held-out non-member user; needs ``privacy.audit_users > 0``) and
    returns ``{"value": float, "ci95": [low, high], ...}``; the value is written to
    ``metrics.audit`` in ``results.json`` (e.g. ``mia_auc``, docs/privacy.md).

    ``needs`` lists optional inputs the metric requires: ``"scores"`` (the
    masked ``[B, n_items]`` score matrix and dense ground truth),
    ``"item_features"`` (row-normalized item feature vectors) or
    ``"item_popularity"``.

    ``configure`` (optional) makes the metric take parameters from config; the entry
    ``{name: NAME, label: LABEL, **params}`` of ``metrics.names`` then reports
    ``LABEL@K`` with ``fn = configure(params, where)``.
    """

    name: str
    fn: Callable[[Any, int], Any]
    description: str = ""
    higher_is_better: bool = True
    kind: str = "per_user"
    needs: frozenset[str] = field(default_factory=frozenset)
    #: the metric under the CTR protocol (``evaluation=ctr``), or None where it has no
    #: pointwise form: ``pointwise(inp)`` gets a :class:`recframe.eval.PointwiseInput`
    #: (every labeled row of the part) and returns ``(value, per_user)``: a 0-d float
    #: tensor, and ``[U]`` float64 values for ``inp.user_index`` (``NaN`` where the
    #: metric is undefined for a user, e.g. AUC of a user with one class) or None
    #: when the metric has no per-user form. Its key is the bare name (``val/auc``).
    pointwise: Callable[[Any], Any] | None = None
    #: a metric that takes parameters from config (``metrics.names: [{name: recall,
    #: denominator: min_k}]``, see :mod:`recframe.eval.metric_config`):
    #: ``configure(params, where)`` gets the entry's parameters (a dict, without ``name``
    #: and ``label``) and the entry's config path for messages, validates them (raise a
    #: :class:`recframe.errors.ConfigError`, e.g. with ``recframe.api.check_known_keys``)
    #: and returns the ``fn(inp, k)`` they define. ``None``: the metric takes none.
    configure: Callable[[dict[str, Any], str], Callable[[Any, int], Any]] | None = None


@dataclass(frozen=True)
class LLMBackendSpec:
    """A language-model backend for the LLM re-ranking stage (``rerank=llm``).

    ``build(cfg)`` receives the ``rerank`` config node and returns an object with
    the :class:`recframe.rerank.LLMBackend` interface: ``name``, ``model``,
    ``context_length``, ``modes`` (the scoring modes it supports: ``pointwise``,
    ``listwise``), ``count_tokens(text)``, ``score(prefix, continuations,
    targets)`` (pointwise) and ``generate(prompt, max_new_tokens)`` (listwise).
    Loading a model happens in ``build``, not when the spec is registered.
    ``check(cfg)``, if given, runs before training and raises a
    :class:`recframe.errors.ConfigError` for what would make ``build`` fail
    (a missing package or setting), so a run does not train first.
    """

    name: str
    build: Callable[[Any], Any]
    description: str = ""
    check: Callable[[Any], None] | None = None
