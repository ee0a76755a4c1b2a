"""What ``ecgsearch submit`` sends to a cluster: the space file, its runtime environment, the command.

The job runs ``ecgsearch run`` on the cluster as its driver (``ecgsearch.cli.job_entry``), with the same
``--out``/``--trials``/``--resume`` a local run takes. The space file travels inside the job (with the
``--set`` overrides applied), so it needs no shared folder; ``--out`` must be a place every node can
reach: an absolute path on a shared filesystem, or an ``s3://``/``gs://`` URI. The runtime environment
holds only what the user asked for: the current project as ``working_dir`` when it has a
``pyproject.toml``, ``--pip`` requirements and ``--plugin-package`` packages, and ``--env`` variables
(never secrets: a job's environment is visible to everyone who can open the dashboard).
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import yaml

from ecgsearch.errors import SpaceError, UserError
from ecgsearch.space import load_space
from ecgsearch.space.paths import is_path_key
from ecgsearch.space.yamlio import read_text

SPACE_ENV = "ECGSEARCH_JOB_SPACE"  # the space file's text, read by ecgsearch.cli.job_entry
SPACE_NAME_ENV = "ECGSEARCH_JOB_SPACE_NAME"  # its file name (the default run name is its stem)
_SECRET = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|PRIVATE|(^|_)KEY$|ACCESS_KEY", re.IGNORECASE)
_URI = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


@dataclass(frozen=True)
class Submission:
    """The arguments of ``JobSubmissionClient.submit_job``."""

    entrypoint: str
    runtime_env: dict[str, Any]
    metadata: dict[str, str]
    submission_id: str
    out: str
    space_name: str = field(default="")


def apply_overrides(text: str, sets: Sequence[str], source: str) -> str:
    """The space file's text with ``KEY.PATH=VALUE`` overrides applied (values read as safe YAML)."""
    if not sets:
        return text
    document = yaml.safe_load(text)
    if not isinstance(document, dict):
        raise UserError(f"{source}: --set needs a space file that is a mapping of sections.")
    for item in sets:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise UserError(f"--set {item!r}: write KEY=VALUE with a dotted key, e.g. --set budget.epochs=2.")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            raise UserError(f"--set {item!r}: the value is not valid YAML; quote it.") from None
        node = document
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise UserError(f"--set {item!r}: {part} is not a section of the file, so it has no {parts[-1]}.")
            node = child
        node[parts[-1]] = value
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def check_space(text: str, source: str, staged: Path) -> str:
    """Validate the space file as it will run (overrides applied); returns the run's name."""
    staged.write_text(text, encoding="utf-8")
    try:
        return load_space(staged).name
    except SpaceError as error:
        raise SpaceError(str(error).replace(str(staged), f"{source} (with --set)", 1)) from None


def check_cluster_paths(text: str, source: str) -> None:
    """Data paths must be absolute: on the cluster the file lives in a temporary folder of the job."""
    data = (yaml.safe_load(text) or {}).get("data") or {}
    for name, value in data.items() if isinstance(data, dict) else ():
        if is_path_key(name) and isinstance(value, str) and not value.startswith(("/", "~")) and not _URI.match(value):
            raise UserError(f"{source}: data.{name}: {value!r} is a relative path, which means nothing on the "
                            "cluster; give the absolute path the cluster's nodes see (e.g. on the shared storage).")


def check_out(out: str | None) -> str:
    """``--out`` must name shared storage: an absolute path on a shared filesystem, or a URI."""
    if not out:
        raise UserError("submit: --out is required: a folder every node of the cluster can reach (an absolute "
                        "path on a shared filesystem such as NFS) or an s3:// or gs:// URI.")
    if not _URI.match(out) and not os.path.isabs(out):
        raise UserError(f"--out {out}: a relative path means nothing on the cluster; give an absolute path on a "
                        "shared filesystem or an s3:// or gs:// URI.")
    return out


def check_env(pairs: Sequence[str]) -> dict[str, str]:
    """``--env NAME=VALUE`` pairs; names that look like secrets are refused."""
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise UserError(f"--env {pair!r}: write NAME=VALUE.")
        if _SECRET.search(name):
            raise UserError(f"--env {name}: this looks like a secret, and a job's environment is visible to "
                            "everyone who can open the cluster's dashboard; give the nodes their credentials "
                            "(instance roles, the nodes' own environment) instead.")
        env[name] = value
    return env


def default_working_dir(cwd: Path) -> Path | None:
    """The current project (a folder with ``pyproject.toml``), uploaded so the cluster runs this code."""
    return cwd if (cwd / "pyproject.toml").is_file() else None


def build_submission(file: str, out: str | None, staged: Path, *, trials: int | None = None,
                     resume: bool = False, sets: Sequence[str] = (), pip: Sequence[str] = (),
                     plugin_packages: Sequence[str] = (), env: Sequence[str] = (),
                     working_dir: str | None = None, no_working_dir: bool = False,
                     job_id: str | None = None, plugins: Sequence[str] = ()) -> Submission:
    """Everything ``submit`` sends, validated here first (a bad file never reaches the cluster)."""
    out = check_out(out)
    if resume and trials is not None:
        raise UserError("--trials cannot change the budget of a resumed run (it continues with the trials it "
                        "started with); drop --trials, or start a new run in another --out.")
    text = apply_overrides(read_text(file), sets, file)
    staged = staged / Path(file).name
    name = check_space(text, file, staged) if not plugin_packages else Path(file).stem
    check_cluster_paths(text, file)
    env_vars = {**check_env(env), SPACE_ENV: text, SPACE_NAME_ENV: Path(file).name}
    named = [m for m in [*os.environ.get("ECGSEARCH_PLUGINS", "").split(","), *plugins] if m.strip()]
    if named:
        env_vars["ECGSEARCH_PLUGINS"] = ",".join(dict.fromkeys(m.strip() for m in named))
    runtime_env: dict[str, Any] = {"env_vars": env_vars}
    folder = None if no_working_dir else Path(working_dir) if working_dir else default_working_dir(Path.cwd())
    if folder is not None:
        if not folder.is_dir():
            raise UserError(f"--working-dir {folder}: no such folder.")
        runtime_env["working_dir"] = str(folder.resolve())
    if pip or plugin_packages:
        runtime_env["pip"] = [*pip, *plugin_packages]
    args = ["python", "-m", "ecgsearch.cli.job_entry", "--out", out]
    if trials is not None:
        args += ["--trials", str(trials)]
    if resume:
        args.append("--resume")
    job = job_id or f"ecgsearch-{re.sub(r'[^A-Za-z0-9_-]', '-', name)[:40]}-{secrets.token_hex(3)}"
    return Submission(entrypoint=shlex.join(args), runtime_env=runtime_env, submission_id=job, out=out,
                      metadata={"ecgsearch.space": name, "ecgsearch.out": out}, space_name=name)
