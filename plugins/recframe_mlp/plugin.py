"""Entry point of the MLP plugin: registers ``neumf`` and ``mlp_ctr``."""

from __future__ import annotations

from recframe.api import ModelSpec, hookimpl, lazy


@hookimpl
def recframe_register_models(registry) -> None:
    registry.add(ModelSpec(
        name="neumf", build=lazy("recframe_mlp.neumf:build_neumf"), family="mlp",
        description="NeuMF: GMF + MLP towers, pointwise BCE with sampled negatives "
                    "(He et al., WWW 2017)",
    ))
    registry.add(ModelSpec(
        name="mlp_ctr", build=lazy("recframe_mlp.mlp_ctr:build_mlp_ctr"), family="mlp",
        needs=frozenset({"fields"}),
        description="Deep CTR MLP over typed field embeddings (ids, features, context, "
                    "pooled sequences), BCE "
                    "(Covington et al., RecSys 2016; Cheng et al., DLRS 2016)",
    ))
