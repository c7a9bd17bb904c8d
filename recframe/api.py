"""The public API for plugin authors: import everything a plugin needs from here."""

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
    LLMBackendSpec,
    MetricSpec,
    ModelSpec,
    PreprocessorSpec,
    SplitterSpec,
    hookimpl,
)
from recframe.rerank.backend import Generation, LLMBackend, Scored, ScoreResult
from recframe.rerank.settings import backend_float, backend_int
from recframe.train.standalone import build_model, fit_model

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
    "backend_float", "backend_int", "parameter_counts",
    "UnknownTrainFormat", "check_train_format",
    "FINGERPRINT_KEY", "combine_digests", "file_digests", "fingerprint_files",
    "fingerprint_frames", "fingerprint_params", "md5_file",
]
