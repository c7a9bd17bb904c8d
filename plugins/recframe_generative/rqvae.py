"""RQ-VAE: residual quantisation of item embeddings into a tuple of codes (semantic IDs).

Rajput et al., "Recommender Systems with Generative Retrieval", NeurIPS 2023 (TIGER),
section 3.1, after Zeghidour et al., "SoundStream", 2021 and Lee et al., "Autoregressive
Image Generation using Residual Quantization", CVPR 2022. An MLP encoder maps an item's
embedding ``x`` to a latent ``z``; level ``l`` quantises the residual ``r_l`` to its
nearest code ``e_l[c_l]`` and passes on ``r_{l+1} = r_l - e_l[c_l]``; the decoder
reconstructs ``x`` from ``sum_l e_l[c_l]``. Loss: reconstruction plus, per level,
``||sg[r_l] - e||^2 + beta ||r_l - sg[e]||^2`` (codebook and commitment terms), with a
straight-through gradient to the encoder. Codebooks start from k-means of the first
batch's residuals (TIGER's recipe against codebook collapse), and codes no item used
in an epoch are re-seeded from random residuals (dead-code handling).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F


def kmeans(x: torch.Tensor, k: int, iters: int = 20,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """``k`` centroids of the rows of ``x`` (Lloyd's algorithm, k-means++ seeding).
    With fewer distinct rows than ``k`` some centroids repeat rows (dead-code handling
    re-seeds them later)."""
    n = x.shape[0]
    first = torch.randint(n, (1,), generator=generator)
    centroids = [x[first]]
    dist = torch.cdist(x, centroids[0]).squeeze(1) ** 2
    for _ in range(1, k):
        weights = dist.clamp(min=0)
        if float(weights.sum()) <= 0:
            pick = torch.randint(n, (1,), generator=generator)
        else:
            pick = torch.multinomial(weights, 1, generator=generator)
        centroids.append(x[pick])
        dist = torch.minimum(dist, (torch.cdist(x, x[pick]).squeeze(1)) ** 2)
    c = torch.cat(centroids)
    for _ in range(iters):
        assign = torch.cdist(x, c).argmin(1)
        sums = torch.zeros_like(c).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).unsqueeze(1)
        c = torch.where(counts > 0, sums / counts.clamp(min=1), c)
    return c


def mlp(sizes: Sequence[int]) -> nn.Sequential:
    """Linear layers of ``sizes`` with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ResidualQuantizer(nn.Module):
    """``levels`` codebooks of ``codebook_size`` codes of ``dim`` floats."""

    def __init__(self, levels: int, codebook_size: int, dim: int) -> None:
        super().__init__()
        self.codebooks = nn.Parameter(torch.randn(levels, codebook_size, dim) * 0.01)
        self.initialized = False

    @property
    def levels(self) -> int:
        return int(self.codebooks.shape[0])

    def init_kmeans(self, z: torch.Tensor, iters: int, generator: torch.Generator) -> None:
        """Each level's codebook from k-means of that level's residuals of ``z``."""
        residual = z.detach()
        with torch.no_grad():
            for level in range(self.levels):
                self.codebooks[level] = kmeans(residual, self.codebooks.shape[1], iters,
                                               generator)
                codes = torch.cdist(residual, self.codebooks[level]).argmin(1)
                residual = residual - self.codebooks[level][codes]
        self.initialized = True

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """``(quantised z, codes [N, levels], residuals per level)``."""
        residual = z
        quantised = torch.zeros_like(z)
        codes, residuals = [], []
        for level in range(self.levels):
            book = self.codebooks[level]
            c = torch.cdist(residual.detach(), book.detach()).argmin(1)
            q = book[c]
            codes.append(c)
            residuals.append(residual)
            quantised = quantised + q
            residual = residual - q
        return quantised, torch.stack(codes, 1), residuals


class RQVAE(nn.Module):
    """Encoder, residual quantiser, decoder (see the module docstring)."""

    def __init__(self, in_dim: int, hidden: Sequence[int], latent_dim: int, levels: int,
                 codebook_size: int, beta: float = 0.25) -> None:
        super().__init__()
        self.encoder = mlp([in_dim, *hidden, latent_dim])
        self.decoder = mlp([latent_dim, *reversed(hidden), in_dim])
        self.quantizer = ResidualQuantizer(levels, codebook_size, latent_dim)
        self.beta = beta

    def losses(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(total loss, reconstruction loss, codes)`` of a batch."""
        z = self.encoder(x)
        quantised, codes, residuals = self.quantizer(z)
        x_hat = self.decoder(z + (quantised - z).detach())  # straight-through
        recon = F.mse_loss(x_hat, x, reduction="none").sum(1).mean()
        vq = x.new_zeros(())
        residual = z
        for level in range(self.quantizer.levels):
            q = self.quantizer.codebooks[level][codes[:, level]]
            vq = vq + F.mse_loss(q, residuals[level].detach(), reduction="none").sum(1).mean()
            vq = vq + self.beta * F.mse_loss(residual, q.detach(), reduction="none").sum(1).mean()
            residual = residual - q.detach()
        return recon + vq, recon, codes

    @torch.no_grad()
    def codes(self, x: torch.Tensor, batch: int = 8192) -> torch.Tensor:
        """Codes ``[N, levels]`` of ``x`` (eval mode, in batches)."""
        parts = [self.quantizer(self.encoder(chunk))[1] for chunk in x.split(batch)]
        return torch.cat(parts) if parts else x.new_zeros((0, self.quantizer.levels),
                                                          dtype=torch.long)

    @torch.no_grad()
    def reconstruction_error(self, x: torch.Tensor) -> float:
        """Mean squared reconstruction error per item (summed over dimensions)."""
        return float(self.losses(x)[1])

    @torch.no_grad()
    def reseed_dead_codes(self, x: torch.Tensor, generator: torch.Generator) -> int:
        """Codes no row of ``x`` uses get a random row's residual at their level (plus a
        little noise); returns how many were re-seeded."""
        z = self.encoder(x)
        _, codes, residuals = self.quantizer(z)
        size = self.quantizer.codebooks.shape[1]
        reseeded = 0
        for level in range(self.quantizer.levels):
            used = torch.bincount(codes[:, level], minlength=size) > 0
            dead = torch.nonzero(~used).flatten()
            if dead.numel() == 0:
                continue
            pick = torch.randint(x.shape[0], (dead.numel(),), generator=generator)
            noise = 0.01 * torch.randn(dead.numel(), z.shape[1], generator=generator)
            scale = residuals[level].std().clamp(min=1e-6)
            self.quantizer.codebooks[level, dead] = residuals[level][pick] + noise * scale
            reseeded += int(dead.numel())
        return reseeded


def train_rqvae(x: torch.Tensor, *, hidden: Sequence[int], latent_dim: int, levels: int,
                codebook_size: int, beta: float, epochs: int, batch_size: int, lr: float,
                kmeans_iters: int, seed: int) -> tuple[RQVAE, dict[str, float]]:
    """Train an RQ-VAE on the rows of ``x`` and return it (eval mode) with a summary:
    reconstruction error before and after training and the dead codes re-seeded."""
    torch_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        generator = torch.Generator().manual_seed(seed)
        model = RQVAE(x.shape[1], hidden, latent_dim, levels, codebook_size, beta)
        first = x[torch.randperm(x.shape[0], generator=generator)[:max(batch_size,
                                                                        codebook_size)]]
        model.quantizer.init_kmeans(model.encoder(first), kmeans_iters, generator)
        before = model.reconstruction_error(x)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        reseeded = 0
        for epoch in range(epochs):
            order = torch.randperm(x.shape[0], generator=generator)
            for idx in order.split(batch_size):
                loss = model.losses(x[idx])[0]
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            if epoch < epochs - 1 and (epoch + 1) % max(1, epochs // 20) == 0:
                reseeded += model.reseed_dead_codes(x, generator)
        model.eval()
        return model, {"reconstruction_before": round(before, 6),
                       "reconstruction_after": round(model.reconstruction_error(x), 6),
                       "dead_codes_reseeded": reseeded, "epochs": epochs}
    finally:
        torch.random.set_rng_state(torch_state)
