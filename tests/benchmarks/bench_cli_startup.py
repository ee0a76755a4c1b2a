"""Wall time of the CLI verbs that must answer fast: ``--help``, ``plugins``, ``validate spaces/quickstart.yaml``.

Run:  python tests/benchmarks/bench_cli_startup.py [--runs 5] [--before REV]

Each command runs in a fresh interpreter through the installed ``ecgsearch`` script, ``--runs`` times, and
the median wall time is printed. ``--before REV`` (e.g. ``7a8fdc8``, the last revision before these verbs
stopped importing torch, Ray, ONNX Runtime and OpenVINO) also times that revision's tree, side by side:
the tree is extracted with ``git archive`` into a temporary folder and put first on ``PYTHONPATH`` as
``ecgsearch`` and ``ecgsearch_plugins`` (the built-in plugins' package), so both sides run with the same
interpreter, installed packages and entry points; the runs alternate between the trees so machine noise
hits both alike. A command that fails, or ``validate`` printing something else on the two sides, stops
the benchmark. ``ECGSEARCH_PLUGINS`` is cleared: the built-ins and the installed plugins only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "ecgsearch"  # the console script: its folder, not the repository, is sys.path[0]
COMMANDS: dict[str, list[str]] = {
    "ecgsearch --help": ["--help"],
    "ecgsearch plugins": ["plugins"],
    "ecgsearch validate spaces/quickstart.yaml": ["validate", "spaces/quickstart.yaml"],
}


def extract(revision: str, into: Path) -> Path:
    """The tree of ``revision`` under ``into/tree``, and a folder to put on ``PYTHONPATH`` that maps the
    package names onto it (returned)."""
    archive = into / "tree.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "archive", revision], cwd=ROOT, stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    path = into / "path"
    path.mkdir()
    (path / "ecgsearch").symlink_to(into / "tree" / "ecgsearch")
    (path / "ecgsearch_plugins").symlink_to(into / "tree" / "plugins")
    return path


def run_once(args: list[str], pythonpath: Path | None) -> tuple[float, str]:
    """(wall seconds, stdout) of one run in a fresh interpreter."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ECGSEARCH_PLUGINS")}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    started = time.perf_counter()
    done = subprocess.run([str(SCRIPT), *args], cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"ecgsearch {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return seconds, done.stdout


def measure(runs: int, before: Path | None) -> dict[str, dict[str, list[float]]]:
    """Per command, the wall times of each side (``before``, ``after``), alternating the sides."""
    times: dict[str, dict[str, list[float]]] = {name: {"before": [], "after": []} for name in COMMANDS}
    sides = {"before": before, "after": None} if before is not None else {"after": None}
    for name, args in COMMANDS.items():
        for _ in range(runs):
            outputs = {}
            for side, pythonpath in sides.items():
                seconds, outputs[side] = run_once(args, pythonpath)
                times[name][side].append(seconds)
            if name.startswith("ecgsearch validate") and len(set(outputs.values())) > 1:
                sys.exit(f"{name} printed different lines before and after: {outputs}")
    return times


def report(times: dict[str, dict[str, list[float]]], revision: str | None) -> str:
    lines = []
    if revision is None:
        lines += ["| command | median s | runs (s) |", "|---|---|---|"]
        for name, sides in times.items():
            runs = ", ".join(f"{t:.2f}" for t in sides["after"])
            lines.append(f"| `{name}` | {statistics.median(sides['after']):.2f} | {runs} |")
        return "\n".join(lines)
    lines += [f"| command | before ({revision}), median s | after, median s | speed-up |", "|---|---|---|---|"]
    for name, sides in times.items():
        old, new = statistics.median(sides["before"]), statistics.median(sides["after"])
        lines.append(f"| `{name}` | {old:.2f} | {new:.2f} | {old / new:.1f}x |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each command on each side (default 5)")
    parser.add_argument("--before", metavar="REV", help="also time this git revision's tree, side by side")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ecgsearch-bench-cli-") as tmp:
        before = extract(args.before, Path(tmp)) if args.before else None
        times = measure(args.runs, before)
    for name, sides in times.items():
        for side, values in sides.items():
            if values:
                print(f"{name} [{side}]: " + ", ".join(f"{t:.2f}" for t in values))
    print()
    print(report(times, args.before))


if __name__ == "__main__":
    main()
