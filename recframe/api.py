"""The public API for plugin authors: import everything a plugin needs from here.

Names are resolved lazily (PEP 562 module ``__getattr__``): ``import recframe.api``
imports neither torch nor Lightning, so loading plugins (``recframe plugins``,
``recframe run --help``) stays fast; ``from recframe.api import RecModel`` imports
``recframe.models`` (and torch) at that moment. Type checkers and IDEs see the plain
imports under ``TYPE_CHECKING``; ``tests/test_lazy_imports.py`` keeps the two lists equal.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recframe.data import (
        ITEM,
        LABEL,
        RATING,
        TIMESTAMP,
        USER,
        DataInfo,
        Dataset,
        FeatureSpec,
        FieldSpec,
        RecData,
        Split,
        text_encoders,
    )
    from recframe.data.blocks import describe_blocks, feature_blocks
    from recframe.data.fingerprint import (
        FINGERPRINT_KEY,
        combine_digests,
        file_digests,
        fingerprint_files,
        fingerprint_frames,
        fingerprint_params,
        md5_file,
    )
    from recframe.data.item_text import (
        TextSettings,
        item_text_vectors,
        item_texts,
        join_text_columns,
    )
    from recframe.data.ooc import KeptRowKeys, ScanSource, SqlContext, random_keys, sql_double
    from recframe.data.sorting import lexsort_stable, positions_in_groups, stable_argsort
    from recframe.errors import BackendError, ConfigError, DataError, RecframeError
    from recframe.eval import GlobalInput, MetricInput, PointwiseInput
    from recframe.eval.ctr import calibration_bins, reliability_table
    from recframe.models import (
        SEQUENCE_ROWS,
        CTRModel,
        FieldEmbedding,
        FieldLinear,
        FoldInNotSupported,
        RecModel,
        TrainFormat,
        UnknownTrainFormat,
        check_train_format,
        dense_history,
        history_matmul,
        least_squares_fold_in,
    )
    from recframe.models.memory import check_fits_in_memory
    from recframe.models.sequence_settings import (
        AUTO,
        resolve_batch_size,
        resolve_sequence_settings,
    )
    from recframe.models.size import parameter_counts
    from recframe.params import (
        bool_param,
        check_known_keys,
        choice_param,
        columns_param,
        feature_specs,
        field_names_param,
        float_param,
        int_param,
        is_finite_number,
        layers_param,
        read_key,
    )
    from recframe.plugin import (
        DatasetSpec,
        Lazy,
        LLMBackendSpec,
        MetricSpec,
        ModelSpec,
        PreprocessorSpec,
        SplitterSpec,
        hookimpl,
        lazy,
    )
    from recframe.privacy.audit import AuditInput
    from recframe.rerank.backend import Generation, LLMBackend, Scored, ScoreResult
    from recframe.rerank.settings import backend_float, backend_int
    from recframe.results import atomic_write
    from recframe.train.standalone import build_model, fit_model

#: module -> the names it exports through this one (a name may be a submodule)
_SOURCES: dict[str, tuple[str, ...]] = {
    "recframe.data": (
        "ITEM", "LABEL", "RATING", "TIMESTAMP", "USER", "DataInfo", "Dataset", "FeatureSpec",
        "FieldSpec", "RecData", "Split", "text_encoders"
    ),
    "recframe.data.blocks": ("describe_blocks", "feature_blocks"),
    "recframe.data.fingerprint": (
        "FINGERPRINT_KEY", "combine_digests", "file_digests", "fingerprint_files",
        "fingerprint_frames", "fingerprint_params", "md5_file"
    ),
    "recframe.data.item_text": (
        "TextSettings", "item_text_vectors", "item_texts", "join_text_columns"
    ),
    "recframe.data.ooc": ("KeptRowKeys", "ScanSource", "SqlContext", "random_keys",
                          "sql_double"),
    "recframe.data.sorting": ("lexsort_stable", "positions_in_groups", "stable_argsort"),
    "recframe.models.memory": ("check_fits_in_memory",),
    "recframe.errors": ("BackendError", "ConfigError", "DataError", "RecframeError"),
    "recframe.eval": ("GlobalInput", "MetricInput", "PointwiseInput"),
    "recframe.eval.ctr": ("calibration_bins", "reliability_table"),
    "recframe.models": (
        "SEQUENCE_ROWS", "CTRModel", "FieldEmbedding", "FieldLinear", "FoldInNotSupported",
        "RecModel", "TrainFormat", "UnknownTrainFormat", "check_train_format",
        "dense_history", "history_matmul", "least_squares_fold_in"
    ),
    "recframe.models.size": ("parameter_counts",),
    "recframe.models.sequence_settings": (
        "AUTO", "resolve_batch_size", "resolve_sequence_settings"
    ),
    "recframe.params": (
        "bool_param", "check_known_keys", "choice_param", "columns_param", "feature_specs",
        "field_names_param", "float_param", "int_param", "is_finite_number", "layers_param",
        "read_key"
    ),
    "recframe.plugin": (
        "DatasetSpec", "LLMBackendSpec", "MetricSpec", "ModelSpec", "PreprocessorSpec",
        "SplitterSpec", "hookimpl", "Lazy", "lazy"
    ),
    "recframe.rerank.backend": ("Generation", "LLMBackend", "Scored", "ScoreResult"),
    "recframe.rerank.settings": ("backend_float", "backend_int"),
    "recframe.privacy.audit": ("AuditInput",),
    "recframe.results": ("atomic_write",),
    "recframe.train.standalone": ("build_model", "fit_model"),
}
_EXPORTS = {name: module for module, names in _SOURCES.items() for name in names}


def __getattr__(name: str) -> Any:
    """Import the module behind ``name`` on first use and cache the value here."""
    try:
        module_name = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    try:
        value = getattr(module, name)
    except AttributeError:  # a submodule that its package does not import itself
        value = importlib.import_module(f"{module_name}.{name}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


__all__ = [
    "ITEM", "LABEL", "RATING", "TIMESTAMP", "USER",
    "ConfigError", "DataError", "DataInfo", "Dataset", "DatasetSpec", "FeatureSpec", "FieldSpec",
    "GlobalInput", "MetricInput", "PointwiseInput", "calibration_bins", "reliability_table",
    "MetricSpec", "ModelSpec",
    "PreprocessorSpec", "RecData",
    "RecModel", "RecframeError", "Split", "SplitterSpec", "TrainFormat", "build_model",
    "FoldInNotSupported", "dense_history", "history_matmul", "fit_model", "hookimpl",
    "least_squares_fold_in",
    "bool_param", "choice_param", "columns_param", "feature_specs", "field_names_param",
    "float_param", "int_param",
    "layers_param", "lexsort_stable", "positions_in_groups", "stable_argsort",
    "check_known_keys", "read_key",
    "is_finite_number", "SEQUENCE_ROWS", "CTRModel", "FieldEmbedding", "FieldLinear",
    "describe_blocks", "feature_blocks",
    "AUTO", "resolve_sequence_settings", "resolve_batch_size",
    "text_encoders", "TextSettings", "item_text_vectors", "item_texts", "join_text_columns",
    "BackendError", "Generation", "LLMBackend", "LLMBackendSpec", "Scored", "ScoreResult",
    "backend_float", "backend_int", "atomic_write",
    "AuditInput",
    "Lazy", "lazy", "parameter_counts",
    "UnknownTrainFormat", "check_train_format",
    "KeptRowKeys", "ScanSource", "SqlContext", "random_keys", "sql_double",
    "check_fits_in_memory",
    "FINGERPRINT_KEY", "combine_digests", "file_digests", "fingerprint_files",
    "fingerprint_frames", "fingerprint_params", "md5_file",
]
