"""LightFM-style hybrid factorization: users and items as sums of feature embeddings."""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from recframe.api import (
    DataInfo,
    FeatureSpec,
    RecData,
    RecModel,
    TrainFormat,
    bool_param,
    choice_param,
    describe_blocks,
    feature_specs,
    float_param,
    int_param,
)
from recframe_hybrid._features import FeatureBag

log = logging.getLogger(__name__)


def _multi(info: DataInfo, owner: str) -> tuple:
    """The owner's multi-valued fields (e.g. item genres ``Action|Comedy``)."""
    return tuple(f for f in info.fields if f.owner == owner and f.kind == "multi_categorical")


class LightFMStyle(RecModel):
    """Hybrid matrix factorization with metadata embeddings.

    Kula, "Metadata Embeddings for User and Item Cold-start Recommendations",
    CBRecSys @ RecSys 2015 (LightFM). A user or item is the sum of the
    embeddings of its features: its id, its numeric features (e.g. genre flags,
    weighted by their max-abs scaled values) and one embedding per categorical
    column (see :class:`FeatureBag`; rows normalized to weight 1 when
    ``normalize_features``). Score ``s(u, i) = <p_u, q_i> + b_i`` where ``b_i``
    is the same feature sum over scalar biases (``use_biases``). User features
    are used when the data has them and ``use_user_features``. With no
    features at all the model is plain matrix factorization on ids (with the
    same losses), so it runs on any data; free-text columns are not used.

    Losses over a positive ``i`` and ``num_negatives`` sampled negatives ``j``:

    - ``bpr``: mean of ``-log sigmoid(s(u, i) - s(u, j))`` (Rendle et al., UAI 2009).
    - ``warp``: Weston, Bengio & Usunier, "WSABIE: Scaling Up to Large Vocabulary
      Image Annotation", IJCAI 2011. Approximation: instead of drawing negatives
      one at a time until one violates ``s(u, j) > s(u, i) - margin``, all
      ``num_negatives`` are scored at once; with ``v`` violators the rank of the
      positive is estimated as ``r = floor(v (n_items - 1) / num_negatives)`` (the
      same expectation as WARP's ``(n_items - 1) / trials``) and the hinge on the
      hardest (highest-scoring) negative is weighted by ``log(1 + r)`` (WARP's
      ``L(r) = sum_{k<=r} 1/k``, up to a constant): ``log(1 + r) *
      max(0, margin - s(u, i) + max_j s(u, j))``. Positives with no violator
      contribute 0.

    Plus ``reg`` x the mean squared L2 norm of the batch's user/item vectors.
    """

    train_format = TrainFormat.PAIRS

    def __init__(self, info: DataInfo, item_specs: tuple[FeatureSpec, ...],
                 user_specs: tuple[FeatureSpec, ...], embedding_dim: int = 64,
                 loss: str = "warp", num_negatives: int = 10, use_biases: bool = True,
                 normalize_features: bool = True, reg: float = 0.0, init_std: float = 0.1,
                 margin: float = 1.0, use_user_multi: bool = False) -> None:
        super().__init__()
        user_multi = _multi(info, "user") if use_user_multi else ()
        item_multi = _multi(info, "item")
        self.users = FeatureBag(info.n_users, user_specs, embedding_dim, init_std,
                                normalize_features, user_multi)
        self.items = FeatureBag(info.n_items, item_specs, embedding_dim, init_std,
                                normalize_features, item_multi)
        self.item_bias = (FeatureBag(info.n_items, item_specs, 1, 0.0, normalize_features,
                                     item_multi) if use_biases else None)
        self.loss_name = loss
        self.num_negatives = num_negatives
        self.reg = reg
        self.margin = margin
        self.n_items = info.n_items
        # features make cold items (users) scorable: their vector is the feature sum
        self.scores_cold_items = self.items.has_features_declared
        self.scores_cold_users = self.users.has_features_declared

    def prepare(self, data: RecData) -> None:
        device = self.users.ids.weight.device
        self.users.load(data.user_features, device,
                        data.field_table("user") if self.users.multi else None)
        items = data.field_table("item") if self.items.multi else None
        self.items.load(data.item_features, device, items)
        if self.item_bias is not None:
            self.item_bias.load(data.item_features, device, items)
        if data.info.cold_start:  # entities with no train row: features only, no id
            self.items.drop_ids(data.item_popularity() == 0)
            self.users.drop_ids(data.info.train_history_lengths == 0)
            if self.item_bias is not None:
                self.item_bias.drop_ids(data.item_popularity() == 0)

    def _score_items(self, u: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor,
                                                                           torch.Tensor]:
        q = self.items(items)
        s = (u.unsqueeze(-2) * q).sum(-1) if items.dim() == 2 else (u * q).sum(-1)
        if self.item_bias is not None:
            s = s + self.item_bias(items).squeeze(-1)
        return s, q

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        u = self.users(batch["users"])  # [B, d]
        s_pos, q_pos = self._score_items(u, batch["pos"])  # [B]
        s_neg, q_neg = self._score_items(u, batch["neg"])  # [B, n]
        if self.loss_name == "bpr":
            loss = -nn.functional.logsigmoid(s_pos.unsqueeze(1) - s_neg).mean()
        else:
            with torch.no_grad():
                violators = (s_neg > (s_pos.unsqueeze(1) - self.margin)).sum(1).float()
                rank = torch.floor(violators * (self.n_items - 1) / s_neg.shape[1])
                weight = torch.log1p(rank)
            hinge = torch.relu(self.margin - s_pos + s_neg.max(1).values)
            loss = (weight * hinge).mean()
        if self.reg:
            l2 = u.pow(2).sum(-1).mean() + q_pos.pow(2).sum(-1).mean() \
                + q_neg.pow(2).sum(-1).mean()
            loss = loss + self.reg * l2
        return loss

    def score(self, users: torch.Tensor, context: dict[str, torch.Tensor]) -> torch.Tensor:
        scores = self.users(users) @ self.items.all().T
        if self.item_bias is not None:
            scores = scores + self.item_bias.all().T
        return scores


def _used(specs: tuple[FeatureSpec, ...], multi: tuple) -> dict[str, tuple[str, ...]]:
    """The feature columns a :class:`FeatureBag` embeds, by kind (for the log)."""
    blocks = {kind: tuple(s.name for s in specs if s.kind == kind)
              for kind in ("numeric", "categorical")}
    blocks["multi_categorical"] = tuple(f.name for f in multi)
    return {kind: names for kind, names in blocks.items() if names}


def build_lightfm_style(info: DataInfo, cfg: Any) -> LightFMStyle:
    max_card = int_param(cfg, "max_cardinality", 100)
    use_user = bool_param(cfg, "use_user_features", True)
    user_specs = feature_specs(info, cfg, "user", max_card) if use_user else ()
    item_specs = feature_specs(info, cfg, "item", max_card)
    margin = float_param(cfg, "margin", 1.0, strict=True)
    for owner, specs, multi in (("item", item_specs, _multi(info, "item")),
                                ("user", user_specs, _multi(info, "user") if use_user else ())):
        used = _used(specs, multi)
        if used:
            log.info("lightfm_style: %s features of %r: %s", owner, info.name,
                     describe_blocks(used))
        else:
            log.info("lightfm_style: no %s features of %r used: %s vectors are id "
                     "embeddings only", owner, info.name, owner)
    return LightFMStyle(
        info,
        item_specs=item_specs,
        user_specs=user_specs,
        embedding_dim=int_param(cfg, "embedding_dim", 64),
        loss=choice_param(cfg, "loss", "warp", ("bpr", "warp")),
        num_negatives=int_param(cfg, "num_negatives", 10),
        use_biases=bool_param(cfg, "use_biases", True),
        normalize_features=bool_param(cfg, "normalize_features", True),
        reg=float_param(cfg, "reg", 0.0),
        init_std=float_param(cfg, "init_std", 0.1, strict=True),
        margin=margin,
        use_user_multi=use_user,
    )
