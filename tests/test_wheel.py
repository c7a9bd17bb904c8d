"""`conf/` and the built-in plugins ship inside the wheel and work from it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_ships_config_and_plugins(tmp_path):
    shutil.rmtree(REPO / "build", ignore_errors=True)  # no stale files from earlier builds
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(tmp_path)], check=True, timeout=300)
    shutil.rmtree(REPO / "build", ignore_errors=True)
    wheel = next(tmp_path.glob("recframe-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = next(zf.read(n).decode() for n in names if n.endswith("entry_points.txt"))
        zf.extractall(tmp_path / "site")
    for path in ("recframe/conf/config.yaml", "recframe/conf/model/bpr.yaml",
                 "recframe/conf/dataset/ml-100k.yaml", "recframe/conf/preprocess/implicit.yaml",
                 "recframe/conf/experiment/smoke.yaml",
                 "recframe/conf/hparams_search/bpr_optuna.yaml",
                 "recframe_cf/plugin.py", "recframe_metrics/plugin.py"):
        assert path in names, path
    assert "[recframe]" in entry_points and "cf = recframe_cf.plugin" in entry_points
    # Compose and list plugins from the unpacked wheel alone (it comes first on sys.path).
    site = tmp_path / "site"
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import recframe, recframe_cf;"
        "assert recframe.__file__.startswith(sys.argv[1]), recframe.__file__;"
        "assert recframe_cf.__file__.startswith(sys.argv[1]), recframe_cf.__file__;"
        "from recframe.hydra_app import compose_config;"
        "cfg = compose_config(['model=pop', 'split=leave_one_out']);"
        "from recframe.plugin import default_manager;"
        "print(cfg.model.name, cfg.split.name, default_manager().models.names())"
    )
    out = subprocess.run([sys.executable, "-c", script, str(site)], capture_output=True,
                         text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[:2] == ["pop", "leave_one_out"]
