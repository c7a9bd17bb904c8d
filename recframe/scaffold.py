"""``recframe new-plugin NAME``: write a working plugin package to start from.

The skeleton is a complete third-party plugin: ``pyproject.toml`` with the
``recframe`` entry point, ``NAME/plugin.py`` registering a trainable model
called ``NAME`` (matrix factorization with the BPR loss), its Hydra config
``NAME/conf/model/NAME.yaml`` found through the ``recframe_config_searchpath``
hook, tests using :mod:`recframe.testing`, and a README. Its tests pass
whether the package is installed (``pip install -e NAME``) or only on
``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import importlib.util
import keyword
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from recframe.errors import RecframeError

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")


class ScaffoldError(RecframeError):
    """The plugin name is unusable or the target directory already exists."""


PYPROJECT = '''\
[build-system]
requires = ["setuptools>=68", "wheel"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
description = "A recframe plugin: the {name} model."
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["recframe"]

# recframe loads every module of this entry-point group as a plugin.
[project.entry-points.recframe]
{name} = "{name}.plugin"

# The package and its config directories (conf/model is a namespace package).
[tool.setuptools.packages.find]
include = ["{name}*"]

# Ship the Hydra configs inside the wheel (found as pkg://{name}.conf).
[tool.setuptools.package-data]
"*" = ["*.yaml"]

[tool.pytest.ini_options]
testpaths = ["tests"]
addopts = "--strict-markers -ra"
markers = ["slow: longer training runs (deselect with -m 'not slow')"]
filterwarnings = ["ignore:.*isinstance\\\\(treespec, LeafSpec\\\\)` is deprecated.*"]
'''

INIT = '''\
"""{name}: a recframe plugin."""

__version__ = "0.1.0"
'''

PLUGIN = '''\
"""The {name} plugin: registers the ``{name}`` model and its config group.

``{name}`` is matrix factorization trained with the BPR loss (Rendle et al.,
UAI 2009): a small, trainable starting point. Change :class:`{cls}` to make
it yours; ``conf/model/{name}.yaml`` holds its defaults. Import only from
``recframe.api``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from recframe.api import ConfigError, DataInfo, ModelSpec, RecModel, TrainFormat, hookimpl


class {cls}(RecModel):
    """Score ``<p_u, q_i>``; loss ``-log sigmoid(s(u, pos) - s(u, neg))``."""

    # batches of users [B], positive items [B] and sampled negatives [B, num_negatives]
    train_format = TrainFormat.PAIRS

    def __init__(self, n_users: int, n_items: int, embedding_dim: int = 32) -> None:
        super().__init__()
        self.user_emb = nn.Embedding(n_users, embedding_dim)
        self.item_emb = nn.Embedding(n_items, embedding_dim)
        nn.init.normal_(self.user_emb.weight, std=0.1)
        nn.init.normal_(self.item_emb.weight, std=0.1)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        user = self.user_emb(batch["users"])  # [B, d]
        pos = (user * self.item_emb(batch["pos"])).sum(-1, keepdim=True)  # [B, 1]
        neg = (user.unsqueeze(1) * self.item_emb(batch["neg"])).sum(-1)  # [B, n]
        return -nn.functional.logsigmoid(pos - neg).mean()

    def score(self, users: torch.Tensor, context: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.user_emb(users) @ self.item_emb.weight.T  # [B, n_items]


def build(info: DataInfo, cfg: Any) -> {cls}:
    """Build from the ``model`` config node; reject bad values with a ConfigError."""
    dim = cfg.get("embedding_dim", 32)
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ConfigError(f"model.embedding_dim must be a positive integer, got {{dim!r}}")
    return {cls}(info.n_users, info.n_items, dim)


@hookimpl
def recframe_register_models(registry: Any) -> None:
    """Register the ``{name}`` model."""
    registry.add(ModelSpec(name="{name}", build=build, family="cf",
                           description="Matrix factorization with the BPR loss"))


@hookimpl
def recframe_config_searchpath() -> str:
    """Where Hydra finds this plugin's config groups (conf/model/{name}.yaml)."""
    return "pkg://{name}.conf"
'''

CONF_INIT = '''\
"""Hydra config groups of {name} (a package, so pkg://{name}.conf resolves)."""
'''

MODEL_YAML = '''\
# {name}: matrix factorization with the BPR loss. `name` must equal the registry key.
name: {name}
embedding_dim: 32     # latent factors per user and item
batch_size: 1024      # (user, positive, negative) triples per step
lr: 0.005             # Adam learning rate (overrides optim.lr)
'''

TEST = '''\
"""{name} passes recframe's conformance checks (installed or only on PYTHONPATH)."""

import pytest
from recframe.testing import check_model, plugin_manager, run

import {name}.plugin

# The default manager when the package is installed, else one that adds the module.
PM = plugin_manager({name}.plugin)
SYNTHETIC = ("dataset=synthetic", "dataset.n_users=300", "dataset.n_items=200",
             "preprocess=none", "logger=none", "callbacks=none")


def test_{name}_conforms():
    check_model("{name}", pm=PM)


@pytest.mark.slow
def test_{name}_beats_pop():
    ours = run("model={name}", "trainer.max_epochs=15", *SYNTHETIC, pm=PM)
    pop = run("model=pop", *SYNTHETIC, pm=PM)
    assert ours["metrics"]["test"]["ndcg@10"] > pop["metrics"]["test"]["ndcg@10"]
'''

README = '''\
# {dist}

A recframe plugin registering the model `{name}`.

```bash
pip install -e .                      # into the environment that has recframe
recframe plugins                      # lists {name}
recframe run model={name} dataset=synthetic trainer.max_epochs=20
pytest                                # recframe.testing conformance checks
```

- `{name}/plugin.py`: the model and the hook implementations (import only `recframe.api`).
- `{name}/conf/model/{name}.yaml`: its config defaults (`recframe run model={name} \\
  model.embedding_dim=64`), shipped as package data and found through the
  `recframe_config_searchpath` hook.
- `tests/test_{name}.py`: `recframe.testing.check_model` trains it through the normal
  runner path and checks scores, determinism, checkpoints and evaluation modes.

Publish with `python -m build` and `twine upload dist/*`; users then
`pip install {dist}` and recframe finds the plugin through its entry point.
'''


def _class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_") if part) + "Model"


#: what ``recframe new-plugin NAME`` accepts, said in every refusal
ALLOWED_NAMES = (
    "a lowercase Python identifier (letters, digits, underscores; starting with a letter) "
    "that does not start with 'recframe' (built-in plugins' prefix), is not a Python "
    "keyword, a standard-library module or another importable module, and is not a name an "
    "installed plugin already registers (`recframe plugins` lists them)")


def _suggestion(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9_]", "_", name.lower()).strip("_").removeprefix("recframe")
    base = base.strip("0123456789_") or "myrec"
    for candidate in (f"my_{base}", f"{base}_recs", f"{base}_plugin", f"{base}2"):
        if candidate not in taken and not keyword.iskeyword(candidate):
            return candidate
    return "myrec"


def registered_names(pm: Any = None) -> dict[str, tuple[str, str]]:
    """Every name installed plugins register: name -> (kind, plugin that registers it),
    plus the plugins' own names (kind ``plugin``)."""
    from recframe.plugin.manager import KINDS, SINGULAR, default_manager

    pm = pm or default_manager()
    names: dict[str, tuple[str, str]] = {p.name: ("plugin", p.name) for p in pm.plugins()}
    for attr in KINDS:
        registry = getattr(pm, attr)
        for n in registry.names():
            names.setdefault(n, (SINGULAR.get(attr, attr), registry.plugin_of(n)))
    return names


def validate_name(name: str, pm: Any = None) -> None:
    """Raise :class:`ScaffoldError` unless ``name`` can be the package and model name
    (:data:`ALLOWED_NAMES`); each refusal says which rule the name breaks, what is
    allowed, and suggests a free name. ``pm``: the plugin manager whose names are
    taken (default: every installed plugin)."""
    taken = registered_names(pm)
    suggestion = _suggestion(name, set(taken))
    if not NAME_PATTERN.fullmatch(name):
        why = "is not a lowercase Python identifier"
    elif name.startswith("recframe"):
        why = "starts with 'recframe', the prefix of recframe's own packages"
    elif keyword.iskeyword(name):
        why = "is a Python keyword"
    elif name in sys.stdlib_module_names:
        why = "is a standard-library module"
    elif name in taken:
        kind, plugin = taken[name]
        if kind == "model":
            why = (f"is already registered as a model by plugin {plugin!r}; the new plugin "
                   f"registers a model of its own name, and two models of one name stop "
                   f"every command (E403)")
        elif kind == "plugin":
            why = "is the name of an installed plugin"
        else:
            why = f"is already registered as a {kind} by plugin {plugin!r}"
    else:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = True
        if not found:
            return
        why = "is already an importable module; a plugin package of that name would clash"
    raise ScaffoldError(f"plugin name {name!r} {why}. Allowed: {ALLOWED_NAMES}. "
                        f"For example: {suggestion!r}")


def new_plugin(name: str, dest: Path | str = ".") -> Path:
    """Write the plugin skeleton ``dest/NAME/`` and return its path.

    Refuses invalid names (see :func:`validate_name`) and an existing
    ``dest/NAME``. The model registered is called ``NAME``.
    """
    validate_name(name)
    root = Path(dest) / name
    if root.exists():
        raise ScaffoldError(f"{root} already exists; remove it or choose another --dest")
    values = {"name": name, "dist": name.replace("_", "-"), "cls": _class_name(name)}
    files = {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        f"{name}/__init__.py": INIT,
        f"{name}/plugin.py": PLUGIN,
        f"{name}/conf/__init__.py": CONF_INIT,
        f"{name}/conf/model/{name}.yaml": MODEL_YAML,
        f"tests/test_{name}.py": TEST,
    }
    for rel, template in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**values), encoding="utf-8")
    return root


def new_plugin_command(argv: Sequence[str]) -> int:
    """``recframe new-plugin NAME [--dest DIR]``: write the skeleton, print next steps."""
    parser = argparse.ArgumentParser(
        prog="recframe new-plugin",
        description="Create a recframe plugin package registering a model called NAME.")
    parser.add_argument("name", metavar="NAME", help="package and model name, e.g. myrec")
    parser.add_argument("--dest", default=".", help="parent directory (default: .)")
    args = parser.parse_args(list(argv))
    root = new_plugin(args.name, args.dest)
    print(f"created {root}/ with the model {args.name!r}. Next:\n"
          f"  pip install -e {root}\n"
          f"  recframe run model={args.name} dataset=synthetic\n"
          f"  pytest {root / 'tests'}\n"
          f"Tutorial: docs/plugins.md")
    return 0


if __name__ == "__main__":  # pragma: no cover
    try:
        sys.exit(new_plugin_command(sys.argv[1:]))
    except ScaffoldError as exc:
        print(f"recframe: error: {exc}", file=sys.stderr)
        sys.exit(2)
