"""The ``privacy`` config group, read and checked before any data is loaded.

``privacy=none`` (default), ``privacy=dpsgd`` (gradient-trained models) and
``privacy=dp_stats`` (closed-form models). Bad values fail with an error from the
E91x block of docs/errors.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from recframe.errors import ConfigError

MODES = ("none", "dpsgd", "dp_stats")
ACCOUNTANTS = ("rdp", "prv")
GRAD_SAMPLE = ("auto", "vmap", "loop")
USER_STATES = ("shared", "local")
MECHANISMS = ("gaussian", "laplace")


@dataclass(frozen=True)
class PrivacySettings:
    """What ``privacy.*`` asks for. ``epsilon`` is ``inf`` for "no noise"."""

    name: str = "none"
    epsilon: float = math.inf
    delta: float | None = None  # None = auto (1 / number of training users)
    max_grad_norm: float = 1.0
    users_per_step: int = 64
    examples_per_user: int = 8
    accountant: str = "rdp"
    grad_sample: str = "auto"
    mechanism: str = "gaussian"
    max_items_per_user: int = 50
    audit_users: float = 0.0
    #: ``shared``: every parameter under DP-SGD; ``local``: the model's per-user
    #: parameters (``RecModel.per_user_parameters``) train without clipping or noise
    user_state: str = "shared"

    @property
    def active(self) -> bool:
        return self.name != "none"

    def resolved_delta(self, n_users: int) -> float:
        return self.delta if self.delta is not None else 1.0 / max(n_users, 1)

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "audit_users": self.audit_users}
        if self.name == "dpsgd":
            out.update(epsilon_target=_finite(self.epsilon), max_grad_norm=self.max_grad_norm,
                       users_per_step=self.users_per_step,
                       examples_per_user=self.examples_per_user, accountant=self.accountant,
                       unit="user", user_state=self.user_state)
        elif self.name == "dp_stats":
            out.update(epsilon_target=_finite(self.epsilon), mechanism=self.mechanism,
                       max_items_per_user=self.max_items_per_user, unit="user")
        return out


def _finite(x: float) -> float | None:
    """JSON has no infinity: ``inf`` is written as ``null`` (and read back as inf)."""
    return None if math.isinf(x) else float(x)


def _number(node: Any, key: str) -> float:
    value = node.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"privacy.{key} must be a number, got {value!r}")
    return float(value)


def read_privacy(node: Any) -> PrivacySettings:
    """Check ``privacy.*`` and return the settings (``node`` None = no privacy)."""
    if node is None:
        return PrivacySettings()
    name = str(node.get("name", "none"))
    if name not in MODES:
        raise ConfigError(f"privacy.name must be one of {list(MODES)} (privacy=dpsgd for "
                          f"gradient-trained models, privacy=dp_stats for pop/ease/itemknn), "
                          f"got {name!r}")
    audit = node.get("audit_users", 0.0)
    if isinstance(audit, bool) or not isinstance(audit, (int, float)) or not 0 <= audit < 0.5:
        raise ConfigError(
            f"privacy.audit_users={audit!r}: the share of users held out for the "
            f"membership-inference audit must be in [0, 0.5) (0 = no audit; 0.1 holds out "
            f"10% of the users, drawn with the seed).")
    if name == "none":
        return PrivacySettings(audit_users=float(audit))
    eps_raw = node.get("epsilon")
    if eps_raw is None or (isinstance(eps_raw, str) and eps_raw.lower() in ("inf", "none")):
        epsilon = math.inf
    else:
        epsilon = _number(node, "epsilon")
    if not epsilon > 0:
        raise ConfigError(
            f"privacy.epsilon={eps_raw!r}: epsilon must be > 0 (smaller = more private; "
            f"typical 1-8). For no noise set privacy.epsilon=null, or use privacy=none.")
    if name == "dp_stats" and math.isinf(epsilon):
        raise ConfigError(
            "privacy.epsilon=null: privacy=dp_stats releases one noisy statistic and "
            "needs a finite epsilon > 0 (e.g. privacy.epsilon=1); for no noise use "
            "privacy=none.")
    delta_raw = node.get("delta", "auto")
    delta = None
    if delta_raw is not None and str(delta_raw) != "auto":
        delta = _number(node, "delta")
        if not 0 < delta < 1:
            raise ConfigError(
                f"privacy.delta={delta_raw!r}: delta must be in (0, 1) and should be "
                f"well below 1 / number of users; leave privacy.delta=auto (1 / number of "
                f"training users).")
    common = {"name": name, "epsilon": epsilon, "delta": delta, "audit_users": float(audit)}
    if name == "dp_stats":
        mechanism = str(node.get("mechanism", "gaussian"))
        if mechanism not in MECHANISMS:
            raise ConfigError(f"privacy.mechanism must be one of {list(MECHANISMS)}, "
                              f"got {mechanism!r}")
        cap = node.get("max_items_per_user", 50)
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise ConfigError(f"privacy.max_items_per_user={cap!r}: the contribution "
                              f"bound must be a positive integer (e.g. 50).")
        return PrivacySettings(**common, mechanism=mechanism, max_items_per_user=cap)
    clip = _number(node, "max_grad_norm")
    if not clip > 0 or math.isinf(clip):
        raise ConfigError(
            f"privacy.max_grad_norm={node.get('max_grad_norm')!r}: the clipping bound "
            f"must be a finite number > 0 (it bounds each user's gradient; 1.0 is a good "
            f"start). Noise is proportional to it.")
    ints = {}
    for key in ("users_per_step", "examples_per_user"):
        value = node.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"privacy.{key}={value!r} must be a positive integer.")
        ints[key] = value
    accountant = str(node.get("accountant", "rdp"))
    if accountant not in ACCOUNTANTS:
        raise ConfigError(f"privacy.accountant must be one of {list(ACCOUNTANTS)}, "
                          f"got {accountant!r}")
    grad_sample = str(node.get("grad_sample", "auto"))
    if grad_sample not in GRAD_SAMPLE:
        raise ConfigError(f"privacy.grad_sample must be one of {list(GRAD_SAMPLE)}, "
                          f"got {grad_sample!r}")
    user_state = str(node.get("user_state", "shared"))
    if user_state not in USER_STATES:
        raise ConfigError(f"privacy.user_state must be one of {list(USER_STATES)} (shared: "
                          f"every parameter differentially private; local: per-user "
                          f"embeddings kept out of the noise, joint DP), got {user_state!r}")
    return PrivacySettings(**common, max_grad_norm=clip, accountant=accountant,
                           grad_sample=grad_sample, user_state=user_state, **ints)
