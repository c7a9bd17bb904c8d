"""Entry point of the collaborative-filtering plugin: registers ``pop`` and ``bpr``."""

from __future__ import annotations

from recframe.api import ModelSpec, hookimpl
from recframe_cf.bpr import build_bpr
from recframe_cf.pop import build_pop


@hookimpl
def recframe_register_models(registry) -> None:
    registry.add(ModelSpec(
        name="pop", build=build_pop, family="cf",
        description="Most popular items (non-personalized baseline, closed form)",
    ))
    registry.add(ModelSpec(
        name="bpr", build=build_bpr, family="cf",
        description="BPR-MF, matrix factorization with the BPR loss (Rendle et al. 2009)",
    ))
