"""Experiment tracking (``tracking:``, docs/tracking.md): the section's checks, the tracking plugin's
guard, and one real search logged to a real MLflow server, to TensorBoard event files and to offline W&B
runs, each read back with the tool's own reader."""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from ecgsearch.cli import main
from ecgsearch.engine.callbacks import epoch_metrics
from ecgsearch.errors import SpaceError
from ecgsearch.space import parse_space
from ecgsearch_plugins.tracking import hooks
from ecgsearch_plugins.tracking._shared import final_metrics, output_dir, trial_params

BASE = """name: tracked
data: {dataset: synthetic, records: 40}
task: multilabel
budget: {trials: 2, epochs: 1}
space:
  architecture: {resnet_tiny: {}}
  optimizer: {adamw: {lr: 0.001}}
"""


def installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


# --- the section ------------------------------------------------------------------------------------


def test_trackers_are_off_unless_named():
    assert parse_space(BASE).tracking == {}
    spec = parse_space(BASE + "tracking:\n  mlflow: {tracking_uri: 'sqlite:///m.db', experiment: ecg}\n"
                       "  tensorboard: {}\n  wandb: false\n")
    assert spec.tracking == {"mlflow": {"tracking_uri": "sqlite:///m.db", "experiment": "ecg"}, "tensorboard": {}}


@pytest.mark.skipif(not installed("wandb"), reason="wandb is not installed (pip install 'ecgsearch[wandb]')")
def test_true_turns_a_tracker_on_with_its_defaults():
    spec = parse_space(BASE + "tracking: {wandb: true}\n")
    assert spec.tracking == {"wandb": {}}


@pytest.mark.parametrize("section, message", [
    ("tracking: [mlflow]", "s.yaml:8: tracking: ['mlflow'] is not a mapping of tracker names to their settings"),
    ("tracking: {mlflo: {}}", "s.yaml:8: tracking.mlflo: 'mlflo' is not a registered tracker (allowed: mlflow, "
     "tensorboard, wandb); did you mean 'mlflow'?"),
    ("tracking: {mlflow: {uri: x}}", "s.yaml:8: tracking.mlflow.uri: 'uri' is not a parameter of tracker 'mlflow' "
     "(allowed: tracking_uri, experiment, log_model)"),
    ("tracking: {mlflow: 3}", "s.yaml:8: tracking.mlflow: 3 is not a mapping of settings, true or false; write "
     "mlflow: {} to use its defaults"),
    ("tracking:\n  tensorboard:\n", "s.yaml:9: tracking.tensorboard: None is not a mapping of settings, true or "
     "false; write tensorboard: {} to use its defaults"),
    ("tracking: {mlflow: {log_model: maybe}}", "s.yaml:8: tracking.mlflow.log_model: 'maybe' is not true or false"),
    ("tracking: {tensorboard: {log_dir: 3}}", "s.yaml:8: tracking.tensorboard.log_dir: 3 is not a string or null"),
    ("tracking: {wandb: {mode: onlin}}", "s.yaml:8: tracking.wandb.mode: 'onlin' is not one of 'offline', "
     "'online', 'disabled'"),
])
def test_a_bad_section_is_one_sentence_with_its_line(section, message):
    for package in ("mlflow", "tensorboard", "wandb"):
        if f"{package}:" in section and not installed(package):
            pytest.skip(f"{package} is not installed: its settings are not reached")
    with pytest.raises(SpaceError) as error:
        parse_space(BASE + section + "\n", "s.yaml")
    assert str(error.value) == message


@pytest.mark.parametrize("tracker, package", [("mlflow", "mlflow"), ("tensorboard", "tensorboard"),
                                              ("wandb", "wandb")])
def test_validate_refuses_a_tracker_whose_package_is_missing(tmp_path, capsys, monkeypatch, tracker, package):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == package else real(name, *a))
    path = tmp_path / "space.yaml"
    path.write_text(BASE + f"tracking:\n  {tracker}: {{}}\n")
    assert main(["validate", str(path)]) == 2
    assert capsys.readouterr().err == (f"{path}:9: tracking.{tracker}: tracker '{tracker}' needs the Python "
                                       f"package '{package}' (pip install 'ecgsearch[{tracker}]')\n")


def test_a_finished_runs_copy_is_read_without_its_trackers_packages(tmp_path, monkeypatch):
    """``open_run`` (report, export, bench, prune, scale) reads a run whose tracker is not installed here."""
    from ecgsearch.results.folder import SPACE_COPY, RunFolder

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    (tmp_path / SPACE_COPY).write_text(BASE + "tracking: {mlflow: {experiment: ecg}}\n")
    assert RunFolder(tmp_path).spec.tracking == {"mlflow": {"experiment": "ecg"}}


# --- what the trackers share, and the guard --------------------------------------------------------


def test_mlflow_keys_keep_what_mlflow_accepts_and_replace_the_rest():
    """A per-class column of merged PhysioNet classes holds '|', which MLflow refuses in a metric name."""
    from ecgsearch_plugins.tracking.mlflow_tracker import mlflow_key

    assert mlflow_key("val.auroc.713427006|59118001") == "val.auroc.713427006_59118001"
    assert mlflow_key("val.source.CPSC-Extra.macro_auroc") == "val.source.CPSC-Extra.macro_auroc"
    assert mlflow_key("hp.optimizer.adamw.lr") == "hp.optimizer.adamw.lr"


def test_an_epoch_report_becomes_that_epochs_own_numbers():
    report = {"epoch": 2, "loss": 0.5, "samples_per_second": 100, "val.macro_auroc": 0.9,
              "current.val.macro_auroc": 0.7, "current.val.accuracy": float("nan"), "status": "running"}
    assert epoch_metrics(report) == {"loss": 0.5, "samples_per_second": 100.0, "val.macro_auroc": 0.7,
                                     "val.accuracy": report["current.val.accuracy"]}


def test_rows_and_configs_use_the_results_table_names(tmp_path):
    assert trial_params({"architecture": "resnet", "optimizer.adamw.lr": 0.1}) == {
        "architecture": "resnet", "hp.optimizer.adamw.lr": 0.1}
    row = {"status": "ok", "val.auroc": 0.8, "test.auroc": float("nan"), "cost.flops": 10, "hp.lr": 0.1,
           "epochs": 2, "error": None}
    assert final_metrics(row) == {"val.auroc": 0.8, "cost.flops": 10.0}
    assert output_dir(tmp_path, None, "tb") == tmp_path / "tb"
    assert output_dir(tmp_path, "logs", "tb") == tmp_path / "logs"
    assert output_dir(tmp_path, "/abs/logs", "tb") == Path("/abs/logs")


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def trial_started(self, trial_id, config):
        self.calls.append(f"start {trial_id}")

    def trial_finished(self, trial_id, row):
        self.calls.append(f"end {trial_id}")


class _Broken:
    def trial_started(self, trial_id, config):
        raise ConnectionError("tracking server went away")


def test_a_failing_tracker_is_one_warning_and_the_others_go_on(monkeypatch, caplog):
    good = _Recorder()
    monkeypatch.setattr(hooks, "_active", {"broken": _Broken(), "good": good})
    with caplog.at_level(logging.WARNING, logger=hooks.__name__):
        for trial_id in ("t000", "t001"):
            hooks.ecgsearch_trial_started(trial_id=trial_id, config={})
            hooks.ecgsearch_trial_result(trial_id=trial_id, epoch=1, metrics={})  # not implemented: skipped
            hooks.ecgsearch_trial_finished(trial_id=trial_id, row={})
    assert [r.getMessage() for r in caplog.records] == [
        "tracker broken failed in trial_started (ConnectionError: tracking server went away); the search goes on "
        "without it"]
    assert good.calls == ["start t000", "end t000", "start t001", "end t001"]


def test_a_tracker_that_cannot_start_is_one_warning(monkeypatch, caplog):
    def refuse(*args, **kwargs):
        raise PermissionError("no write access")

    registries = SimpleNamespace(trackers=SimpleNamespace(get=lambda name: SimpleNamespace(create=refuse)))
    monkeypatch.setattr(hooks.ecgsearch, "get_registries", lambda: registries)
    monkeypatch.setattr(hooks, "_active", {})
    with caplog.at_level(logging.WARNING, logger=hooks.__name__):
        hooks.ecgsearch_search_started(spec=SimpleNamespace(tracking={"tensorboard": {}}), out_dir=Path("."))
    assert hooks._active == {}
    assert [r.getMessage() for r in caplog.records] == [
        "tracker tensorboard could not start (PermissionError: no write access); the search goes on without it"]


def test_the_documented_third_party_tracker_registers_parses_and_runs(tmp_path, monkeypatch, capsys):
    from conftest import ROOT

    from ecgsearch.plugins import build_registries, get_plugin_manager

    section = (ROOT / "docs" / "plugins.md").read_text().split("\n### ecgsearch_register_trackers\n", 1)[1]
    (tmp_path / "print_tracker.py").write_text(section.split("```python\n", 1)[1].split("```", 1)[0])
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("ECGSEARCH_PLUGINS", "ecg_test_plugins,print_tracker")
    registries = build_registries(get_plugin_manager())
    with pytest.raises(SpaceError, match=r"tracking.print.prefx: 'prefx' is not a parameter of tracker 'print' "
                                         r"\(allowed: prefix\)"):
        parse_space(BASE + "tracking: {print: {prefx: x}}\n", registries=registries)
    spec = parse_space(BASE + "tracking: {print: {prefix: ECG}}\n", registries=registries)
    monkeypatch.setattr(hooks.ecgsearch, "get_registries", lambda: registries)
    monkeypatch.setattr(hooks, "_active", {})
    hooks.ecgsearch_search_started(spec=spec, out_dir=tmp_path)
    hooks.ecgsearch_trial_result(trial_id="t000", epoch=1, metrics={"loss": 0.5})
    hooks.ecgsearch_search_finished(spec=spec, out_dir=tmp_path, results=None)
    assert capsys.readouterr().out == "ECG t000 1 0.5\n"


# --- one real search, read back ---------------------------------------------------------------------

SEARCH = """name: tracked
seed: 1
data: {{dataset: synthetic, records: 120, sampling_rate: 50, seconds: 4, leads: [I, II, V1, V5]}}
task: multilabel
budget: {{trials: 2, epochs: 2}}
space:
  architecture: {{resnet_tiny: {{channels: {{choice: [8, 16]}}}}}}
  optimizer: {{adamw: {{lr: 3.0e-3}}}}
  batch_size: 16
tracking:
{tracking}
"""


CHANNELS = "hp.architecture.resnet_tiny.channels"
# the venv's own executable first: the tests may run without the venv on PATH
MLFLOW = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or shutil.which("mlflow")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, server: subprocess.Popen, seconds: float = 90.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"mlflow server did not answer {url} within {seconds:.0f} s")


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real MLflow tracking server on a free localhost port: a sqlite store, artifacts served from a folder."""
    if not installed("mlflow") or MLFLOW is None:
        yield None  # the MLflow tests skip, saying which is missing
        return
    folder = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    command = [MLFLOW, "server", "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
               "--serve-artifacts", "--artifacts-destination", str(folder / "artifacts")]
    with open(folder / "server.log", "wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    try:
        yield f"http://127.0.0.1:{port}", server  # tracked_run waits for it, while Ray starts
    finally:
        server.terminate()
        server.wait(timeout=30)


def _ready(server: tuple[str, subprocess.Popen] | None) -> str | None:
    if server is None:
        return None
    uri, process = server
    _wait_for(f"{uri}/health", process)
    return uri


@pytest.fixture(scope="module")
def tracked_run(mlflow_server, ray_session, single_thread, tmp_path_factory):
    """One two-trial, two-epoch search logged by every tracker whose package is installed."""
    from ecgsearch.engine import run_search
    from ecgsearch.space import load_space

    uri = _ready(mlflow_server)
    trackers = {"mlflow": f"{{tracking_uri: '{uri}', experiment: tracked-test}}",
                "tensorboard": "{}", "wandb": "{project: ecg-tests, group: g1}"}
    trackers = {name: settings for name, settings in trackers.items() if installed(name)}
    if uri is None:
        trackers.pop("mlflow", None)
    if not trackers:
        pytest.skip("none of mlflow, tensorboard, wandb is installed")
    tmp = tmp_path_factory.mktemp("tracked")
    path = tmp / "tracked.yaml"
    path.write_text(SEARCH.format(tracking="\n".join(f"  {n}: {s}" for n, s in trackers.items())))
    started = time.perf_counter()
    outcome = run_search(load_space(path), tmp / "run")
    print(f"tracked search: {time.perf_counter() - started:.1f} s")
    return outcome


def _needs(package: str) -> None:
    if not installed(package):
        pytest.skip(f"{package} is not installed (pip install 'ecgsearch[{package}]')")
    if package == "mlflow" and MLFLOW is None:
        pytest.skip("the mlflow executable is not installed (it starts the tracking server the tests log to)")


@pytest.mark.ray
def test_the_search_itself_is_unchanged(tracked_run):
    frame = tracked_run.results
    assert len(frame) == 2 and set(frame["status"]) == {"ok"}, frame[["status", "error"]]


@pytest.mark.ray
def test_mlflow_holds_a_parent_run_and_a_nested_run_per_trial(tracked_run, mlflow_server):
    _needs("mlflow")
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server[0])
    experiment = client.get_experiment_by_name("tracked-test")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.info.run_name == "tracked"
    assert {"space_file": "tracked.yaml", "seed": "1", "algorithm": "random", "metric": "macro_auroc",
            "trials": "2", "epochs": "2"}.items() <= parent.data.params.items()
    nested = {r.data.tags["ecgsearch.trial_id"]: r for r in runs if r.data.tags.get("mlflow.parentRunId")
              == parent.info.run_id}
    frame = tracked_run.results.set_index("trial_id")
    assert set(nested) == set(frame.index)
    for trial_id, run in nested.items():
        row = frame.loc[trial_id]
        assert run.info.status == "FINISHED" and run.data.tags["status"] == "ok"
        assert run.data.params["architecture"] == "resnet_tiny"
        assert run.data.params[CHANNELS] == str(row[CHANNELS])
        assert run.data.params["hp.batch_size"] == "16"
        for series in ("epoch/loss", "epoch/val.macro_auroc"):
            history = client.get_metric_history(run.info.run_id, series)
            assert sorted(m.step for m in history) == [1, 2], series
        assert run.data.metrics["val.macro_auroc"] == pytest.approx(row["val.macro_auroc"])
        assert run.data.metrics["cost.params"] == row["cost.params"]
        assert any(k.startswith("test.") for k in run.data.metrics)


@pytest.mark.ray
def test_mlflow_holds_the_space_file_and_the_best_trials_onnx_model(tracked_run, mlflow_server, tmp_path):
    _needs("mlflow")
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server[0])
    experiment = client.get_experiment_by_name("tracked-test")
    parent = next(r for r in client.search_runs([experiment.experiment_id])
                  if "mlflow.parentRunId" not in r.data.tags)
    assert "tracked.yaml" in {a.path for a in client.list_artifacts(parent.info.run_id)}
    model = {a.path for a in client.list_artifacts(parent.info.run_id, "best_model")}
    assert {"best_model/model.onnx", "best_model/model_card.json"} <= model
    frame = tracked_run.results
    best = frame.loc[frame["val.macro_auroc"].idxmax(), "trial_id"]
    assert parent.data.tags["ecgsearch.best_trial"] == best
    local = client.download_artifacts(parent.info.run_id, "best_model/model.onnx", str(tmp_path))
    import onnx

    onnx.checker.check_model(onnx.load(local))


def test_a_resumed_search_continues_its_mlflow_parent_run(mlflow_server, tmp_path, caplog):
    _needs("mlflow")
    from mlflow import MlflowClient

    from ecgsearch.space import load_space
    from ecgsearch_plugins.tracking.mlflow_tracker import PARENT_FILE, MlflowTracker

    uri = _ready(mlflow_server)
    path = tmp_path / "resumed.yaml"
    path.write_text(SEARCH.format(tracking="  mlflow: {experiment: resumed-test}"))
    spec, out = load_space(path), tmp_path / "run"
    row = {"status": "ok", "epochs": 2, "val.macro_auroc": 0.75}
    first = MlflowTracker(spec, out, tracking_uri=uri, experiment="resumed-test", log_model=False)
    first.close_trial(first.open_trial("t0", {"architecture": "resnet_tiny"}), "t0", row)
    interrupted = first.open_trial("t1", {"architecture": "resnet_tiny"})  # the driver is killed here
    second = MlflowTracker(spec, out, tracking_uri=uri, experiment="resumed-test", log_model=False)  # --resume
    assert second.parent == first.parent and second.trial_runs == {"t0": first.trial_runs["t0"]}
    second.close_trial(second.open_trial("t1", {"architecture": "resnet_tiny"}), "t1", row)
    second.close_search(None)
    client = MlflowClient(uri)
    runs = client.search_runs([second.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert [p.info.run_id for p in parents] == [first.parent] and parents[0].info.status == "FINISHED"
    assert parents[0].data.params["space_file"] == "resumed.yaml"  # logged once, by the search that started it
    nested = sorted((r.data.tags["ecgsearch.trial_id"], r.info.status) for r in runs if r not in parents)
    assert nested == [("t0", "FINISHED"), ("t1", "FINISHED"), ("t1", "KILLED")]
    assert client.get_run(interrupted).info.status == "KILLED"
    # a folder naming a run this store does not hold starts a new parent run, and says so
    (out / PARENT_FILE).write_text('{"run_id": "0123456789abcdef0123456789abcdef"}')
    with caplog.at_level(logging.WARNING):
        third = MlflowTracker(spec, out, tracking_uri=uri, experiment="resumed-test", log_model=False)
    assert third.parent != first.parent
    assert "names a parent run this tracking store does not hold" in caplog.text
    assert third.parent in (out / PARENT_FILE).read_text()


@pytest.mark.ray
def test_tensorboard_holds_per_epoch_scalars_and_hparams(tracked_run):
    _needs("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for trial_id in tracked_run.results["trial_id"]:
        events = EventAccumulator(str(Path(tracked_run.out_dir) / "tensorboard" / trial_id))
        events.Reload()
        assert [s.step for s in events.Scalars("epoch/loss")] == [1, 2]
        assert [s.step for s in events.Scalars("epoch/val.macro_auroc")] == [1, 2]
        assert "val.macro_auroc" in events.Tags()["scalars"]  # the final metric, for the HParams dashboard
        assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")


WANDB_BLOCK = 32768  # a .wandb file: a 7-byte header, then LevelDB-log blocks of chunked protobuf records


def wandb_records(path: Path):
    """The ``wandb_internal_pb2.Record``s of an offline run's ``run-<id>.wandb`` (W&B ships no Python reader)."""
    from wandb.proto import wandb_internal_pb2

    data, pos, chunks = path.read_bytes(), 7, []
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        left = WANDB_BLOCK - pos % WANDB_BLOCK
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7]) if left >= 7 else (0, 0, 0)
        if length == 0 and kind == 0:  # a block's zero padding
            pos += left
            continue
        chunks.append(data[pos + 7:pos + 7 + length])
        pos += 7 + length
        if kind in (1, 4):  # a full record, or a record's last chunk
            record = wandb_internal_pb2.Record()
            record.ParseFromString(b"".join(chunks))
            chunks = []
            yield record


def _items(update) -> dict:
    return {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in update}


def wandb_run(path: Path) -> dict:
    """An offline run's name, group, config, history rows, final summary and exit code, read from its file."""
    run = {"history": [], "summary": {}}
    for record in wandb_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.update(name=record.run.display_name, group=record.run.run_group, project=record.run.project,
                       config=_items(record.run.config.update))
        elif kind == "history":
            run["history"].append(_items(record.history.item))
        elif kind == "summary":
            run["summary"].update(_items(record.summary.update))
        elif kind == "exit":
            run["exit_code"] = record.exit.exit_code
    return run


@pytest.mark.ray
def test_wandb_offline_runs_hold_config_history_and_summary(tracked_run):
    _needs("wandb")
    files = sorted((Path(tracked_run.out_dir) / "wandb").glob("offline-run-*/run-*.wandb"))
    runs = {run["name"]: run for run in map(wandb_run, files)}
    frame = tracked_run.results.set_index("trial_id")
    assert set(runs) == set(frame.index)
    for trial_id, run in runs.items():
        row = frame.loc[trial_id]
        assert run["project"] == "ecg-tests" and run["group"] == "g1" and run["exit_code"] == 0
        assert run["config"]["architecture"] == "resnet_tiny" and run["config"]["hp.batch_size"] == 16
        assert run["config"][CHANNELS] == row[CHANNELS]
        assert [h["_step"] for h in run["history"]] == [1, 2] and all("epoch/loss" in h for h in run["history"])
        assert run["summary"]["status"] == "ok"
        assert run["summary"]["val.macro_auroc"] == pytest.approx(row["val.macro_auroc"])
