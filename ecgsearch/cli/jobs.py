"""``ecgsearch submit FILE --address URL [--follow]`` and ``ecgsearch status|stop|logs JOB``.

A search submitted as a Ray job runs on the cluster even after this machine disconnects; the results
land in ``--out`` (shared storage). ``submit --follow`` streams the job's log until it ends and exits 0
when the search succeeded, 1 when the job failed or was stopped. What the job runs on the cluster is
``ecgsearch.cli.job_entry``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from ecgsearch.jobs.client import connect, translated

_END = {"SUCCEEDED": 0, "FAILED": 1, "STOPPED": 1}


def _address(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", help="the cluster's dashboard, http://HEAD:8265 "
                                          "(default: $RAY_API_SERVER_ADDRESS)")


def cmd_submit(args: argparse.Namespace) -> int:
    # deferred: reads the space file with PyYAML
    from ecgsearch.jobs.submit import build_submission

    with tempfile.TemporaryDirectory(prefix="ecgsearch-submit-") as staged:
        submission = build_submission(
            args.file, args.out, Path(staged), trials=args.trials, resume=args.resume, sets=args.set,
            pip=args.pip, plugin_packages=args.plugin_package, env=args.env, working_dir=args.working_dir,
            no_working_dir=args.no_working_dir, job_id=args.job_id, plugins=getattr(args, "plugin", []))
        client, address, token = connect(args.address)
        with translated(address, token):
            job = client.submit_job(entrypoint=submission.entrypoint, runtime_env=submission.runtime_env,
                                    metadata=submission.metadata, submission_id=submission.submission_id)
    print(f"submitted job {job} to {address}; results in {submission.out}")
    if not args.follow:
        print(f"follow it with: ecgsearch logs {job} --follow --address {address}")
        return 0
    return _follow(client, address, token, job)


def _follow(client: Any, address: str, token: Any, job: str) -> int:
    async def stream() -> None:
        async for lines in client.tail_job_logs(job):
            sys.stdout.write(lines)
            sys.stdout.flush()

    try:
        with translated(address, token, job):
            asyncio.run(stream())
            info = client.get_job_info(job)
    except KeyboardInterrupt:
        print(f"\nstopped following; job {job} keeps running (stop it with: ecgsearch stop {job})", file=sys.stderr)
        return 130
    status = str(getattr(info.status, "value", info.status))
    message = f": {info.message}" if info.message and status != "SUCCEEDED" else ""
    print(f"job {job} {status}{message}")
    return _END.get(status, 1)


def cmd_status(args: argparse.Namespace) -> int:
    client, address, token = connect(args.address)
    with translated(address, token, args.job):
        info = client.get_job_info(args.job)
    status = str(getattr(info.status, "value", info.status))
    out = (info.metadata or {}).get("ecgsearch.out")
    print(f"{args.job}: {status}" + (f" ({info.message})" if info.message else "")
          + (f"; results in {out}" if out else ""))
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    client, address, token = connect(args.address)
    with translated(address, token, args.job):
        stopped = client.stop_job(args.job)
    print(f"{args.job}: stop requested" if stopped else f"{args.job}: already finished")
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    client, address, token = connect(args.address)
    if args.follow:
        return _follow(client, address, token, args.job)
    with translated(address, token, args.job):
        sys.stdout.write(client.get_job_logs(args.job))
    return 0


def add_parser(sub: Any) -> None:
    """The cluster subcommands: submit, status, stop, logs."""
    submit = sub.add_parser("submit", help="run a search on a Ray cluster as a job (results in shared --out)")
    submit.add_argument("file", help="the space file (YAML); it travels with the job")
    _address(submit)
    submit.add_argument("--out", help="shared storage for the results: an absolute path every node reaches, "
                                      "or an s3:// / gs:// URI")
    submit.add_argument("--trials", type=int, help="override budget.trials")
    submit.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    submit.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key of the space file, e.g. --set budget.epochs=2 (repeatable)")
    submit.add_argument("--pip", action="append", default=[], metavar="REQ",
                        help="a pip requirement to install for the job (repeatable)")
    submit.add_argument("--plugin-package", action="append", default=[], metavar="PKG",
                        help="a pip-installable ecgsearch plugin package for the job (repeatable)")
    submit.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="an environment variable of the job (repeatable; never secrets)")
    submit.add_argument("--working-dir", help="upload this folder as the job's working dir (default: the "
                                              "current folder when it holds a pyproject.toml)")
    submit.add_argument("--no-working-dir", action="store_true", help="upload no working dir")
    submit.add_argument("--job-id", help="the job's id (default: ecgsearch-<name>-<random>)")
    submit.add_argument("--follow", action="store_true", help="stream the job's log until it ends")
    submit.set_defaults(func=cmd_submit)

    for name, func, text in (("status", cmd_status, "a submitted job's state"),
                             ("stop", cmd_stop, "stop a submitted job"),
                             ("logs", cmd_logs, "a submitted job's log")):
        command = sub.add_parser(name, help=text)
        command.add_argument("job", help="the job id printed by submit")
        _address(command)
        if name == "logs":
            command.add_argument("--follow", action="store_true", help="stream the log until the job ends")
        command.set_defaults(func=func)
