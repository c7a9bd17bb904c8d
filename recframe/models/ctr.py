"""``CTRModel``: the base of click (CTR) models over typed fields.

A click model maps the fields of one row (user, item and context fields, see
:mod:`recframe.data.fields`) to one logit. Subclasses implement only
:meth:`CTRModel.logits`; the base class trains it and ranks with it:

- **labeled data** (``DataInfo.has_labels``: logged impressions) trains on the
  logged rows and their 0/1 labels (``TrainFormat.LABELED``, batches
  ``{"label", "users", "items", "fields"}``);
- **positive-only data** trains on each positive plus ``num_negatives``
  sampled unobserved items labelled 0 (``TrainFormat.POINTS``, batches
  ``{"users", "items", "labels"}``); their fields come from the user and item
  field tables (``RecData.field_table``) loaded by :meth:`CTRModel.prepare`;
- the **CTR protocol** scores logged rows with :meth:`CTRModel.predict`;
- the **ranking protocol** scores every item for a user with
  :meth:`CTRModel.score`, crossing the user's fields with every item's in
  chunks of rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import nn

from recframe.data.encode import DataInfo
from recframe.data.fields import FieldSpec
from recframe.errors import ConfigError, DataError
from recframe.models.base import RecModel, TrainFormat
from recframe.models.fields import FieldEmbedding

if TYPE_CHECKING:
    from recframe.data.encode import RecData


class CTRModel(RecModel):
    """Base class of click models: subclasses implement ``logits(fields) -> [B]``.

    ``train_format`` is ``LABELED`` when the data has labels, else ``POINTS``
    (``num_negatives`` sampled negatives per positive, labelled 0). The loss is
    the mean binary cross-entropy of the logits against the labels plus
    ``reg`` times the mean (over the batch's rows) squared L2 norm of the rows'
    field vectors in every :class:`FieldEmbedding` of the model (the weights of a
    :class:`FieldLinear` included).

    POINTS batches have no fields: :meth:`point_fields` builds them from the
    user and item tables (:meth:`prepare`); context fields are ``0`` (unknown),
    and sequence fields are the user's history at the end of the train part
    with the row's own item masked out (that history holds every train
    positive, so the label would otherwise be in the input).
    """

    #: rows (users x items) :meth:`score` sends through :meth:`logits` at once
    score_chunk_rows: ClassVar[int] = 1 << 15

    def __init__(self, info: DataInfo, *, num_negatives: int = 4, reg: float = 0.0) -> None:
        super().__init__()
        self.train_format = TrainFormat.LABELED if info.has_labels else TrainFormat.POINTS
        self.num_negatives = num_negatives
        self.reg = reg
        self.n_items = info.n_items
        self.field_specs: tuple[FieldSpec, ...] = tuple(f for f in info.fields if f.is_batched)
        if not any(f.kind != "sequence" for f in self.field_specs):
            raise ConfigError(
                f"{type(self).__name__} needs at least one batched (categorical, "
                f"multi_categorical or numeric) field, and dataset {info.name!r} has none. "
                f"Keep the id fields (Dataset.meta['id_fields']) or declare fields with "
                f"dataset.fields.")
        self._tables: dict[str, dict[str, str]] = {"user": {}, "item": {}}

    # -- subclass API -----------------------------------------------------------------
    def logits(self, fields: dict[str, torch.Tensor]) -> torch.Tensor:
        """One logit per row, ``[B]``, from the batch's fields."""
        raise NotImplementedError

    # -- data ------------------------------------------------------------------------
    def prepare(self, data: RecData) -> None:
        """Load the user and item field tables (non-persistent buffers on the model's
        device); used to build POINTS training rows and to rank all items."""
        if not hasattr(data, "field_table"):
            raise DataError(f"{type(self).__name__} needs the data's field tables "
                            f"(RecData.field_table); this data object has none")
        device = self._device()
        for owner in ("user", "item"):
            for name in list(self._tables[owner].values()):
                delattr(self, name)
            self._tables[owner] = {}
            for i, (field, values) in enumerate(sorted(data.field_table(owner).items())):
                buffer = f"_{owner}_table_{i}"
                self.register_buffer(buffer, torch.as_tensor(np.asarray(values)).to(device),
                                     persistent=False)
                self._tables[owner][field] = buffer

    def _device(self) -> torch.device:
        tensor = next(self.parameters(), None)
        if tensor is None:
            tensor = next(self.buffers(), torch.zeros(()))
        return tensor.device

    def _table(self, owner: str, field: str) -> torch.Tensor:
        return getattr(self, self._tables[owner][field])

    def owner_fields(self, owner: str, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """The fields owned by ``owner`` (``user``: with the sequence fields, as of the
        end of train; ``item``) for user or item indices ``index``, from the tables."""
        out = {}
        for f in self.field_specs:
            if f.kind == "sequence":
                if owner != "user":
                    continue
            elif f.owner != owner:
                continue
            if f.name not in self._tables[owner]:
                if not self._tables["user"] and not self._tables["item"]:
                    raise DataError(
                        f"{type(self).__name__}: the field tables are not loaded; call "
                        f"model.prepare(data) before training on sampled negatives or "
                        f"ranking all items")
                raise DataError(
                    f"field {f.name!r} ({f.kind}, owner {f.owner}) is missing from "
                    f"data.field_table({owner!r}) (it has {sorted(self._tables[owner])})")
            out[f.name] = self._table(owner, f.name)[index]
        return out

    def zero_fields(self, n: int, owners: tuple[str, ...], device: torch.device
                    ) -> dict[str, torch.Tensor]:
        """Fields of ``owners`` for ``n`` rows where they are unknown: code ``0``
        (padding), value ``0.0``; sequence fields count as ``user``-owned (they come
        from the user table) and are all padding."""
        out = {}
        for f in self.field_specs:
            owner = "user" if f.kind == "sequence" else f.owner
            if owner not in owners:
                continue
            if f.kind == "numeric":
                out[f.name] = torch.zeros(n, device=device)
            elif f.kind == "dense":
                out[f.name] = torch.zeros(n, f.max_len, device=device)
            elif f.kind in ("multi_categorical", "sequence"):
                out[f.name] = torch.zeros(n, f.max_len, dtype=torch.long, device=device)
            else:
                out[f.name] = torch.zeros(n, dtype=torch.long, device=device)
        return out

    def point_fields(self, users: torch.Tensor, items: torch.Tensor) -> dict[str, torch.Tensor]:
        """The fields of (user, item) rows from the tables (POINTS training): context
        fields 0, sequence fields the user's train history without the row's item."""
        fields = self.owner_fields("user", users)
        fields.update(self.owner_fields("item", items))
        fields.update(self.zero_fields(len(users), ("context",), users.device))
        for f in self.field_specs:
            if f.kind == "sequence" and f.shares in fields and fields[f.shares].dim() == 1:
                seq = fields[f.name]
                fields[f.name] = torch.where(seq == fields[f.shares].unsqueeze(1), 0, seq)
        return fields

    # -- training and scoring ----------------------------------------------------------
    def row_fields(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The fields of a batch of logged rows (``batch["fields"]``), completed with the
        item-owned fields the rows do not carry, looked up in the item table by
        ``batch["items"]`` (e.g. ``item_text``, which the item-text stage adds to the
        item table only: ``model.item_text=field``)."""
        fields = batch["fields"]
        missing = [f.name for f in self.field_specs if f.owner == "item"
                   and f.kind != "sequence" and f.name not in fields
                   and f.name in self._tables["item"]]
        if not missing:
            return fields
        items = batch["items"].to(self._device())
        return {**fields, **{name: self._table("item", name)[items] for name in missing}}

    def _batch_fields(self, batch: dict[str, Any]) -> tuple[dict[str, torch.Tensor],
                                                            torch.Tensor]:
        if "fields" in batch:
            return self.row_fields(batch), batch["label"]
        return self.point_fields(batch["users"], batch["items"]), batch["labels"]

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        fields, labels = self._batch_fields(batch)
        logits = self.logits(fields)
        loss = nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
        if self.reg:
            loss = loss + self.reg * self.embedding_penalty(fields)
        return loss

    def embedding_penalty(self, fields: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean over rows of the squared L2 norm of the rows' field vectors, summed over
        the model's :class:`FieldEmbedding` layers."""
        total = torch.zeros((), device=self._device())
        for module in self.modules():
            if isinstance(module, FieldEmbedding):
                total = total + module(fields).pow(2).sum(dim=(1, 2)).mean()
        return total

    def predict(self, batch: dict[str, Any]) -> torch.Tensor:
        """Logits ``[B]`` of logged rows (the CTR protocol): reads ``batch["fields"]``
        (completed from the item table, :meth:`row_fields`)."""
        return self.logits(self.row_fields(batch))

    def score(self, users: torch.Tensor, context: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits of every item for each user, ``[B, n_items]``: the user's fields (and
        sequence fields at the end of train) broadcast, each item's fields from the
        item table, context fields 0; at most :attr:`score_chunk_rows` rows at once."""
        users = users.to(self._device())
        return self._score_all_items(self.owner_fields("user", users), len(users))

    def score_new_users(self, context: dict[str, torch.Tensor]) -> torch.Tensor:
        """Scores for users unknown at training time: each user-owned field (the user
        id, demographics) and sequence field is unknown (code 0, value 0.0), as an
        unseen id is in an out-of-vocabulary bucket; so every new user gets the same
        ranking, from the item fields alone (no fold-in of the history). This is what
        ``recframe recommend`` and the membership audit (``mia_auc``) score."""
        b = len(context["users"])
        return self._score_all_items(self.zero_fields(b, ("user",), self._device()), b)

    def _score_all_items(self, user_fields: dict[str, torch.Tensor], b: int) -> torch.Tensor:
        device = self._device()
        chunk = max(1, self.score_chunk_rows // max(1, b))
        out = []
        for start in range(0, self.n_items, chunk):
            items = torch.arange(start, min(start + chunk, self.n_items), device=device)
            c = len(items)
            fields = {k: v.repeat_interleave(c, dim=0) for k, v in user_fields.items()}
            fields.update({k: v.repeat(b, *([1] * (v.dim() - 1)))
                           for k, v in self.owner_fields("item", items).items()})
            fields.update(self.zero_fields(b * c, ("context",), device))
            out.append(self.logits(fields).view(b, c))
        if not out:
            return torch.zeros(b, 0, device=device)
        return torch.cat(out, dim=1).float()

