"""The docs keep up with the code: every hook has a section, the plugin example works."""

from __future__ import annotations

import re
import sys
import types

from conftest import ROOT

from ecgsearch import hookspecs
from ecgsearch.plugins import build_registries, get_plugin_manager

PLUGIN_DOC = (ROOT / "docs" / "plugins.md").read_text()


def test_every_hook_has_a_documented_section():
    hooks = [name for name in dir(hookspecs) if name.startswith("ecgsearch_")]
    assert len(hooks) >= 11
    missing = [h for h in hooks if f"\n### {h}\n" not in PLUGIN_DOC]
    assert not missing, f"docs/plugins.md lacks a section for {missing}"
    for hook in hooks:
        assert getattr(hookspecs, hook).__doc__, f"{hook} has no docstring"


def test_the_first_plugin_example_registers_and_builds(monkeypatch):
    code = re.search(r"`ecgsearch_meanlinear.py`:\n\n```python\n(.*?)```", PLUGIN_DOC, re.S).group(1)
    module = types.ModuleType("doc_example_plugin")
    exec(compile(code, "docs/plugins.md", "exec"), module.__dict__)
    monkeypatch.setitem(sys.modules, "doc_example_plugin", module)
    monkeypatch.setenv("ECGSEARCH_PLUGINS", "doc_example_plugin")
    info = build_registries(get_plugin_manager()).architectures.get("meanlinear")
    import torch

    model = info.create(12, 1000, 5, hidden=4)
    assert model(torch.zeros(2, 12, 1000)).shape == (2, 5)


def test_the_space_reference_names_every_distribution():

    reference = (ROOT / "docs" / "space-file.md").read_text()
    for name in ("choice", "uniform", "loguniform", "randint", "quniform", "qloguniform", "qrandint", "grid"):
        assert f"`{name}`" in reference, name
