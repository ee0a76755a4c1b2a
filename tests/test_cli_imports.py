"""The CLI answers fast: ``--help``, ``plugins`` and ``validate`` import no heavy package (issue 18 item 5).

Each command runs in a fresh interpreter that records which modules it imported; none of ``HEAVY`` may be
among them. Plugins describe themselves without those packages (a registration module holds the info
record, its implementation is imported on first use) and the space-file check needs none of them, while
the output is the same as in a process that has imported everything (this one). The timings are in
docs/benchmarks.md (``tests/benchmarks/bench_cli_startup.py``).
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ecgsearch.cli import main
from ecgsearch.infos import BackendInfo
from ecgsearch.plugins import get_registries
from ecgsearch.train.analytic import AnalyticFactory

ROOT = Path(__file__).resolve().parent.parent
SPACES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "spaces").glob("*.yaml"))
# what takes a second or more to import, and what only training, searching, measuring or reporting needs
HEAVY = ("torch", "ray", "onnxruntime", "openvino", "onnx", "nncf", "xgboost", "neurokit2", "sklearn", "scipy",
         "pandas", "pyarrow", "matplotlib", "plotly", "optuna")
# runs the CLI on the arguments, then writes the names of the imported modules to the file $MODULES_FILE
RUNNER = """
import json, os, sys
from ecgsearch.cli.app import main
try:
    code = main(sys.argv[1:])
except SystemExit as stop:
    code = stop.code
with open(os.environ["MODULES_FILE"], "w") as out:
    json.dump(sorted(sys.modules), out)
sys.exit(code)
"""


def run_cli(tmp_path: Path, *args: str, test_plugin: bool = False) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """The CLI in a fresh interpreter (in the repository, as a user runs it): its result and imported modules.

    test_plugin: also load the tests' own plugin (tests/conftest.py), a third-party plugin that imports torch
    at the top; without it, the built-ins and the installed plugins only."""
    modules = tmp_path / "modules.json"
    env = {**os.environ, "MODULES_FILE": str(modules), "COLUMNS": "200"}
    if not test_plugin:
        env.pop("ECGSEARCH_PLUGINS", None)
    done = subprocess.run([sys.executable, "-c", RUNNER, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    return done, set(json.loads(modules.read_text()))


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(name for name in HEAVY if name in modules)


@pytest.mark.parametrize("args", [
    ("--help",),
    ("plugins",),
    ("plugins", "--json"),
    ("plugins", "--params"),
    ("plugins", "--params", "--markdown", "--kind", "searchers"),
    ("validate", *SPACES),
], ids=["help", "plugins", "plugins-json", "plugins-params", "plugins-params-markdown", "validate-shipped-spaces"])
def test_a_fast_command_imports_no_heavy_package(tmp_path, args):
    done, modules = run_cli(tmp_path, *args)
    assert done.returncode == 0, done.stderr
    assert heavy_in(modules) == [], f"ecgsearch {' '.join(args)} imported {heavy_in(modules)}"
    assert "ecgsearch_plugins.architectures.resnet" in modules or args == ("--help",)  # the plugins were loaded


def test_validate_prints_what_a_process_with_everything_imported_prints(tmp_path, capsys, monkeypatch):
    import torch  # noqa: F401  (this process has the heavy packages; the subprocess must not need them)

    done, _ = run_cli(tmp_path, "validate", *SPACES)
    monkeypatch.chdir(ROOT)
    assert main(["validate", *SPACES]) == 0
    assert done.stdout == capsys.readouterr().out
    assert done.stdout.splitlines()[0].startswith(f"{SPACES[0]}: ok (")
    assert len(done.stdout.splitlines()) == len(SPACES)


def test_refused_space_files_are_the_same_sentences_without_heavy_imports(tmp_path, capsys):
    """One file the parser refuses (an even kernel), one the architectures' own argument checks refuse (heads
    that do not divide the width: ``AnalyticFactory.spec``, run without building anything)."""
    text = (ROOT / "spaces" / "quickstart.yaml").read_text()
    even = tmp_path / "even_kernel.yaml"
    even.write_text(text.replace("kernel: {choice: [7, 9]}", "kernel: {choice: [8, 9]}"))
    unbuildable = tmp_path / "unbuildable.yaml"
    unbuildable.write_text(text.replace("resnet:   {depth: {choice: [8, 10]}, channels: {choice: [16, 24]}, "
                                        "kernel: {choice: [7, 9, 15]}}", "transformer: {width: 30, heads: 4}"))
    assert even.read_text() != text and unbuildable.read_text() != text
    done, modules = run_cli(tmp_path, "validate", str(even), str(unbuildable))
    assert done.returncode == 2 and heavy_in(modules) == []
    assert main(["validate", str(even), str(unbuildable)]) == 2
    assert done.stderr == capsys.readouterr().err
    lines = done.stderr.splitlines()
    assert len(lines) == 2 and "kernel" in lines[0] and "heads=4 does not divide width=30" in lines[1]


def test_plugins_lists_what_the_registries_hold(tmp_path):
    """Also a third-party plugin that imports torch at the top (the tests' own): listed, only slower."""
    done, modules = run_cli(tmp_path, "plugins", "--json", test_plugin=True)
    assert "torch" in modules and "ecg_test_plugins" in modules
    listing = json.loads(done.stdout)
    regs = get_registries()
    assert listing["plugins"] == regs.plugins and listing["devices_checked"] is False
    for kind, registry in regs.by_kind().items():
        expected = [{"name": info.name, "description": info.description, "plugin": info.plugin,
                     "usable": info.available()[0], "reason": info.available()[1]} for info in registry]
        assert listing["kinds"][kind] == expected, kind


def test_plugins_devices_also_checks_each_backends_device(capsys):
    from ecgsearch.latency.backend import backend_status

    assert main(["plugins", "--json", "--devices"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["devices_checked"] is True
    for item in listing["kinds"]["backends"]:
        usable, reason = backend_status(get_registries().backends.get(item["name"]))
        assert (item["usable"], item["reason"]) == (usable, reason), item["name"]


def test_the_table_says_the_backends_devices_were_not_checked(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "installed" in out and "--devices" in out


def test_every_built_in_registration_module_imports_no_heavy_package(tmp_path):
    from ecgsearch.plugins import BUILTIN_PLUGINS

    code = ("import json, sys; [__import__(m) for m in sys.argv[2:]]; "
            "json.dump(sorted(sys.modules), open(sys.argv[1], 'w'))")
    out = tmp_path / "modules.json"
    subprocess.run([sys.executable, "-c", code, str(out), *BUILTIN_PLUGINS.values()], cwd=ROOT, check=True,
                   timeout=120)
    assert heavy_in(set(json.loads(out.read_text()))) == []


def test_each_architecture_resolves_its_network_when_built():
    """The built-ins name their network as a ``"module:attr"`` reference (imported when a model is built); every
    reference resolves, and the model is built from it."""
    import torch

    checked = 0
    for info in get_registries().architectures:
        factory = info.load()
        while hasattr(factory, "func"):  # a functools.partial variant
            factory = factory.func
        if not isinstance(factory, AnalyticFactory):
            continue
        assert callable(factory.model) and callable(factory.costs), info.name
        model = info.create(2, 2000, 3)
        assert isinstance(model, torch.nn.Module) and isinstance(model, factory.model), info.name
        checked += 1
    assert checked >= 10


def test_a_backend_factory_creates_its_backend_on_first_use():
    from ecgsearch.latency.backend import LatencyBackend

    info = get_registries().backends.get("torch-cpu")
    assert isinstance(info, BackendInfo)
    assert isinstance(info.create(), LatencyBackend)


def test_the_surrogate_searchers_declared_defaults_are_its_own():
    """``plugins/searchers.py`` declares the surrogate searcher's option defaults so that listing them imports no
    Ray Tune; they must stay those of ``SurrogateSearcher``'s signature."""
    from ecgsearch.search.surrogate import SurrogateSearcher
    from ecgsearch_plugins.searchers import SURROGATE_DEFAULTS, SURROGATE_PARAMS

    own = {p.name: p.default for p in inspect.signature(SurrogateSearcher).parameters.values()
           if p.name in SURROGATE_PARAMS}
    assert SURROGATE_DEFAULTS == own
    assert list(SURROGATE_DEFAULTS) == list(own)
