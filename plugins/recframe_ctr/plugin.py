"""Entry point of the CTR plugin: registers lr, fm, deepfm, dcnv2, autoint and din."""

from __future__ import annotations

from recframe.api import ModelSpec, hookimpl
from recframe_ctr.autoint import build_autoint
from recframe_ctr.dcnv2 import build_dcnv2
from recframe_ctr.deepfm import build_deepfm
from recframe_ctr.din import build_din
from recframe_ctr.fm import build_fm
from recframe_ctr.lr import build_lr

#: the data must be encoded into typed fields (recframe.data.fields) for these models
NEEDS = frozenset({"fields"})
MODELS = (
    ("lr", build_lr, "Logistic regression over typed fields (first-order CTR baseline)"),
    ("fm", build_fm, "Factorization machine over typed fields, O(kn) pairwise term "
                     "(Rendle, ICDM 2010)"),
    ("deepfm", build_deepfm, "DeepFM: FM plus an MLP on a shared field embedding "
                             "(Guo et al., IJCAI 2017)"),
    ("dcnv2", build_dcnv2, "DCN-V2: full-rank cross network with a parallel or stacked MLP "
                           "(Wang et al., WWW 2021)"),
    ("autoint", build_autoint, "AutoInt: multi-head self-attention over field embeddings "
                               "with residuals (Song et al., CIKM 2019)"),
    ("din", build_din, "DIN: target attention over the behaviour sequence, then an MLP "
                       "(Zhou et al., KDD 2018); needs a sequence field"),
)


@hookimpl
def recframe_register_models(registry) -> None:
    for name, build, description in MODELS:
        registry.add(ModelSpec(name=name, build=build, family="ctr", needs=NEEDS,
                               description=description))
