"""``model.item_text``: pretrained text embeddings for any ID-embedding model, one switch.

A model opts in by naming its item-embedding tables in ``item_embeddings`` (attribute
name -> the row of item 0, e.g. ``{"item_emb": 1}`` when row 0 is padding). With
``model.item_text`` set, the core replaces each named ``nn.Embedding`` by a
:class:`TextAwareEmbedding` before training, and fills in the item-text vectors of
:mod:`recframe.data.item_text` when the model is prepared. The model's own code is
unchanged: ``emb(ids)`` and ``emb.weight`` both return the text-aware table.

Modes:

``none``
    plain ID embeddings (the default).
``init``
    the ID table starts from the text: the leading principal components of the item
    text vectors, scaled to the table's initial standard deviation (items without
    text keep their random row). Training then moves it like any embedding
    (text-initialized ID embeddings, as in Hou et al., "Towards Universal Sequence
    Representation Learning for Recommender Systems" (UniSRec), KDD 2022, whose
    parametric whitening of frozen text vectors this approximates with PCA).
``add``
    the table is ``ID embedding + W x_text`` with a learned linear projection ``W`` of
    the frozen text vector: text-enhanced ID embeddings as in UniSRec and in the
    text-enhanced SASRec baselines of Li et al., "Text Is All You Need" (Recformer),
    KDD 2023. An item never seen in training still has its text term, so the model can
    score cold items.
``field``
    for click (CTR) models, which have no item ID table of their own but read typed
    fields: the text vector becomes one more item field, ``item_text`` (kind ``dense``),
    which :class:`recframe.models.fields.FieldEmbedding` projects to one field vector
    like any other (:func:`with_item_text_field`). Cold items keep their text field.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recframe.data.encode import RecData
from recframe.data.fields import FieldSpec
from recframe.data.item_text import ItemTextVectors, TextSettings, item_text_vectors
from recframe.errors import ConfigError
from recframe.models.fields import FieldEmbedding
from recframe.params import ITEM_TEXT_KEY

log = logging.getLogger(__name__)

ITEM_TEXT_MODES = ("none", "init", "add", "field")
#: the name of the dense item field that ``model.item_text=field`` adds
ITEM_TEXT_FIELD = "item_text"
#: the models shipped with recframe that declare ``item_embeddings`` (for messages)
BUILT_IN_TEXT_MODELS = ("bpr", "neumf", "lightgcn", "sasrec", "gru4rec", "bert4rec")
#: the click models shipped with recframe that read fields (``model.item_text=field``)
BUILT_IN_FIELD_MODELS = ("lr", "fm", "deepfm", "dcnv2", "autoint", "din", "mlp_ctr")


class TextAwareEmbedding(nn.Embedding):
    """An ``nn.Embedding`` whose table includes item text (``init`` or ``add`` mode).

    The learned ID table stays the parameter ``weight`` in the state dict; reading
    ``.weight`` returns the effective table (in ``add`` mode, ID + projected text), so
    models that read the table directly need no change.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, *, mode: str,
                 item_offset: int = 0, padding_idx: int | None = None) -> None:
        super().__init__(num_embeddings, embedding_dim, padding_idx=padding_idx)
        if mode not in ("init", "add"):
            raise ValueError(f"mode must be 'init' or 'add', got {mode!r}")
        self.mode = mode
        self.item_offset = item_offset
        self.text_projection: nn.Linear | None = None
        self._text_initialized = False
        self.register_buffer("text_vectors", torch.zeros(num_embeddings, 0), persistent=False)

    @classmethod
    def replacing(cls, emb: nn.Embedding, mode: str, item_offset: int) -> TextAwareEmbedding:
        """A text-aware table with ``emb``'s shape, padding row and initial values."""
        new = cls(emb.num_embeddings, emb.embedding_dim, mode=mode, item_offset=item_offset,
                  padding_idx=emb.padding_idx)
        with torch.no_grad():
            new._parameters["weight"].copy_(emb._parameters["weight"])
        return new

    @property  # type: ignore[override]
    def weight(self) -> torch.Tensor:
        raw = self._parameters.get("weight")
        if raw is None:  # during nn.Embedding.__init__, before the parameter exists
            raise AttributeError("weight")
        if self.mode == "add" and self.text_projection is not None:
            return raw + self.text_projection(self.text_vectors)
        return raw

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if self.mode == "add" and self.text_projection is not None:
            out = F.embedding(input, self._parameters["weight"], self.padding_idx)
            text = F.embedding(input, self.text_vectors)
            return out + self.text_projection(text)
        return super().forward(input)

    def attach(self, text: ItemTextVectors) -> None:
        """Place the item text vectors at the item rows and apply the mode."""
        raw = self._parameters["weight"]
        vectors = torch.as_tensor(text.vectors, dtype=raw.dtype)
        n_items = vectors.shape[0]
        if self.item_offset + n_items > self.num_embeddings:
            raise ConfigError(f"item text has {n_items} items, the embedding table "
                              f"{self.num_embeddings - self.item_offset}")
        table = torch.zeros(self.num_embeddings, vectors.shape[1], dtype=raw.dtype)
        table[self.item_offset:self.item_offset + n_items] = vectors
        self.text_vectors = table.to(raw.device)
        if self.mode == "add":
            if self.text_projection is None:
                self.text_projection = nn.Linear(vectors.shape[1], self.embedding_dim,
                                                 bias=False).to(raw.device, raw.dtype)
            return
        if self._text_initialized:
            return
        rows = torch.from_numpy(text.has_text).nonzero().squeeze(1) + self.item_offset
        with torch.no_grad():
            start = float(raw[rows].detach().std())
            pcs = _principal_components(vectors[text.has_text], self.embedding_dim, start)
            raw[rows] = pcs.to(raw.device, raw.dtype)
        self._text_initialized = True


def _principal_components(x: torch.Tensor, dim: int, std: float) -> torch.Tensor:
    """``[n, dim]``: ``x`` centered and projected on its ``dim`` leading principal
    directions (columns past the rank of ``x`` are 0), scaled to entry std ``std``."""
    centered = x - x.mean(0, keepdim=True)
    k = min(dim, *centered.shape)
    _, _, v = torch.linalg.svd(centered.double(), full_matrices=False)
    out = torch.zeros(x.shape[0], dim, dtype=torch.float64)
    out[:, :k] = centered.double() @ v[:k].T
    scale = out[:, :k].std()
    if scale > 0:
        out *= std / scale
    return out.float()


def item_text_mode(model_cfg: Any) -> str:
    """``model.item_text`` (``none`` when absent), validated."""
    mode = "none" if model_cfg is None else model_cfg.get(ITEM_TEXT_KEY, "none")
    mode = "none" if mode is None or mode is False else str(mode)
    if mode not in ITEM_TEXT_MODES:
        raise ConfigError(f"model.item_text must be one of {', '.join(ITEM_TEXT_MODES)}, "
                          f"got {mode!r}")
    return mode


def apply_item_text(model: nn.Module, mode: str, settings: TextSettings, data: RecData,
                    model_name: str, supported: list[str] | None = None) -> nn.Module:
    """Swap the model's item tables for text-aware ones (``mode`` ``init``/``add``) and
    fill them with ``data``'s item text vectors (encoded once per data set, encoder and
    texts, then read from the disk cache). Called right after the model is built, before
    any optimizer exists, so the ``add`` projection trains like every other parameter."""
    if mode == "none":
        return model
    if mode == "field":
        return _check_text_field(model, data, model_name)
    tables: dict[str, int] = dict(getattr(model, "item_embeddings", None) or {})
    if not tables:
        names = ", ".join(supported or BUILT_IN_TEXT_MODELS)
        raise ConfigError(
            f"model.item_text={mode}: model {model_name!r} declares no item embedding table "
            f"(item_embeddings) to enhance with text. ID-embedding models accept it ({names}); "
            f"a plugin model opts in by declaring item_embeddings (docs/item_text.md). Click "
            f"models take the text as a dense field (model.item_text=field); the content "
            f"model uses text directly (model=content 'model.item_vectors=[minilm]').")
    text = item_text_vectors(data, settings)  # the disk cache makes reruns cheap
    for attr, offset in tables.items():
        emb = getattr(model, attr, None)
        if not isinstance(emb, nn.Embedding):
            raise ConfigError(f"model {model_name!r}: item_embeddings names {attr!r}, which "
                              f"is not an nn.Embedding")
        table = TextAwareEmbedding.replacing(emb, mode, offset)
        table.attach(text)
        setattr(model, attr, table)
    if mode == "add":  # the text term gives never-trained items a representation
        model.scores_cold_items = True
    model.item_text_record = {"mode": mode, **text.record()}
    return model


def with_item_text_field(data: RecData, settings: TextSettings) -> RecData:
    """``data`` with the items' text vectors as one more item field, ``item_text`` (kind
    ``dense``, length = the encoder's dimension; items without text get a zero vector),
    for ``model.item_text=field``. Called before the model is built, since a click
    model sizes its layers from the fields. The encoding is recorded on the data
    (``meta["item_text"]``) for :func:`apply_item_text` to report."""
    text = item_text_vectors(data, settings)
    vectors = np.ascontiguousarray(text.vectors, dtype=np.float32)
    spec = FieldSpec(name=ITEM_TEXT_FIELD, kind="dense", owner="item",
                     max_len=int(vectors.shape[1]))
    out = data.with_item_field(spec, vectors)
    out.meta = {**data.meta, "item_text": text.record()}
    return out


def _check_text_field(model: nn.Module, data: RecData, model_name: str) -> nn.Module:
    """``model.item_text=field``: the model must read the ``item_text`` field."""
    record = data.meta.get("item_text")
    reads = any(isinstance(m, FieldEmbedding) and ITEM_TEXT_FIELD in m.field_names
                for m in model.modules())
    if record is None or not reads:
        why = ("reads no typed fields" if not any(isinstance(m, FieldEmbedding)
                                                   for m in model.modules())
               else f"leaves the {ITEM_TEXT_FIELD!r} field out (model.fields / "
                    f"model.exclude_fields)")
        raise ConfigError(
            f"model.item_text=field: model {model_name!r} {why}, so the item text field "
            f"would not be used. Click models read it "
            f"({', '.join(BUILT_IN_FIELD_MODELS)}; keep {ITEM_TEXT_FIELD!r} in model.fields); "
            f"ID-embedding models take model.item_text=init or add (docs/item_text.md).")
    model.scores_cold_items = True  # a cold item still has its text field
    model.item_text_record = {"mode": "field", "field": ITEM_TEXT_FIELD, **record}
    return model
