"""Privacy by configuration: DP-SGD (``privacy=dpsgd``), private closed-form fits
(``privacy=dp_stats``) and the membership-inference audit (``privacy.audit_users``,
metric ``mia_auc``). Models do not change to become private. docs/privacy.md."""

from __future__ import annotations

from typing import Any

from recframe.models.base import TrainFormat
from recframe.privacy.audit import AuditInput, HeldOut, audit_statistics, hold_out_users
from recframe.privacy.settings import PrivacySettings, read_privacy

__all__ = ["AuditInput", "HeldOut", "PrivacySettings", "audit_statistics", "build_private",
           "hold_out_users", "read_privacy"]


def build_private(settings: PrivacySettings, model: Any, data: Any, *, seed: int,
                  max_epochs: int, model_name: str) -> Any:
    """The object ``RecTask.private`` holds for this run, or None (no protection)."""
    if settings.name == "dpsgd":
        from recframe.privacy.dpsgd import DPSGD

        fmt = model.train_format
        kwargs: dict[str, Any] = {}
        if fmt in (TrainFormat.PAIRS, TrainFormat.POINTS):
            kwargs = {"train": data.train, "num_negatives": int(model.num_negatives)}
        elif fmt is TrainFormat.SEQUENCES:
            kwargs = {"history": data.history(("train",)), "max_len": int(model.max_seq_len)}
        elif fmt is TrainFormat.LABELED:
            kwargs = {"labeled": data.labeled.get("train")}
        return DPSGD(settings, model, data, seed=seed, max_epochs=max_epochs,
                     model_name=model_name, batch_kwargs=kwargs)
    if settings.name == "dp_stats":
        from recframe.privacy.stats import PrivateStatistic

        if model.train_format is not TrainFormat.FIT:
            from recframe.errors import ConfigError

            raise ConfigError(
                f"privacy=dp_stats perturbs the statistic a closed-form model is fitted "
                f"from; model {model_name!r} trains by gradient steps: use privacy=dpsgd.")
        return PrivateStatistic(settings, model, int(data.info.n_users), seed, model_name)
    return None
