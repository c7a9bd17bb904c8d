"""The model contract: a plain ``torch.nn.Module`` with no Lightning code.

A model declares how it trains (``train_format``) and what it needs, then
implements either ``loss(batch)`` (gradient models) or ``fit(data)``
(closed-form models), plus ``score(users, context)`` which returns one score
per item for each user of the batch.
"""

from __future__ import annotations

import warnings
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from recframe.errors import RecframeError

if TYPE_CHECKING:
    from recframe.data.encode import RecData


#: the values of ``RecModel.train_rows`` (how sequence models' histories become rows)
SEQUENCE_ROWS: tuple[str, ...] = ("recent", "windows", "prefixes")


def sequence_rows(model: nn.Module) -> str:
    """The training rows a sequence model asks for (``RecModel.train_rows``); a model
    written against the older boolean attribute ``sliding_windows = True`` gets
    ``windows``, as it did before ``train_rows`` existed."""
    rows = str(getattr(model, "train_rows", "recent"))
    if rows == "recent" and getattr(model, "sliding_windows", False) is True:
        return "windows"
    return rows


class TrainFormat(str, Enum):
    """How the data module feeds a model during training (the keys, dtypes and shapes
    of each format's batches: docs/batch_layouts.md)."""

    PAIRS = "pairs"  # (user, positive item, sampled negative item) triples
    POINTS = "points"  # (user, item, label) with sampled negatives labelled 0
    SEQUENCES = "sequences"  # per-user time-ordered item sequences
    LABELED = "labeled"  # logged rows with their 0/1 label and fields (no sampled negatives)
    MATRIX = "matrix"  # batches of user rows of the binary training matrix (autoencoders)
    FIT = "fit"  # closed form: ``fit(data)`` once, no gradient steps


class UnknownTrainFormat(RecframeError):
    """A model declares a ``train_format`` that is not a :class:`TrainFormat`."""


def check_train_format(value: object, who: str) -> TrainFormat:
    """``value`` as a :class:`TrainFormat` (a member or its string value, e.g.
    ``"matrix"``); anything else raises :class:`UnknownTrainFormat` (E830) naming
    ``who`` (the model class or name) and the formats that exist."""
    if isinstance(value, TrainFormat):
        return value
    try:
        return TrainFormat(value)
    except ValueError:
        known = ", ".join(f"TrainFormat.{f.name} ({f.value!r})" for f in TrainFormat)
        raise UnknownTrainFormat(
            f"{who} declares train_format={value!r}, which is not a train format. Use one of "
            f"{known} from recframe.api; docs/batch_layouts.md shows the batches of each."
        ) from None


def ensure_train_format(model: nn.Module, name: str) -> TrainFormat:
    """Check a built model's ``train_format`` (E830), storing a valid string value
    (``"matrix"``) as its :class:`TrainFormat` member; return it."""
    fmt = check_train_format(getattr(model, "train_format", None), f"model {name!r}")
    if model.train_format is not fmt:  # type: ignore[comparison-overlap]
        model.train_format = fmt
    return fmt


class RecModel(nn.Module):
    """Base class for recommenders.

    Subclasses set ``train_format`` and ``needs`` and implement ``score`` and
    either ``loss`` or ``fit``. Anything that must survive a checkpoint
    (learned weights, fitted matrices) must be a parameter or a registered
    buffer.
    """

    train_format: ClassVar[TrainFormat] = TrainFormat.PAIRS
    needs: ClassVar[frozenset[str]] = frozenset()
    #: negatives sampled per positive for PAIRS/POINTS formats
    num_negatives: int = 1

    #: sequence models: how many recent items ``score`` sees in ``context["seq"]``
    max_seq_len: int = 0
    #: sequence models: the training rows an epoch holds, ``recent`` (each user's most
    #: recent ``max_seq_len + 1`` items), ``windows`` (every ``max_seq_len`` window of a
    #: long history) or ``prefixes`` (one row per target, trained on its last position);
    #: see ``recframe.train.batches.SequenceBatches``
    train_rows: str = "recent"
    #: settings the model chose from the data for ``auto`` config values, as
    #: ``{key: {"value": ..., "why": ...}}``; the runner writes them to ``results.json``
    #: (``data_choices``). See ``recframe.api.resolve_sequence_settings``.
    data_choices: dict[str, Any] | None = None
    #: rows per training step when the model chose it (``batch_size: auto``); ``None``
    #: = ``model.batch_size`` as configured
    train_batch_size: int | None = None
    #: True when ``score`` uses only the context (history), not learned per-user
    #: state: such a model recommends for new users from their history as is.
    scores_from_history: ClassVar[bool] = False
    #: True when ``score`` ranks items that have no train interaction by something the
    #: model knows about them (item features, text), not by an untrained id embedding.
    #: Under a cold-item split (docs/cold_start.md) a model without it gets warm metrics
    #: only; its cold (and overall) metrics are recorded as not applicable. A class
    #: default: a model whose config makes it able sets ``self.scores_cold_items = True``.
    scores_cold_items: bool = False
    #: the same for users with no train interaction at all (no history): True when
    #: ``score`` ranks for them from user features, or gives everyone the same list.
    scores_cold_users: bool = False
    #: names of parameters whose row ``u`` is trained from user ``u``'s examples alone
    #: (a user embedding table): ``privacy.user_state=local`` keeps them out of
    #: DP-SGD's clipping and noise (joint differential privacy, docs/privacy.md)
    per_user_parameters: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A class that declares an unknown ``train_format`` fails when it is defined,
        i.e. when its plugin module is imported to register it (E830)."""
        super().__init_subclass__(**kwargs)
        if "train_format" in cls.__dict__:
            cls.train_format = check_train_format(
                cls.__dict__["train_format"], f"model class {cls.__name__}")

    def prepare(self, data: RecData) -> None:
        """Called once with the encoded data before training (and before scoring a
        model restored from a checkpoint). Derive data-dependent tensors here
        (feature matrices, normalized graphs) as non-persistent buffers."""

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not train by gradient")

    def fit(self, data: RecData) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no closed-form fit")

    def predict(self, batch: dict[str, Any]) -> torch.Tensor:
        """Click logits ``[B]`` of labeled rows (the CTR protocol's batches: ``label``,
        ``users``, ``items`` and ``fields``). Click models (``recframe.api.CTRModel``)
        implement it; ranking-only models do not, and the CTR protocol says so."""
        raise NotImplementedError(f"{type(self).__name__} does not predict labeled rows")

    def score(self, users: torch.Tensor, context: dict[str, torch.Tensor]) -> torch.Tensor:
        """Scores of all items for ``users``: a float tensor ``[len(users), n_items]``.

        ``context`` holds the evaluation batch: ``seen_rows``/``seen_cols``
        (coordinates of the batch's already-seen items, rows local to the
        batch) and, for sequence models, ``seq`` (left-padded recent items).
        """
        raise NotImplementedError


    def run_record(self) -> dict[str, Any] | None:
        """Facts about the run that only the model knows (e.g. codebook usage of
        semantic IDs, how many items a beam search produced), as JSON-able values;
        the runner writes them to ``results.json`` under ``model_record`` after the
        test. ``None`` (the default): nothing to add."""
        return None

    def item_annotations(self, items: Any) -> dict[str, Any]:
        """Extra per-item columns for ``recframe recommend``: ``{column: values}`` with
        one value per entry of the item-index array ``items`` (same shape), e.g. the
        semantic ID a generative model decoded. Empty (the default): none."""
        return {}

    def score_new_users(self, context: dict[str, torch.Tensor]) -> torch.Tensor:
        """Fold-in: scores for users unknown at training time, from their history alone.

        ``context`` is an evaluation batch whose ``users`` are placeholders (-1)
        and whose ``seen_*``/``seq`` hold the new users' items. Models whose
        ``score`` reads only the context set ``scores_from_history = True``;
        matrix-factorization models override this with a least-squares fold-in;
        the others cannot recommend for new users.
        """
        if self.scores_from_history:
            return self.score(context["users"], context)
        raise FoldInNotSupported(
            f"model {type(self).__name__} cannot recommend for a new user: it has no fold-in "
            f"(it needs learned per-user state). Models that can: itemknn, ease, content, "
            f"sequence models, matrix factorization (bpr, ials) by least squares, and "
            f"click models (a new user as an unknown one)."
        )


class FoldInNotSupported(RecframeError):
    """The model cannot score users it was not trained on."""


def least_squares_fold_in(item_factors: torch.Tensor, history: torch.Tensor,
                          reg: float = 0.1) -> torch.Tensor:
    """User vectors ``p`` with ``q_i . p ~ 1`` on the user's items, by ridge regression.

    Minimizes ``sum_{i in history} (1 - q_i . p)^2 + reg ||p||^2``: ``item_factors``
    ``Q`` is ``[n_items, d]``, ``history`` ``h`` is ``[B, n_items]`` 0/1, and the
    ``d x d`` normal equations ``(Q^T diag(h) Q + reg I) p = Q^T h`` are solved in
    one batched call (the user step of ALS; Hu, Koren & Volinsky, ICDM 2008, with
    unit confidence on the history and none elsewhere).
    """
    q = item_factors.float()
    h = history.float()
    gram = torch.einsum("bi,id,ie->bde", h, q, q)
    gram = gram + reg * torch.eye(q.shape[1], device=q.device)
    rhs = h @ q
    return torch.linalg.solve(gram, rhs.unsqueeze(-1)).squeeze(-1)


#: below this share of seen cells, :func:`history_matmul` multiplies a sparse (CSR)
#: history: on the 2-core CPU (float32, 512 users, one thread), sparse beat dense at 3.6%
#: density (1,682 items) and lost at 12% (dense BLAS wins on dense rows);
#: ``python experiments/bench/history_product.py`` measures it
SPARSE_HISTORY_DENSITY = 0.05
# torch says CSR support is "beta"; the CSR x dense product used here is stable
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")


def history_matmul(context: dict[str, torch.Tensor], batch_size: int,
                   weights: torch.Tensor, values: torch.Tensor | None = None) -> torch.Tensor:
    """``dense_history(context) @ weights`` (``[batch, n_items] @ [n_items, d]``) for the
    batch's seen items, as a sparse product when the history is sparse. ``values``
    (``[nnz]``, one per ``seen_rows``/``seen_cols`` entry, no gradient) replaces the 1s
    of the history, e.g. a row-normalized, dropped-out input (Mult-VAE's encoder);
    gradients flow to ``weights``.

    Short histories over a large catalogue (e.g. 9 of 23,715 items) make the dense
    product almost all zeros: on CPU the CSR product then costs ``nnz * d`` instead of
    ``batch * n_items * d`` (tens of times faster at Amazon Games' size, see
    ``experiments/bench/history_product.py``). Same values up to
    float rounding.
    """
    rows, cols = context["seen_rows"], context["seen_cols"]
    n_items = weights.shape[0]
    density = rows.numel() / max(batch_size * n_items, 1)
    if weights.device.type != "cpu" or density >= SPARSE_HISTORY_DENSITY:
        if values is None:
            return dense_history(context, batch_size, n_items, dtype=weights.dtype) @ weights
        dense = torch.zeros(batch_size, n_items, dtype=weights.dtype, device=weights.device)
        return dense.index_put((rows, cols), values.to(weights.dtype), accumulate=True) @ weights
    if values is None:
        values = torch.ones(rows.numel(), dtype=weights.dtype)
    history = torch.sparse_coo_tensor(torch.stack([rows, cols]), values, (batch_size, n_items),
                                      check_invariants=False).coalesce().to_sparse_csr()
    return history @ weights


def dense_history(context: dict[str, torch.Tensor], batch_size: int, n_items: int,
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The batch's already-seen items as a dense ``[batch, n_items]`` 0/1 matrix."""
    rows, cols = context["seen_rows"], context["seen_cols"]
    out = torch.zeros(batch_size, n_items, dtype=dtype, device=rows.device)
    out[rows, cols] = 1
    return out
