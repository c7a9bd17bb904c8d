"""iALS: implicit-feedback matrix factorization by alternating least squares (closed form)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from recframe.api import (
    DataInfo,
    RecData,
    RecModel,
    TrainFormat,
    choice_param,
    dense_history,
    float_param,
    int_param,
)

# Largest float tensor (in elements) built per chunk of rows while solving: bounds fit memory.
_CHUNK_CELLS = 1 << 24

Chunk = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # rows [c], items [c, L], mask [c, L]


def _chunks(m: sp.csr_matrix, factors: int, device: torch.device) -> list[Chunk]:
    """Rows of ``m`` with at least one entry, grouped into padded blocks of similar length.

    Rows are bucketed by ``ceil(log2(degree))`` and sorted by degree inside a
    bucket, so padding at most doubles a block (usually far less); each block has
    at most ``_CHUNK_CELLS / (factors * max(L, factors))`` rows, which bounds both
    the gathered factors ``[c, L, f]`` and the systems ``[c, f, f]``. Built once per
    fit (vectorized numpy, a loop over blocks only).
    """
    indptr, indices = m.indptr.astype(np.int64), m.indices.astype(np.int64)
    degree = np.diff(indptr)
    rows = np.flatnonzero(degree > 0)
    bucket = np.ceil(np.log2(degree[rows])).astype(np.int64)
    out: list[Chunk] = []
    for b in np.unique(bucket):
        group = rows[bucket == b]
        # by degree within the bucket: a block's rows have similar lengths, little padding
        group = group[np.argsort(degree[group], kind="stable")]
        width = int(degree[group].max())
        per_chunk = max(1, _CHUNK_CELLS // (factors * max(width, factors)))
        for start in range(0, len(group), per_chunk):
            sel = group[start:start + per_chunk]
            lengths = degree[sel]
            length = int(lengths.max())
            pos = np.repeat(np.arange(len(sel)), lengths)
            offs = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
            # padding points one past the last row of the other side: a zero row in _solve
            items = np.full((len(sel), length), m.shape[1], dtype=np.int64)
            mask = np.zeros((len(sel), length), dtype=np.float32)
            items[pos, offs] = indices[np.repeat(indptr[sel], lengths) + offs]
            mask[pos, offs] = 1.0
            out.append((torch.from_numpy(sel).to(device), torch.from_numpy(items).to(device),
                        torch.from_numpy(mask).to(device)))
    return out


def _conjugate_gradient(matvec: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor,
                        x: torch.Tensor, steps: int) -> torch.Tensor:
    """A few batched CG steps for ``A x = b`` (one SPD system per row), warm-started at ``x``."""
    r = b - matvec(x)
    p = r.clone()
    rs = (r * r).sum(1, keepdim=True)
    for _ in range(steps):
        ap = matvec(p)
        step = rs / (p * ap).sum(1, keepdim=True).clamp_min(1e-20)
        x = x + step * p
        r = r - step * ap
        rs_new = (r * r).sum(1, keepdim=True)
        p = r + (rs_new / rs.clamp_min(1e-20)) * p
        rs = rs_new
    return x


class IALS(RecModel):
    """Weighted matrix factorization for implicit feedback, fitted by ALS.

    Hu, Koren & Volinsky, "Collaborative Filtering for Implicit Feedback
    Datasets", ICDM 2008; settings follow Rendle, Krichene, Zhang & Koren,
    "Revisiting the Performance of iALS on Item Recommendation Benchmarks",
    RecSys 2022. With preferences ``p_ui = 1`` for training interactions and 0
    otherwise, and confidences ``c_ui = 1 + alpha`` (observed) or 1, it minimizes

        ``sum_{u,i} c_ui (p_ui - x_u . y_i)^2 + reg (sum_u |x_u|^2 + sum_i |y_i|^2)``

    over *all* user-item pairs by alternating exact least-squares solves:
    ``x_u = (Y^T Y + alpha Y_u^T Y_u + reg I)^-1 (1 + alpha) Y_u^T 1`` with
    ``Y_u`` the factors of the user's items (the Gramian trick: the dense part
    ``Y^T Y`` is shared), and symmetrically for items. ``solver: exact`` solves
    each system by batched Cholesky; ``solver: cg`` runs ``cg_steps`` conjugate
    gradient steps warm-started at the previous factors (Takacs, Pilaszy &
    Tikk, RecSys 2011), cheaper for many factors. Score ``s(u, i) = x_u . y_i``.
    """

    train_format = TrainFormat.FIT

    def __init__(self, n_users: int, n_items: int, factors: int = 64, iterations: int = 10,
                 alpha: float = 5.0, reg: float = 35.0, solver: str = "exact",
                 cg_steps: int = 3, init_std: float = 0.01) -> None:
        super().__init__()
        self.factors, self.iterations = factors, iterations
        self.alpha, self.reg = alpha, reg
        self.solver, self.cg_steps, self.init_std = solver, cg_steps, init_std
        self.register_buffer("user_factors", torch.zeros(n_users, factors))
        self.register_buffer("item_factors", torch.randn(n_items, factors) * init_std)

    def _solve(self, chunks: list[Chunk], fixed: torch.Tensor, current: torch.Tensor
               ) -> torch.Tensor:
        """New factors for one side given the other side's ``fixed`` factors."""
        gram = fixed.T @ fixed  # Y^T Y, shared by every row
        eye = torch.eye(self.factors, dtype=fixed.dtype, device=fixed.device)
        out = torch.zeros_like(current)  # rows without interactions: the solution is 0
        padded = torch.cat([fixed, fixed.new_zeros(1, fixed.shape[1])])  # + a zero row
        for rows, items, _mask in chunks:  # a loop over blocks of rows, not over rows
            y = padded[items]  # [c, L, f], padding gathers the zero row
            b = (1.0 + self.alpha) * y.sum(1)  # Y_u^T C_u p_u
            if self.solver == "exact":
                a = torch.baddbmm((gram + self.reg * eye).expand(len(rows), -1, -1),
                                  y.transpose(1, 2), y, alpha=self.alpha)
                chol = torch.linalg.cholesky(a)
                out[rows] = torch.cholesky_solve(b.unsqueeze(-1), chol).squeeze(-1)
            else:
                def matvec(v: torch.Tensor, y: torch.Tensor = y) -> torch.Tensor:
                    inner = torch.einsum("clf,cf->cl", y, v)
                    return v @ gram + self.alpha * torch.einsum("clf,cl->cf", y, inner) \
                        + self.reg * v
                out[rows] = _conjugate_gradient(matvec, b, current[rows], self.cg_steps)
        return out

    def fit(self, data: RecData) -> None:
        device = self.item_factors.device
        x = data.train.tocsr()
        by_user = _chunks(x, self.factors, device)
        by_item = _chunks(x.T.tocsr(), self.factors, device)
        users, items = self.user_factors.clone(), self.item_factors.clone()
        for _ in range(self.iterations):
            users = self._solve(by_user, items, users)
            items = self._solve(by_item, users, items)
        self.user_factors.copy_(users)
        self.item_factors.copy_(items)

    def score(self, users: torch.Tensor, context: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.user_factors[users] @ self.item_factors.T

    def score_new_users(self, context: dict[str, torch.Tensor]) -> torch.Tensor:
        """Fold-in: the exact iALS user step for the given histories, then scores."""
        y = self.item_factors
        h = dense_history(context, len(context["users"]), y.shape[0], dtype=y.dtype)
        eye = torch.eye(self.factors, dtype=y.dtype, device=y.device)
        a = (y.T @ y + self.reg * eye) + self.alpha * torch.einsum("bi,if,ig->bfg", h, y, y)
        b = (1.0 + self.alpha) * h @ y
        return torch.linalg.solve(a, b.unsqueeze(-1)).squeeze(-1) @ y.T


def build_ials(info: DataInfo, cfg: Any) -> IALS:
    return IALS(
        info.n_users, info.n_items,
        factors=int_param(cfg, "factors", 64),
        iterations=int_param(cfg, "iterations", 10),
        alpha=float_param(cfg, "alpha", 5.0),
        reg=float_param(cfg, "reg", 35.0, strict=True),
        solver=choice_param(cfg, "solver", "exact", ("exact", "cg")),
        cg_steps=int_param(cfg, "cg_steps", 3),
        init_std=float_param(cfg, "init_std", 0.01, strict=True),
    )
