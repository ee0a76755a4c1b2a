"""The plugin host: built-ins as plugins, entry points, duplicates, broken and misspelled plugins."""

from __future__ import annotations

import json
import sys
import types

import pytest
import tomllib
from conftest import ROOT

from ecgsearch import ArchitectureInfo, OptimizerInfo, hookimpl
from ecgsearch.cli import main
from ecgsearch.errors import PluginError, UserError
from ecgsearch.plugins import BUILTIN_PLUGINS, Registry, build_registries, get_plugin_manager, get_registries


def test_builtins_are_the_entry_points_of_the_wheel():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"]["ecgsearch"] == BUILTIN_PLUGINS


def test_every_kind_has_builtins_and_nothing_is_broken():
    regs = get_registries()
    assert not [b for b in regs.broken], [b.message() for b in regs.broken]
    assert {"resnet", "convnext"} <= set(regs.architectures.names())
    assert {"adamw", "sgd"} <= set(regs.optimizers.names())
    assert "synthetic" in regs.datasets and "multilabel" in regs.tasks and "macro_auroc" in regs.metrics
    assert {"random_forest", "xgboost"} <= set(regs.surrogates.names())
    assert regs.architectures.get("resnet").plugin == "resnet"


def test_unknown_name_suggests_the_close_one():
    with pytest.raises(UserError, match=r"^'resnt' is not a registered architecture \(allowed: .*resnet.*\); did you mean 'resnet'\?$"):
        get_registries().architectures.get("resnt")


def _module(name: str, **attrs) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module
    return module


def test_duplicate_names_name_both_plugins(monkeypatch):
    @hookimpl
    def ecgsearch_register_architectures():
        return [ArchitectureInfo(name="resnet", description="a clash", factory=lambda *a, **k: None)]

    _module("clashing_plugin", ecgsearch_register_architectures=ecgsearch_register_architectures)
    monkeypatch.setenv("ECGSEARCH_PLUGINS", "clashing_plugin")
    with pytest.raises(PluginError) as info:
        build_registries(get_plugin_manager())
    assert str(info.value) == (
        "architecture 'resnet' is registered twice, by plugin 'resnet' and by plugin 'clashing_plugin'; "
        "uninstall one of them or rename the architecture.")


def test_a_plugin_that_fails_to_import_is_named_with_its_fix(monkeypatch):
    monkeypatch.setenv("ECGSEARCH_PLUGINS", "plugin_that_is_not_installed")
    regs = build_registries(get_plugin_manager())
    assert [b.message() for b in regs.broken] == [
        "plugin 'plugin_that_is_not_installed' could not be loaded (ModuleNotFoundError: No module named "
        "'plugin_that_is_not_installed'); fix: pip install plugin_that_is_not_installed"]
    assert "resnet" in regs.architectures  # the engine goes on with the others


def test_a_plugin_whose_import_raises_does_not_take_the_engine_down(monkeypatch, tmp_path):
    (tmp_path / "raising_plugin.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("ECGSEARCH_PLUGINS", "raising_plugin")
    regs = build_registries(get_plugin_manager())
    assert regs.broken[0].name == "raising_plugin"
    assert "RuntimeError: boom at import" in regs.broken[0].error
    assert len(regs.architectures) >= 2


def test_a_misspelled_hook_fails_loudly(monkeypatch):
    @hookimpl
    def ecgsearch_register_architecture():  # missing the final "s"
        return []

    _module("misspelled_plugin", ecgsearch_register_architecture=ecgsearch_register_architecture)
    monkeypatch.setenv("ECGSEARCH_PLUGINS", "misspelled_plugin")
    with pytest.raises(PluginError, match=r"^plugin 'misspelled_plugin' implements a hook that does not exist"):
        get_plugin_manager()


def test_a_hook_returning_the_wrong_record_type_is_rejected(monkeypatch):
    @hookimpl
    def ecgsearch_register_architectures():
        return [OptimizerInfo(name="oops", description="wrong kind", factory=lambda p: None)]

    _module("wrong_type_plugin", ecgsearch_register_architectures=ecgsearch_register_architectures)
    monkeypatch.setenv("ECGSEARCH_PLUGINS", "wrong_type_plugin")
    with pytest.raises(PluginError, match="returned OptimizerInfo from ecgsearch_register_architectures; "
                                          "it must return ArchitectureInfo records"):
        build_registries(get_plugin_manager())


def test_autoload_can_be_disabled(monkeypatch):
    monkeypatch.setenv("ECGSEARCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    pm = get_plugin_manager()
    assert set(BUILTIN_PLUGINS) <= {name for name, _ in pm.list_name_plugin()}


def test_unavailable_item_says_why():
    info = ArchitectureInfo(name="x", description="d", factory="not_a_module:f", requires=("not_a_module",),
                            install_hint="pip install not-a-module")
    assert info.available() == (False, "needs the Python package 'not_a_module' (pip install not-a-module)")


def test_registry_is_generic_and_typed():
    reg: Registry[ArchitectureInfo] = Registry("architecture")
    reg.add(ArchitectureInfo(name="b", description="", factory=print))
    reg.add(ArchitectureInfo(name="a", description="", factory=print))
    assert reg.names() == ["a", "b"] and reg.names("a") == ["a"] and len(reg) == 2


def test_plugins_json_lists_builtins_by_kind(capsys):
    assert main(["plugins", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    kinds = listing["kinds"]
    assert set(kinds) == {"architectures", "optimizers", "schedules", "datasets", "tasks", "metrics", "backends",
                          "surrogates", "schedulers", "searchers", "trackers"}
    names = {kind: {item["name"] for item in items} for kind, items in kinds.items()}
    assert {"resnet", "convnext"} <= names["architectures"] and {"adamw", "sgd"} <= names["optimizers"]
    assert {"fifo", "asha", "pbt"} <= names["schedulers"] and {"random", "surrogate"} <= names["searchers"]
    assert all(set(item) == {"name", "description", "plugin", "usable", "reason"}
               for items in kinds.values() for item in items)


def test_plugins_table_prints(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "resnet" in out and "adamw" in out and "synthetic" in out


def test_an_unknown_name_mentions_the_plugins_that_failed_to_load(monkeypatch, tmp_path):
    from ecgsearch.space import parse_space

    monkeypatch.setenv("ECGSEARCH_PLUGINS", "plugin_that_is_not_installed")
    regs = build_registries(get_plugin_manager())
    with pytest.raises(UserError) as info:
        parse_space("data: {dataset: mimic}\ntask: multilabel\nbudget: {trials: 1, epochs: 1}\n"
                    "space: {architecture: resnet, optimizer: adamw}\n", source="x.yaml", registries=regs)
    assert str(info.value) == (
        "x.yaml:1: data.dataset: 'mimic' is not a registered dataset (plugins 'plugin_that_is_not_installed' "
        f"failed to load: see `ecgsearch plugins`) (allowed: {', '.join(regs.datasets.names())})")


def test_an_explicitly_named_plugin_that_cannot_be_imported_is_an_error(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ECGSEARCH_PLUGINS", raising=False)
    assert main(["-p", "no_such_plugin_mod", "plugins"]) == 2
    assert capsys.readouterr().err == (
        "error: -p no_such_plugin_mod: plugin 'no_such_plugin_mod' could not be loaded (ModuleNotFoundError: No "
        "module named 'no_such_plugin_mod'); fix: pip install no_such_plugin_mod.\n")
    (tmp_path / "raising_cli_plugin.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["-p", "raising_cli_plugin", "plugins"]) == 2
    assert capsys.readouterr().err == (
        "error: -p raising_cli_plugin: plugin 'raising_cli_plugin' could not be loaded (RuntimeError: boom at "
        "import); fix: check that the module imports: python -c 'import raising_cli_plugin'.\n")
