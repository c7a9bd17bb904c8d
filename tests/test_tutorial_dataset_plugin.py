"""docs/tutorials/dataset_plugin.md runs: its ```python blocks, in order, in one
namespace, as a reader would paste them; and a dataset without a fingerprint gets its
content's."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

DOC = Path(__file__).resolve().parents[1] / "docs" / "tutorials" / "dataset_plugin.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_tutorial_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 5
    namespace: dict = {"__name__": "tutorial"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{DOC.name}[block {i}]", "exec"), namespace)  # noqa: S102
    assert namespace["results"]["status"] == "ok"


def _plugin(tmp_path: Path, meta: dict) -> object:
    """A dataset ``toy_log`` whose loader gives ``meta``, with its config folder."""
    import types

    from recframe.api import Dataset, DatasetSpec, hookimpl

    conf = tmp_path / "conf" / "dataset"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "toy_log.yaml").write_text("name: toy_log\n")

    def load(cfg) -> Dataset:
        return Dataset(FRAME, name="toy_log", meta=dict(meta))

    return types.SimpleNamespace(
        __name__="toy_log_plugin",
        recframe_register_datasets=hookimpl(
            lambda registry: registry.add(DatasetSpec(name="toy_log", load=load))),
        recframe_config_searchpath=hookimpl(lambda: f"file://{tmp_path / 'conf'}"))


FRAME = pd.DataFrame({"user_id": [u for u in range(30) for _ in range(8)],
                      "item_id": [(u * 3 + j) % 20 for u in range(30) for j in range(8)]})
RUN = ("dataset=toy_log", "model=pop", "preprocess=none", "split=random", "logger=none")


def test_a_dataset_without_a_fingerprint_gets_its_contents(tmp_path):
    from recframe.api import fingerprint_frames
    from recframe.testing import plugin_manager, run

    results = run(*RUN, pm=plugin_manager(_plugin(tmp_path, {})))
    record = results["protocol"]["dataset"]
    assert record["raw_fingerprint"] == fingerprint_frames(FRAME, None, None)
    assert record["raw_fingerprint_source"] == "content"


def test_a_fingerprint_that_is_not_a_string_is_refused(tmp_path):
    import pytest

    from recframe.errors import DataError
    from recframe.testing import plugin_manager, run

    with pytest.raises(DataError, match="a fingerprint must be a non-empty string"):
        run(*RUN, pm=plugin_manager(_plugin(tmp_path, {"fingerprint": 3})))
