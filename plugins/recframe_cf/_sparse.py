"""Sparse-tensor helpers shared by the graph and neighbourhood models."""

from __future__ import annotations

import warnings

import torch


def to_csr(coo: torch.Tensor) -> torch.Tensor:
    """Coalesce a sparse COO tensor and convert it to CSR.

    torch warns once that CSR support is in beta; the CSR x dense product (and
    its backward) used here is stable, and several times faster than COO's.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta.*")
        return coo.coalesce().to_sparse_csr()


class _SymmetricMatmul(torch.autograd.Function):
    """``adj @ dense`` for a constant symmetric sparse ``adj``.

    The gradient with respect to ``dense`` is ``adj^T @ grad = adj @ grad``;
    torch's generic CSR backward would instead build ``adj^T`` (a sort) on
    every step, which costs more than the product itself.
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, adj: torch.Tensor,
                dense: torch.Tensor) -> torch.Tensor:
        ctx.adj = adj  # type: ignore[attr-defined]
        return adj @ dense

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx,  # type: ignore[override]
                 grad: torch.Tensor) -> tuple[None, torch.Tensor]:
        return None, ctx.adj @ grad  # type: ignore[attr-defined]


def symmetric_matmul(adj: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
    """``adj @ dense`` with a cheap backward; ``adj`` must be symmetric and constant."""
    return _SymmetricMatmul.apply(adj, dense)
