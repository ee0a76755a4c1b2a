"""Test-session setup: the fault-injection plugin, a private dataset cache, one local Ray cluster."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED_DATA = ROOT.parent / "shared" / "data"

# Before anything builds the registries: every process of the session (Ray workers included,
# which inherit this environment) loads the test plugin and uses a private dataset cache.
os.environ["ECGSEARCH_PLUGINS"] = "ecg_test_plugins"
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(FIXTURES), os.environ.get("PYTHONPATH", "")]))
sys.path.insert(0, str(FIXTURES))
os.environ.setdefault("ECGSEARCH_CACHE", str(ROOT / ".cache" / "test-datasets"))
os.environ.setdefault("RAY_DEDUP_LOGS", "0")


def challenge_space(folder: Path) -> Path:
    """``folder/challenge.yaml``: a two-trial search on the 10 real Challenge records of ../shared (Georgia,
    500 Hz, 10 s; read at 50 Hz, 8 s, 4 leads), for the tests that need a run with real records."""
    records = SHARED_DATA / "physionet2021" / "sample_records"
    path = folder / "challenge.yaml"
    path.write_text(f"""
name: challenge
data: {{dataset: physionet2021, root: {records}, sampling_rate: 50, seconds: 8, leads: 4, folds: 5, workers: 1}}
task: multilabel
metric: macro_auroc
budget: {{trials: 2, epochs: 2}}
space:
  architecture: {{resnet_tiny: {{channels: {{choice: [8, 16]}}}}}}
  optimizer: {{adamw: {{lr: 1.0e-3}}}}
  batch_size: 4
""")
    return path


def start_ray():
    """The session's local Ray cluster: 2 CPUs, a fixed small object store."""
    import ray

    ray.init(num_cpus=2, object_store_memory=256 * 1024**2, include_dashboard=False,
             log_to_driver=False, configure_logging=False)
    return ray


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray cluster for the whole session (a test that kills it starts it again: ``start_ray``)."""
    ray = start_ray()
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def single_thread():
    """One intra-op torch thread: on a shared 2-core runner, 2 OpenMP threads are many times slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA} (a clone without ../shared); CI has it")
    return SHARED_DATA
