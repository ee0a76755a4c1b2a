"""The README's first command installs everything `ecgsearch export` and `bench` need: the runtimes the
export-format backends require are base dependencies, not an extra."""

from __future__ import annotations

import re
import tomllib

from conftest import ROOT

from ecgsearch.deploy.export import _export_format
from ecgsearch.plugins import get_registries


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_the_readme_install_has_the_runtimes_export_and_bench_use() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first = re.search(r"```bash\n(.*?)\n```", readme, re.S).group(1)
    assert "pip install -c ci-constraints.txt -e . " in first  # the base install: no extra
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    base = {_name(r) for r in project["dependencies"]}
    writers = [info for info in get_registries().backends if _export_format(info) in ("onnx", "openvino")]
    assert {info.name for info in writers} >= {"onnxruntime-cpu", "openvino-cpu"}
    for info in writers:  # the modules each writer imports are distributions of the base install
        assert {module.replace("_", "-") for module in info.requires} <= base, (info.name, info.requires)


def test_a_backend_names_its_export_format_as_its_class_does():
    """The registration module says which format a backend writes without importing its class (the CLI
    stays light); the class says it too, and they agree."""
    from ecgsearch_plugins.backends import onnxruntime_backends, openvino_backends
    from ecgsearch_plugins.backends._onnxruntime_impl import OnnxRuntimeBackend
    from ecgsearch_plugins.backends._openvino_impl import OpenVinoBackend

    assert onnxruntime_backends.onnxruntime_backend.export_format == OnnxRuntimeBackend.export_format == "onnx"
    assert openvino_backends.openvino_backend.export_format == OpenVinoBackend.export_format == "openvino"
