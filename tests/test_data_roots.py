"""Space files are data: paths resolve against the file's folder and stay inside ECGSEARCH_DATA_ROOTS."""

from __future__ import annotations

import os
import sys

import pytest

from ecgsearch.errors import SpaceError, UserError
from ecgsearch.space import load_space

BODY = """task: multilabel
budget: {trials: 1, epochs: 1}
space: {architecture: resnet, optimizer: adamw}
"""


def write(folder, data: str):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "space.yaml"
    path.write_text(f"data: {data}\n{BODY}")
    return path


def test_relative_paths_resolve_against_the_file_not_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("ECGSEARCH_DATA_ROOTS", raising=False)
    monkeypatch.chdir(tmp_path)
    spec = load_space(write(tmp_path / "project" / "spaces", "{dataset: physionet2021, root: ../data/wfdb, "
                                                            "cache_dir: cache}"))
    assert spec.data.params["root"] == str(tmp_path / "project" / "data" / "wfdb")
    assert spec.data.cache_dir == str(tmp_path / "project" / "spaces" / "cache")
    home = load_space(write(tmp_path / "h", "{dataset: physionet2021, root: ~/wfdb}"))
    assert home.data.params["root"] == os.path.expanduser("~/wfdb")


def test_paths_outside_the_declared_roots_are_refused(tmp_path, monkeypatch):
    allowed, other = tmp_path / "allowed", tmp_path / "other"
    (allowed / "wfdb").mkdir(parents=True)
    other.mkdir()
    monkeypatch.setenv("ECGSEARCH_DATA_ROOTS", os.pathsep.join([str(allowed), str(tmp_path / "second")]))
    ok = load_space(write(allowed, "{dataset: physionet2021, root: wfdb}"))
    assert ok.data.params["root"] == str(allowed / "wfdb")

    path = write(other, "{dataset: physionet2021, root: /etc}")
    with pytest.raises(SpaceError) as info:
        load_space(path)
    assert str(info.value) == (
        f"{path}:1: data.root: '/etc' is outside the allowed data folders (ECGSEARCH_DATA_ROOTS="
        f"{allowed}{os.pathsep}{tmp_path / 'second'}); move the data under one of them or ask for "
        "ECGSEARCH_DATA_ROOTS to include it")

    climbing = write(allowed / "spaces", "{dataset: physionet2021, root: ../../other}")
    with pytest.raises(SpaceError, match=r"data.root: '\.\./\.\./other' is outside the allowed data folders"):
        load_space(climbing)
    with pytest.raises(SpaceError, match=r"data.cache_dir: '/tmp/elsewhere' is outside the allowed data folders"):
        load_space(write(allowed / "c", "{dataset: synthetic, cache_dir: /tmp/elsewhere}"))


def test_a_symlink_out_of_the_roots_is_refused(tmp_path, monkeypatch):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "escape").symlink_to(tmp_path / "outside", target_is_directory=True)
    monkeypatch.setenv("ECGSEARCH_DATA_ROOTS", str(allowed))
    with pytest.raises(SpaceError, match=r"data.root: 'escape/records' is outside the allowed data folders"):
        load_space(write(allowed, "{dataset: physionet2021, root: escape/records}"))


def test_a_space_file_cannot_name_a_module_to_import(tmp_path, monkeypatch):
    """Plugins come only from installed entry points or modules named by the user (-p/ECGSEARCH_PLUGINS)."""
    monkeypatch.delenv("ECGSEARCH_DATA_ROOTS", raising=False)
    for name in ("os.path", "subprocess", "ecg_exploit_module"):
        path = tmp_path / f"{name}.yaml"
        path.write_text(f"data: {{dataset: synthetic}}\n{BODY.replace('resnet', name)}")
        with pytest.raises(UserError, match=rf"space.architecture: '{name}' is not a registered architecture"):
            load_space(path)
    assert "ecg_exploit_module" not in sys.modules
