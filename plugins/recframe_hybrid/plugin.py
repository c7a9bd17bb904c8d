"""Entry point of the hybrid plugin: registers ``lightfm_style`` and ``ensemble``."""

from __future__ import annotations

from recframe.api import ModelSpec, hookimpl, lazy


@hookimpl
def recframe_register_models(registry) -> None:
    registry.add(ModelSpec(
        name="lightfm_style",
        build=lazy("recframe_hybrid.lightfm_style:build_lightfm_style"),
        family="hybrid",
        needs=frozenset({"fields"}),  # features when the data has them; ids otherwise
        description="LightFM-style hybrid MF: id + feature embedding sums, BPR or WARP "
                    "(Kula, CBRecSys 2015; Weston et al., IJCAI 2011)",
    ))
    registry.add(ModelSpec(
        name="ensemble",
        build=lazy("recframe_hybrid.ensemble:build_ensemble"),
        family="hybrid",
        description="Weighted sum of per-user normalized scores of two or more models "
                    "(score fusion, Fox & Shaw 1994)",
    ))
