"""A third-party plugin, built and installed as its own distribution, is listed and usable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from ecgsearch.results import read_results

pytestmark = pytest.mark.slow

PLUGIN = '''
"""An architecture shipped in a separate distribution."""
import torch
from torch import nn

from ecgsearch import ArchitectureInfo, hookimpl


class MeanLinear(nn.Module):
    def __init__(self, in_leads, num_outputs, hidden):
        super().__init__()
        self.conv = nn.Conv1d(in_leads, hidden, 9, padding=4)
        self.head = nn.Linear(hidden, num_outputs)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean(-1))


def build(in_leads, num_samples, num_outputs, *, hidden=8):
    return MeanLinear(in_leads, num_outputs, hidden)


@hookimpl
def ecgsearch_register_architectures():
    return [ArchitectureInfo(name="meanlinear", description="a conv and a linear head (third-party test plugin)",
                             factory=build, default_space={"hidden": {"choice": [4, 8]}})]
'''

PYPROJECT = '''
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "ecgsearch-meanlinear"
version = "0.0.1"

[project.entry-points.ecgsearch]
meanlinear = "ecgsearch_meanlinear"
'''

SPACE = """
name: thirdparty
data: {dataset: synthetic, records: 80, sampling_rate: 50, seconds: 4, leads: [I, II]}
task: multilabel
budget: {trials: 2, epochs: 1}
space:
  architecture: {meanlinear: {default: true}}
  optimizer: {adamw: {lr: 1.0e-3}}
"""


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory):
    """Build a wheel of the tiny plugin and install it into a private target folder."""
    root = tmp_path_factory.mktemp("plugin")
    (root / "pkg").mkdir()
    (root / "pkg" / "pyproject.toml").write_text(PYPROJECT)
    (root / "pkg" / "ecgsearch_meanlinear.py").write_text(textwrap.dedent(PLUGIN))
    target = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(root / "pkg")], check=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]))
    env.pop("ECGSEARCH_PLUGINS", None)  # found through its entry point only
    env.pop("RAY_ADDRESS", None)
    return env


def _cli(*args: str, env: dict, timeout: int = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ecgsearch.cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_the_plugin_is_listed_by_kind(installed_plugin):
    listed = _cli("plugins", "--json", env=installed_plugin)
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    item = next(i for i in data["kinds"]["architectures"] if i["name"] == "meanlinear")
    assert item == {"name": "meanlinear", "description": "a conv and a linear head (third-party test plugin)",
                    "plugin": "meanlinear", "usable": True, "reason": ""}
    assert "meanlinear" in data["plugins"] and not data["broken"]


def test_the_plugin_is_usable_from_a_space_file(installed_plugin, tmp_path):
    space = tmp_path / "thirdparty.yaml"
    space.write_text(SPACE)
    assert _cli("validate", str(space), env=installed_plugin).returncode == 0
    run = _cli("run", str(space), "--out", str(tmp_path / "out"), env=installed_plugin, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    frame = read_results(tmp_path / "out")
    assert list(frame["architecture"]) == ["meanlinear", "meanlinear"] and set(frame["status"]) == {"ok"}
    assert set(frame["hp.architecture.meanlinear.hidden"]) <= {4, 8}


def test_without_the_plugin_the_space_file_is_rejected(tmp_path):
    space = tmp_path / "thirdparty.yaml"
    space.write_text(SPACE)
    env = dict(os.environ)
    env.pop("ECGSEARCH_PLUGINS", None)
    checked = _cli("validate", str(space), env=env)
    assert checked.returncode == 2
    assert checked.stderr.startswith(f"{space}:7: space.architecture.meanlinear: 'meanlinear' is not a registered")
