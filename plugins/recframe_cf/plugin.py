"""Entry point of the collaborative-filtering plugin: registers pop, bpr, itemknn, ease,
ials, lightgcn and multvae.

Mult-VAE lives here rather than in a plugin of its own: it is a collaborative-filtering
model of the interaction matrix alone (no features, no order), an autoencoder of user rows
like EASE, and a new package would add an entry point for one model."""

from __future__ import annotations

from recframe.api import ModelSpec, hookimpl, lazy


@hookimpl
def recframe_register_models(registry) -> None:
    registry.add(ModelSpec(
        name="pop", build=lazy("recframe_cf.pop:build_pop"), family="cf",
        description="Most popular items (non-personalized baseline, closed form)",
    ))
    registry.add(ModelSpec(
        name="bpr", build=lazy("recframe_cf.bpr:build_bpr"), family="cf",
        description="BPR-MF, matrix factorization with the BPR loss (Rendle et al. 2009)",
    ))
    registry.add(ModelSpec(
        name="itemknn", build=lazy("recframe_cf.itemknn:build_itemknn"), family="cf",
        description="Item-based kNN with shrunk cosine similarity, closed form "
                    "(Sarwar et al., WWW 2001; Deshpande & Karypis, TOIS 2004)",
    ))
    registry.add(ModelSpec(
        name="ease", build=lazy("recframe_cf.ease:build_ease"), family="cf",
        description="EASE, closed-form linear item-item autoencoder (Steck, WWW 2019)",
    ))
    registry.add(ModelSpec(
        name="ials", build=lazy("recframe_cf.ials:build_ials"), family="cf",
        description="iALS, implicit-feedback MF by alternating least squares "
                    "(Hu, Koren & Volinsky, ICDM 2008)",
    ))
    registry.add(ModelSpec(
        name="lightgcn", build=lazy("recframe_cf.lightgcn:build_lightgcn"), family="cf",
        description="LightGCN, linear graph convolution on the user-item graph with the "
                    "BPR loss (He et al., SIGIR 2020)",
    ))
    registry.add(ModelSpec(
        name="multvae", build=lazy("recframe_cf.multvae:build_multvae"), family="cf",
        description="Mult-VAE, variational autoencoder of user rows with a multinomial "
                    "likelihood and KL annealing (Liang et al., WWW 2018)",
    ))
