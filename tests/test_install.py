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
