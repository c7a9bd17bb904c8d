"""Field layers of feature-aware (click) models: one vector, or one weight, per field.

:class:`FieldEmbedding` turns a batch of encoded fields (``batch["fields"]``,
see :mod:`recframe.data.fields` for the encodings) into a ``[B, F, dim]``
tensor, one vector per batched non-sequence field, and looks up sequence
fields in the table of the field they ``share`` (DIN's shared item table).
:class:`FieldLinear` is the first-order term ``b + sum_f w_f(x_f)`` of
logistic regression, FM and DeepFM.

All categorical and multi-valued fields live in ONE embedding table: field
``f``'s code ``c >= 1`` is row ``base_f + c``, and every padding code ``0`` is
row ``0``, a zero row that never trains (``padding_idx``). One lookup then
embeds every categorical field of a batch, and one more every multi-valued
field (their codes side by side, pooled per field with a ``[L, F]`` segment
matrix), instead of one kernel per field.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

from recframe.data.fields import FieldSpec
from recframe.errors import ConfigError, DataError

#: kinds that become one vector per row in ``FieldEmbedding.forward``
VECTOR_KINDS: tuple[str, ...] = ("categorical", "multi_categorical", "numeric", "dense")
#: the default initial std of every embedding: FuxiCTR's ``FeatureEmbedding`` default
#: (``embedding_initializer="partial(nn.init.normal_, std=1e-4)"``, fuxictr 2.3.10,
#: fuxictr/pytorch/layers/embeddings/feature_embedding.py) and DeepCTR-Torch's
#: ``init_std=0.0001``
INIT_STD = 1e-4


def select_fields(fields: Iterable[FieldSpec], include: Iterable[str] | None = None,
                  exclude: Iterable[str] = (), keys: tuple[str, str] = (
                      "model.fields", "model.exclude_fields")) -> tuple[FieldSpec, ...]:
    """The batched fields of ``fields`` (text dropped) named by ``include`` (``None``:
    all) minus ``exclude``, in their original order. An unknown name is a
    :class:`ConfigError` naming the config key it came from (``keys``: the include and
    exclude keys) and the fields the data has."""
    batched = [f for f in fields if f.is_batched]
    names = [f.name for f in batched]
    include = None if include is None else list(include)
    exclude = list(exclude)
    for key, listed in zip(keys, (include or [], exclude), strict=True):
        unknown = [n for n in listed if n not in names]
        if unknown:
            raise ConfigError(
                f"{key}: unknown field(s) {unknown}; the data's batched fields are "
                f"{names or '(none)'}. Declare fields with dataset.fields or fix the names.")
    keep = set(names if include is None else include) - set(exclude)
    return tuple(f for f in batched if f.name in keep)


class FieldEmbedding(nn.Module):
    """One ``dim``-vector per batched non-sequence field: ``[B, F, dim]``.

    Built from ``fields`` (``DataInfo.fields``; text fields are skipped), restricted
    to ``include`` (names; ``None`` = all) minus ``exclude``. The output order is
    :attr:`field_names`: the order of ``fields``. Per kind:

    - ``categorical`` (``int64 [B]``): the field's embedding of the code; padding
      code ``0`` gives the zero vector.
    - ``multi_categorical`` (``int64 [B, L]``, right-padded with ``0``): the
      ``mean`` or ``sum`` (``FieldSpec.pooling``) of the embeddings of the
      non-zero codes; a row of padding only gives the zero vector.
    - ``numeric`` (``float [B]``): ``x * v_f`` with a learned vector ``v_f``
      (FuxiCTR's ``nn.Linear(1, dim, bias=False)``), so a missing value (``0``
      after normalization) gives the zero vector; with ``numeric_bias=True``,
      ``x * v_f + b_f`` (the value then no longer scales the whole vector).

    :meth:`sequence` embeds a ``sequence`` field's codes with the table of the
    field it ``shares`` (e.g. ``item_id``; the same rows as that field, as DIN
    shares the item embedding between the target and the behaviour sequence;
    Zhou et al., KDD 2018). A shared field left out by ``include``/``exclude``
    still gets its table (it is then not part of ``forward``'s output).

    Initialization: every embedding row and numeric vector ``~ N(0, init_std^2)``,
    default ``1e-4`` (:data:`INIT_STD`, FuxiCTR's and DeepCTR-Torch's default);
    padding rows are zero; numeric biases start at zero.
    """

    def __init__(self, fields: Sequence[FieldSpec], dim: int, *,
                 include: Iterable[str] | None = None, exclude: Iterable[str] = (),
                 init_std: float = INIT_STD, numeric_bias: bool = False) -> None:
        super().__init__()
        if dim < 1:
            raise ConfigError(f"model.embedding_dim must be >= 1, got {dim}")
        everything = {f.name: f for f in fields if f.is_batched}
        kept = select_fields(fields, include, exclude)
        self.dim = dim
        self.specs: tuple[FieldSpec, ...] = tuple(f for f in kept if f.kind in VECTOR_KINDS)
        self.sequence_specs: tuple[FieldSpec, ...] = tuple(
            f for f in kept if f.kind == "sequence")
        cats = [f for f in self.specs if f.kind == "categorical"]
        multis = [f for f in self.specs if f.kind == "multi_categorical"]
        nums = [f for f in self.specs if f.kind == "numeric"]
        denses = [f for f in self.specs if f.kind == "dense"]
        for f in denses:
            if f.max_len < 1:
                raise DataError(f"field {f.name!r} (dense) has max_len {f.max_len}; a dense "
                                f"field's max_len is its vector length and must be >= 1")
        for f in (*cats, *multis):
            if f.vocab_size < 2:
                raise DataError(f"field {f.name!r} ({f.kind}) has vocab_size {f.vocab_size}; "
                                f"an embedding needs at least the padding and OOV rows (2)")
            if f.kind == "multi_categorical" and f.max_len < 1:
                raise DataError(f"field {f.name!r} (multi_categorical) has max_len "
                                f"{f.max_len}; it must be >= 1")
            if f.pooling not in ("mean", "sum"):
                raise DataError(f"field {f.name!r}: pooling {f.pooling!r} is not mean or sum")
        # one table: row 0 = padding of every field; field f's code c >= 1 -> base_f + c
        self._base: dict[str, int] = {}
        rows = 1
        tables = [*cats, *multis]
        for s in self.sequence_specs:
            owner = everything.get(s.shares) if s.shares else None
            if s.shares and owner is None:
                raise DataError(f"sequence field {s.name!r} shares {s.shares!r}, which is not "
                                f"a batched field of the data")
            table = owner if owner is not None else s
            if table.vocab_size < 2:
                raise DataError(f"sequence field {s.name!r}: the table it uses "
                                f"({table.name!r}) has vocab_size {table.vocab_size}")
            if table not in tables:
                tables.append(table)
        for f in tables:
            self._base[f.name] = rows - 1
            rows += f.vocab_size - 1
        self.embedding = nn.Embedding(rows, dim, padding_idx=0)
        nn.init.normal_(self.embedding.weight, std=init_std)
        with torch.no_grad():
            self.embedding.weight[0].zero_()
        self._cat_names = [f.name for f in cats]
        self._multi_names = [f.name for f in multis]
        self._num_names = [f.name for f in nums]
        self._dense_names = [f.name for f in denses]
        self.register_buffer("cat_base", torch.tensor(
            [self._base[f.name] for f in cats], dtype=torch.long), persistent=False)
        lengths = [f.max_len for f in multis]
        self.register_buffer("multi_base", torch.tensor(
            [self._base[f.name] for f, n in zip(multis, lengths, strict=True)
             for _ in range(n)], dtype=torch.long), persistent=False)
        segment = torch.zeros(sum(lengths), len(multis))
        if multis:
            segment[torch.arange(sum(lengths)), torch.repeat_interleave(
                torch.arange(len(multis)), torch.tensor(lengths))] = 1.0
        self.register_buffer("multi_segment", segment, persistent=False)
        self.register_buffer("multi_mean", torch.tensor(
            [f.pooling == "mean" for f in multis], dtype=torch.bool), persistent=False)
        self.numeric_weight = nn.Parameter(torch.randn(len(nums), dim) * init_std)
        self.numeric_bias = (nn.Parameter(torch.zeros(len(nums), dim))
                             if numeric_bias else None)
        # a parameter, not an nn.Linear: models that re-initialize their Linear layers
        # (glorot_linears) leave the field projections at the embeddings' init
        self.dense_weight = nn.ParameterList(
            nn.Parameter(torch.randn(f.max_len, dim) * init_std) for f in denses)
        # kind-grouped outputs [cats, multis, nums, denses] -> the order of self.specs
        grouped = [*self._cat_names, *self._multi_names, *self._num_names,
                   *self._dense_names]
        self.register_buffer("order", torch.tensor(
            [grouped.index(f.name) for f in self.specs], dtype=torch.long), persistent=False)
        self._in_order = grouped == [f.name for f in self.specs]

    @property
    def num_fields(self) -> int:
        """``F``: the number of vectors :meth:`forward` returns per row."""
        return len(self.specs)

    @property
    def field_names(self) -> tuple[str, ...]:
        """The fields of :meth:`forward`'s output, in order."""
        return tuple(f.name for f in self.specs)

    @property
    def sequence_names(self) -> tuple[str, ...]:
        """The sequence fields :meth:`sequence` embeds."""
        return tuple(f.name for f in self.sequence_specs)

    def _rows(self, name: str, codes: torch.Tensor) -> torch.Tensor:
        return torch.where(codes > 0, codes + self._base[name], 0)

    def _embed(self, rows: torch.Tensor) -> torch.Tensor:
        """``table[rows]`` with row 0 (padding) read as zeros: an ``index_select`` (whose
        backward is one ``index_add``, cheaper on CPU than ``nn.functional.embedding``'s;
        the epochs of ``experiments/bench/fuxictr_compare.py`` time it) and a mask, so
        row 0 never gets a gradient and stays zero as ``padding_idx`` keeps it."""
        weight = self.embedding.weight
        out = weight.index_select(0, rows.reshape(-1)).view(*rows.shape, weight.shape[1])
        return out * (rows > 0).unsqueeze(-1).to(out.dtype)

    @staticmethod
    def _get(fields: dict[str, torch.Tensor], name: str) -> torch.Tensor:
        try:
            return fields[name]
        except KeyError:
            raise DataError(f"the batch has no field {name!r} (it has {sorted(fields)}); "
                            f"every batched field must be in batch['fields']") from None

    def forward(self, fields: dict[str, torch.Tensor]) -> torch.Tensor:
        """``[B, F, dim]`` in the order of :attr:`field_names`."""
        parts = []
        cat_rows = multi_rows = None
        if self._cat_names:
            codes = torch.stack([self._get(fields, n) for n in self._cat_names], dim=1)
            cat_rows = torch.where(codes > 0, codes + self.cat_base, 0)
        if self._multi_names:
            multi_codes = torch.cat([self._get(fields, n) for n in self._multi_names], dim=1)
            multi_rows = torch.where(multi_codes > 0, multi_codes + self.multi_base, 0)
        # categorical and multi-valued codes in one lookup
        if cat_rows is not None and multi_rows is not None:
            both = self._embed(torch.cat([cat_rows, multi_rows], dim=1))
            cat_emb, multi_emb = both.split([cat_rows.shape[1], multi_rows.shape[1]], dim=1)
        else:
            cat_emb = self._embed(cat_rows) if cat_rows is not None else None
            multi_emb = self._embed(multi_rows) if multi_rows is not None else None
        if cat_emb is not None:
            parts.append(cat_emb)
        if multi_emb is not None:
            valid = (multi_codes > 0).to(self.embedding.weight.dtype)  # [B, sum L]
            emb = multi_emb
            pooled = torch.einsum("bld,lf->bfd", emb, self.multi_segment)  # padding rows are 0
            count = (valid @ self.multi_segment).clamp_min(1.0)  # [B, Fm]
            scale = torch.where(self.multi_mean, count.reciprocal(), torch.ones_like(count))
            parts.append(pooled * scale.unsqueeze(-1))
        if self._num_names:
            values = torch.stack([self._get(fields, n) for n in self._num_names], dim=1)
            vec = values.to(self.numeric_weight.dtype).unsqueeze(-1) * self.numeric_weight
            if self.numeric_bias is not None:
                vec = vec + self.numeric_bias
            parts.append(vec)
        if self._dense_names:
            dtype = self.embedding.weight.dtype
            parts.append(torch.stack([self._get(fields, n).to(dtype) @ w for n, w in zip(
                self._dense_names, self.dense_weight, strict=True)], dim=1))
        if not parts:
            batch = next(iter(fields.values())).shape[0] if fields else 0
            return self.embedding.weight.new_zeros(batch, 0, self.dim)
        out = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        return out if self._in_order else out.index_select(1, self.order)

    def lookup(self, name: str, codes: torch.Tensor) -> torch.Tensor:
        """Embeddings ``[..., dim]`` of codes of the categorical (or multi-valued)
        field ``name`` (any shape; padding ``0`` gives zeros), e.g. the target item."""
        if name not in self._base:
            raise KeyError(f"field {name!r} has no embedding table here "
                           f"(tables: {sorted(self._base)})")
        return self._embed(self._rows(name, codes))

    def sequence(self, name: str, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(emb [B, L, dim], mask [B, L] bool)`` of the sequence field ``name``, embedded
        with the table of the field it ``shares``; ``mask`` is ``codes != 0`` (padding
        positions embed to zero vectors)."""
        spec = next((s for s in self.sequence_specs if s.name == name), None)
        if spec is None:
            raise KeyError(f"{name!r} is not a sequence field of this layer "
                           f"(sequence fields: {list(self.sequence_names)})")
        table = spec.shares if spec.shares in self._base else spec.name
        return self._embed(self._rows(table, codes)), codes > 0


class FieldLinear(nn.Module):
    """The first-order term ``b + sum_f w_f(x_f)``: ``[B]``.

    ``w_f`` is a learned scalar per code of a categorical field (padding ``0``
    weighs 0), pooled by ``sum`` or ``mean`` over the non-zero codes of a
    multi-valued field (as the field's ``pooling`` says), and ``x * w_f`` for a
    numeric field; plus a learned bias ``b`` (initially 0). The weights are a
    one-dimensional :class:`FieldEmbedding` (the "quick one-hot" of FuxiCTR's
    ``LogisticRegression`` block), initialized ``N(0, init_std^2)``. Sequence
    fields are not used.
    """

    def __init__(self, fields: Sequence[FieldSpec], *, include: Iterable[str] | None = None,
                 exclude: Iterable[str] = (), init_std: float = INIT_STD) -> None:
        super().__init__()
        kept = select_fields(fields, include, exclude)
        self.weights = FieldEmbedding([f for f in kept if f.kind in VECTOR_KINDS], 1,
                                      init_std=init_std)
        self.bias = nn.Parameter(torch.zeros(()))

    @property
    def field_names(self) -> tuple[str, ...]:
        return self.weights.field_names

    def forward(self, fields: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.weights(fields).sum(dim=(1, 2)) + self.bias
