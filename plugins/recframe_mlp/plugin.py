"""Entry point of the MLP plugin: registers ``neumf`` and ``mlp_ctr``."""

from __future__ import annotations

from recframe.api import ModelSpec, hookimpl
from recframe_mlp.mlp_ctr import build_mlp_ctr
from recframe_mlp.neumf import build_neumf


@hookimpl
def recframe_register_models(registry) -> None:
    registry.add(ModelSpec(
        name="neumf", build=build_neumf, family="mlp",
        description="NeuMF: GMF + MLP towers, pointwise BCE with sampled negatives "
                    "(He et al., WWW 2017)",
    ))
    registry.add(ModelSpec(
        name="mlp_ctr", build=build_mlp_ctr, family="mlp",
        needs=frozenset({"fields"}),
        description="Deep CTR MLP over typed field embeddings (ids, features, context, "
                    "pooled sequences), BCE "
                    "(Covington et al., RecSys 2016; Cheng et al., DLRS 2016)",
    ))
