"""BPR-MF: matrix factorization trained with Bayesian Personalized Ranking."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from recframe.api import (
    ConfigError,
    DataInfo,
    RecModel,
    TrainFormat,
    dense_history,
    least_squares_fold_in,
)


class _BPRLoss(torch.autograd.Function):
    """``mean(-log sigmoid(<p_u, q_i> - <p_u, q_j>))`` over a batch, straight from the
    two embedding tables, with a hand-written backward.

    The same value and gradients as gathering with ``nn.Embedding`` and letting
    autograd differentiate the dot products (tests/test_cf_models.py checks
    both), in a handful of kernels instead of about twenty autograd nodes,
    which is what a BPR step on CPU spends its time on. Gradients are dense, like
    ``nn.Embedding``'s default, so any optimizer treats the tables as usual; with
    ``sparse`` they are sparse COO tensors holding only the batch's rows (for tables
    too large to zero and update whole each step, with ``optim=sparse_adam``).

    With one negative per positive (the usual recipe) the user-side products are
    plain row-broadcasts: no reduction over a length-1 axis, which on CPU costs
    several times the product itself.
    """

    @staticmethod
    def forward(ctx: Any, user_weight: torch.Tensor, item_weight: torch.Tensor,
                users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor,
                sparse: bool = False) -> torch.Tensor:
        u = user_weight.index_select(0, users)  # [B, d]
        p = item_weight.index_select(0, pos)  # [B, d]
        n = item_weight.index_select(0, neg.reshape(-1))  # [B * m, d]
        if neg.shape[1] == 1:
            diff = p - n  # [B, d]
            x = torch.linalg.vecdot(u, diff).unsqueeze(1)  # [B, 1]: s(u, i) - s(u, j)
        else:
            diff = p.unsqueeze(1) - n.view(*neg.shape, -1)  # [B, m, d]
            x = torch.linalg.vecdot(u.unsqueeze(1), diff)  # [B, m]
        ctx.save_for_backward(users, pos, neg, u, diff, x)
        ctx.table_shapes = (user_weight.shape, item_weight.shape)
        ctx.sparse = sparse
        return -nn.functional.logsigmoid(x).mean()

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        users, pos, neg, u, diff, x = ctx.saved_tensors
        user_shape, item_shape = ctx.table_shapes
        w = torch.sigmoid(-x).mul_(-grad_out / x.numel())  # dL/dx, [B, m]
        if ctx.sparse:
            return (*_sparse_grads(users, pos, neg, u, diff, w, user_shape, item_shape),
                    None, None, None, None)
        grad_users = u.new_zeros(user_shape)
        grad_items = u.new_zeros(item_shape)
        # dL/dq_i = sum_j w_j p_u, dL/dq_j = -w_j p_u; negated sources rather than
        # index_add_(alpha=-1), which takes a path about 3x slower on CPU
        if neg.shape[1] == 1:
            grad_users.index_add_(0, users, diff * w)
            rows = u * w
            grad_items.index_add_(0, pos, rows)
            grad_items.index_add_(0, neg.view(-1), rows.neg_())
        else:
            grad_users.index_add_(0, users, (w.unsqueeze(-1) * diff).sum(1))
            grad_items.index_add_(0, pos, u * w.sum(1, keepdim=True))
            grad_items.index_add_(0, neg.reshape(-1),
                                  (u.unsqueeze(1) * w.neg().unsqueeze(-1)).view(-1, u.shape[1]))
        return grad_users, grad_items, None, None, None, None


def _sparse_grads(users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor,
                  u: torch.Tensor, diff: torch.Tensor, w: torch.Tensor,
                  user_shape: torch.Size, item_shape: torch.Size
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """The two tables' gradients as uncoalesced sparse COO rows (the optimizer sums
    repeated rows), the same values as the dense backward scatters."""
    if neg.shape[1] == 1:
        user_rows = diff * w
        item_rows = torch.cat([u * w, -(u * w)])
    else:
        user_rows = (w.unsqueeze(-1) * diff).sum(1)
        item_rows = torch.cat([u * w.sum(1, keepdim=True),
                               (u.unsqueeze(1) * w.neg().unsqueeze(-1)).view(-1, u.shape[1])])
    items = torch.cat([pos, neg.reshape(-1)])
    # indices are in range by construction (batch ids of the tables)
    return (torch.sparse_coo_tensor(users.unsqueeze(0), user_rows, user_shape,
                                    check_invariants=False),
            torch.sparse_coo_tensor(items.unsqueeze(0), item_rows, item_shape,
                                    check_invariants=False))


class BPRMF(RecModel):
    """Matrix factorization with the BPR pairwise loss.

    Rendle, Freudenthaler, Gantner & Schmidt-Thieme, "BPR: Bayesian
    Personalized Ranking from Implicit Feedback", UAI 2009. Score
    ``s(u, i) = <p_u, q_i>``; loss ``-log sigmoid(s(u, i) - s(u, j))`` over a
    positive ``i`` and sampled negatives ``j``, plus L2 on the embeddings of
    the batch (``reg``). ``sparse_grad`` makes both tables' gradients sparse (the
    batch's rows only), for catalogs where zeroing and updating whole tables every step
    dominates (2M users x 200k items: ``experiments/bench/pipeline_200m.py``); it needs
    an optimizer that takes sparse gradients (``optim=sparse_adam``, E929).
    """

    per_user_parameters = ("user_emb.weight",)

    train_format = TrainFormat.PAIRS
    #: item tables ``model.item_text`` can make text-aware (attribute -> row of item 0)
    item_embeddings = {"item_emb": 0}

    def __init__(self, n_users: int, n_items: int, embedding_dim: int = 64,
                 reg: float = 0.0, num_negatives: int = 1, init_std: float = 0.01,
                 sparse_grad: bool = False) -> None:
        super().__init__()
        self.user_emb = nn.Embedding(n_users, embedding_dim, sparse=sparse_grad)
        self.item_emb = nn.Embedding(n_items, embedding_dim, sparse=sparse_grad)
        #: read by the trainer: the optimizer must take sparse gradients (E929)
        self.sparse_gradients = sparse_grad
        nn.init.normal_(self.user_emb.weight, std=init_std)
        nn.init.normal_(self.item_emb.weight, std=init_std)
        self.reg = reg
        self.num_negatives = num_negatives

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        users, pos, neg = batch["users"], batch["pos"], batch["neg"]
        loss = _BPRLoss.apply(self.user_emb.weight, self.item_emb.weight, users, pos, neg,
                              self.sparse_gradients)
        if self.reg:
            u, p, n = self.user_emb(users), self.item_emb(pos), self.item_emb(neg)
            l2 = u.pow(2).sum(-1).mean() + p.pow(2).sum(-1).mean() + n.pow(2).sum(-1).mean()
            loss = loss + self.reg * l2
        return loss

    def functional_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``loss`` through plain differentiable ops (no fused kernel), so per-example
        gradient transforms (``torch.func.vmap``, used by privacy=dpsgd) can run it."""
        loss = self.reference_loss(batch)
        if self.reg:
            u = self.user_emb(batch["users"])
            p, n = self.item_emb(batch["pos"]), self.item_emb(batch["neg"])
            l2 = u.pow(2).sum(-1).mean() + p.pow(2).sum(-1).mean() + n.pow(2).sum(-1).mean()
            loss = loss + self.reg * l2
        return loss

    def reference_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The BPR term through ``nn.Embedding`` and autograd (what ``loss`` must equal)."""
        u = self.user_emb(batch["users"])  # [B, d]
        pos = self.item_emb(batch["pos"])  # [B, d]
        neg = self.item_emb(batch["neg"])  # [B, n, d]
        pos_score = (u * pos).sum(-1, keepdim=True)  # [B, 1]
        neg_score = (u.unsqueeze(1) * neg).sum(-1)  # [B, n]
        return -nn.functional.logsigmoid(pos_score - neg_score).mean()

    def score(self, users: torch.Tensor, context: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.user_emb(users) @ self.item_emb.weight.T

    def score_new_users(self, context: dict[str, torch.Tensor]) -> torch.Tensor:
        """Least-squares fold-in of a user vector from the history's item factors."""
        q = self.item_emb.weight
        history = dense_history(context, len(context["users"]), q.shape[0])
        return least_squares_fold_in(q, history, reg=0.1) @ q.T


def build_bpr(info: DataInfo, cfg: Any) -> BPRMF:
    dim = cfg.get("embedding_dim", 64)
    if not isinstance(dim, int) or dim < 1:
        raise ConfigError(f"model.embedding_dim must be a positive integer, got {dim!r}")
    reg = cfg.get("reg", 0.0)
    if not isinstance(reg, (int, float)) or reg < 0:
        raise ConfigError(f"model.reg must be a non-negative number, got {reg!r}")
    n_neg = cfg.get("num_negatives", 1)
    if not isinstance(n_neg, int) or n_neg < 1:
        raise ConfigError(f"model.num_negatives must be a positive integer, got {n_neg!r}")
    sparse = cfg.get("sparse_grad", False)
    if not isinstance(sparse, bool):
        raise ConfigError(f"model.sparse_grad must be true or false, got {sparse!r}")
    return BPRMF(info.n_users, info.n_items, dim, float(reg), n_neg,
                 float(cfg.get("init_std", 0.01)), sparse)
