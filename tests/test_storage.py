"""Results in a storage URI (pyarrow filesystems): tested with file://, the code path s3:// and gs:// take."""

from __future__ import annotations

import pytest

from ecgsearch.engine import run_search
from ecgsearch.engine.storage import is_uri, open_run_storage, staging_folder
from ecgsearch.errors import UserError
from ecgsearch.results import read_results
from ecgsearch.space import load_space

pytestmark = pytest.mark.ray


def test_a_uri_run_lands_in_the_uri_and_resumes_from_it(ray_session, tmp_path, monkeypatch):
    monkeypatch.setenv("ECGSEARCH_STAGING", str(tmp_path / "staging"))
    space = tmp_path / "uri.yaml"
    space.write_text("""
name: uri
data: {dataset: synthetic, records: 120, sampling_rate: 50, seconds: 4, leads: [I, II, V1, V5]}
task: multilabel
budget: {trials: 2, epochs: 1}
space: {architecture: {logged_tiny: {}}, optimizer: {adamw: {lr: 1.0e-3}}}
""")
    bucket = tmp_path / "bucket"
    uri = f"file://{bucket}/runs/uri"
    spec = load_space(space)
    run_search(spec, uri)
    frame = read_results(bucket / "runs" / "uri")  # the table is at the URI, not only in staging
    assert len(frame) == 2 and set(frame["status"]) == {"ok"}
    assert (bucket / "runs" / "uri" / "space.yaml").is_file() and (bucket / "runs" / "uri" / "tune").is_dir()
    for trial_id in frame["trial_id"]:
        assert (bucket / "runs" / "uri" / "trials" / trial_id / "best.pt").is_file()

    with pytest.raises(UserError, match=r"runs/uri: this location already holds a run; pass --resume"):
        run_search(spec, uri)
    staging = staging_folder(uri)
    (staging / "results.parquet").unlink()  # a fresh machine: resume reads everything from the URI
    run_search(spec, uri, resume=True)
    assert read_results(bucket / "runs" / "uri").equals(frame)


def test_uri_checks(tmp_path, monkeypatch):
    monkeypatch.setenv("ECGSEARCH_STAGING", str(tmp_path / "staging"))
    assert is_uri("s3://bucket/x") and is_uri("gs://b/x") and is_uri("file:///tmp/x")
    assert not is_uri("/shared/runs/x") and not is_uri("runs/x")
    with pytest.raises(UserError, match=r"there is no run to resume here"):
        open_run_storage(f"file://{tmp_path}/nothing", resume=True)
    with pytest.raises(UserError, match=r"--out nosuchscheme://x/y: cannot open this storage URI \("):
        open_run_storage("nosuchscheme://x/y", resume=False)
