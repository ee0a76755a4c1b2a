"""``ecgsearch submit`` against a real Ray head node (``ray start --head``) with token authentication.

The head node runs in its own temporary folder on free ports, so it never meets the session's
``ray.init`` cluster (nor anyone else's on the machine); it is stopped by killing exactly the processes
it started (its process group, then any process still naming its temporary folder), the scoped
equivalent of ``ray stop --force``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT

from ecgsearch.results import read_results

pytestmark = pytest.mark.slow

RAY = str(Path(sys.executable).with_name("ray"))


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("RAY_") and k not in ("ECGSEARCH_PLUGINS", "PYTHONPATH")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    return env


def _wait_for_dashboard(url: str, token: str, head: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if head.poll() is not None:
            raise AssertionError(f"ray start exited with {head.returncode}: {head.stdout.read()[-3000:]}")
        try:
            request = urllib.request.Request(f"{url}/api/version", headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    raise AssertionError("the dashboard did not come up")


def _stop_head(head: subprocess.Popen, temp_dir: str) -> None:
    """Kill the processes of this head node only: its process group, then stragglers in its temp dir."""
    import psutil

    try:
        os.killpg(head.pid, signal.SIGKILL)  # what `ray stop --force` sends, to this node's processes only
    except ProcessLookupError:
        pass
    head.wait(timeout=30)
    time.sleep(0.5)
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if proc.pid != os.getpid() and any(temp_dir in part for part in proc.info["cmdline"] or ()):
                proc.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue


@pytest.fixture(scope="module")
def head_node():
    """A head node with token authentication on, its dashboard on a free port of 127.0.0.1."""
    token = secrets.token_hex(32)
    temp_dir = tempfile.mkdtemp(prefix="ecgs-ray-", dir="/tmp")
    gcs, dashboard, client, agent_http, agent_grpc, env_agent, metrics, node_manager, object_manager = \
        _free_ports(9)
    env = {**_base_env(), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    head = subprocess.Popen(
        [RAY, "start", "--head", "--block", "--num-cpus", "2", "--num-gpus", "0", "--port", str(gcs),
         "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard), "--include-dashboard", "true",
         "--ray-client-server-port", str(client), "--dashboard-agent-listen-port", str(agent_http),
         "--dashboard-agent-grpc-port", str(agent_grpc), "--runtime-env-agent-port", str(env_agent),
         "--metrics-export-port", str(metrics), "--node-manager-port", str(node_manager),
         "--object-manager-port", str(object_manager), "--object-store-memory", str(256 * 1024**2),
         "--temp-dir", temp_dir, "--disable-usage-stats"],
        env=env, cwd=temp_dir, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{dashboard}"
    try:
        _wait_for_dashboard(url, token, head)
        yield {"url": url, "token": token, "temp_dir": temp_dir}
    finally:
        _stop_head(head, temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _ecgsearch(args: list[str], env: dict[str, str], timeout: float = 420) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ecgsearch", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def test_submit_follow_runs_the_quickstart_on_the_cluster(head_node, tmp_path):
    storage = tmp_path / "storage"
    env = {**_base_env(), "RAY_AUTH_TOKEN": head_node["token"]}
    run = _ecgsearch(["submit", "spaces/quickstart.yaml", "--address", head_node["url"], "--follow",
                      "--out", str(storage / "quickstart"), "--trials", "2",
                      "--set", "data.records=120", "--set", "data.sampling_rate=50", "--set", "data.seconds=4",
                      "--set", "budget.epochs=1", "--set", "constraints=null", "--job-id", "ecgsearch-ci-quickstart"],
                     env)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-3000:]
    assert run.stdout.startswith(f"submitted job ecgsearch-ci-quickstart to {head_node['url']}")
    assert "best trials by val.macro_auroc" in run.stdout  # the job's own log, streamed by --follow
    assert run.stdout.rstrip().endswith("job ecgsearch-ci-quickstart SUCCEEDED")

    frame = read_results(storage / "quickstart")  # the results table, in the storage path
    assert len(frame) == 2 and set(frame["status"]) == {"ok"}
    assert set(frame["architecture"]) <= {"resnet", "convnext"}
    assert (storage / "quickstart" / "space.yaml").is_file()

    # a submitted run is resumed by submitting it again with --resume: finished trials are kept, not rerun
    again = _ecgsearch(["submit", "spaces/quickstart.yaml", "--address", head_node["url"], "--follow", "--resume",
                        "--out", str(storage / "quickstart"), "--set", "data.records=120",
                        "--set", "data.sampling_rate=50", "--set", "data.seconds=4", "--set", "budget.epochs=1",
                        "--set", "budget.trials=2", "--set", "constraints=null", "--job-id", "ecgsearch-ci-resume"],
                       env)
    assert again.returncode == 0 and again.stdout.rstrip().endswith("job ecgsearch-ci-resume SUCCEEDED"), \
        again.stdout[-3000:]
    assert read_results(storage / "quickstart").equals(frame)

    status = _ecgsearch(["status", "ecgsearch-ci-quickstart", "--address", head_node["url"]], env, 60)
    assert status.returncode == 0 and status.stdout.startswith("ecgsearch-ci-quickstart: SUCCEEDED")
    assert f"results in {storage / 'quickstart'}" in status.stdout
    logs = _ecgsearch(["logs", "ecgsearch-ci-quickstart", "--address", head_node["url"]], env, 60)
    assert "best trials by val.macro_auroc" in logs.stdout

    # the token is in no output, no log and no file of the results
    token = head_node["token"]
    assert token not in run.stdout + run.stderr + status.stdout + logs.stdout
    for path in (storage / "quickstart").rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path


def test_a_missing_or_wrong_token_is_one_sentence(head_node, tmp_path):
    url = head_node["url"]
    home = tmp_path / "home"  # no ~/.ray/auth_token here
    home.mkdir()
    missing = _ecgsearch(["status", "some-job", "--address", url], {**_base_env(), "HOME": str(home)}, 60)
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        f"error: {url}: the Ray cluster requires an authentication token and none was found; set "
        "RAY_AUTH_TOKEN to the cluster's token (`ray get-auth-token` on the head node prints it) or save it in "
        "~/.ray/auth_token.")
    wrong = _ecgsearch(["submit", "spaces/quickstart.yaml", "--address", url, "--out", str(tmp_path / "x")],
                       {**_base_env(), "HOME": str(home), "RAY_AUTH_TOKEN": secrets.token_hex(32)}, 60)
    assert wrong.returncode == 2
    assert wrong.stderr.strip() == (
        f"error: {url}: the Ray cluster refused the authentication token from $RAY_AUTH_TOKEN; use the "
        "cluster's own token (`ray get-auth-token` on the head node prints it).")
    unknown = _ecgsearch(["status", "no-such-job", "--address", url],
                         {**_base_env(), "RAY_AUTH_TOKEN": head_node["token"]}, 60)
    assert unknown.returncode == 2 and unknown.stderr.strip().startswith(
        f"error: {url}: there is no job 'no-such-job' on this cluster")


def test_submit_checks_everything_before_contacting_the_cluster(tmp_path, monkeypatch, capsys):
    from ecgsearch.cli import main

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("RAY_AUTH_TOKEN", "unused")
    address = "http://127.0.0.1:9"  # nothing listens there: each check must fail before any request
    cases = [
        (["--out", "relative/out"], "error: --out relative/out: a relative path means nothing on the cluster; "
                                    "give an absolute path on a shared filesystem or an s3:// or gs:// URI."),
        ([], "error: submit: --out is required: a folder every node of the cluster can reach (an absolute path on "
             "a shared filesystem such as NFS) or an s3:// or gs:// URI."),
        (["--out", "/shared/x", "--env", "AWS_SECRET_ACCESS_KEY=abc"],
         "error: --env AWS_SECRET_ACCESS_KEY: this looks like a secret, and a job's environment is visible to "
         "everyone who can open the cluster's dashboard; give the nodes their credentials (instance roles, the "
         "nodes' own environment) instead."),
        (["--out", "/shared/x", "--set", "budget.trials=zero"],
         "spaces/quickstart.yaml (with --set):"),
        (["--out", "/shared/x", "--set", "budget"], "error: --set 'budget': write KEY=VALUE with a dotted key, "
                                                     "e.g. --set budget.epochs=2."),
        (["--out", "/shared/x", "--set", "data.cache_dir=cache"],
         "error: spaces/quickstart.yaml: data.cache_dir: 'cache' is a relative path, which means nothing on the "
         "cluster; give the absolute path the cluster's nodes see (e.g. on the shared storage)."),
    ]
    for extra, message in cases:
        assert main(["submit", "spaces/quickstart.yaml", "--address", address, *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(message), (extra, err)
    assert main(["status", "x", "--address", address]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {address}: cannot reach a Ray dashboard there; check that the cluster is up and that this is "
        "the dashboard's address (http://HEAD:8265).")
    monkeypatch.delenv("RAY_API_SERVER_ADDRESS", raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert main(["status", "x"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: no cluster address: pass --address http://HEAD:8265 (the Ray dashboard of the head node) or set "
        "RAY_API_SERVER_ADDRESS.")


def test_the_job_runtime_environment_holds_only_what_was_asked(tmp_path, monkeypatch):
    from ecgsearch.jobs.submit import SPACE_ENV, build_submission

    monkeypatch.chdir(tmp_path)  # not a project: no working dir
    monkeypatch.delenv("ECGSEARCH_PLUGINS", raising=False)
    sub = build_submission(str(ROOT / "spaces" / "quickstart.yaml"), "s3://bucket/runs/q", tmp_path, trials=3,
                           sets=["budget.epochs=1"], pip=["xgboost>=2"], plugin_packages=["ecgsearch-extra"],
                           env=["OMP_NUM_THREADS=1"])
    assert sub.entrypoint == "python -m ecgsearch.cli.job_entry --out s3://bucket/runs/q --trials 3"
    assert set(sub.runtime_env) == {"env_vars", "pip"} and sub.runtime_env["pip"] == ["xgboost>=2", "ecgsearch-extra"]
    assert "epochs: 1" in sub.runtime_env["env_vars"][SPACE_ENV]
    assert sub.runtime_env["env_vars"]["OMP_NUM_THREADS"] == "1"
    assert sub.metadata == {"ecgsearch.space": "quickstart", "ecgsearch.out": "s3://bucket/runs/q"}
    monkeypatch.chdir(ROOT)
    project = build_submission("spaces/quickstart.yaml", "/shared/q", tmp_path, resume=True)
    assert project.runtime_env["working_dir"] == str(ROOT) and project.entrypoint.endswith("--resume")
    assert json.dumps(project.runtime_env).count("RAY_AUTH") == 0
