"""Every ``ecgsearch`` command the docs, the README and the report print is one that exists and runs.

Three tiers, so that a command cannot drift from the CLI again:

- every synopsis (``ecgsearch bench RUN_DIR [--trials best|pareto|all] --backend NAME ...``) names a real
  verb, and each of its options is an option of that verb;
- every concrete command parses with the real parser;
- every concrete command that works on a finished run (``report``, ``compare``, ``scale``, ``prune``,
  ``bench``, ``export``), on a space file (``validate``), on a built-in dataset or on nothing (``plugins``)
  is run for real, against a small quickstart run that stands in for ``runs/quickstart`` (its trial ids
  and FLOP range replace the docs' examples; a copy of it stands in for another run, such as
  ``runs/quickstart-surrogate``), and must exit 0. The rest (a full search, a cluster, a data folder
  the docs assume under ``/data``) parse only: each is listed with the reason below.

The report's own text is checked the same way, on the small run.
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
from html import unescape
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT
from test_report import reduced_quickstart

from ecgsearch.cli import build_parser, main
from ecgsearch.engine import run_search
from ecgsearch.results import RESULTS_FILE
from ecgsearch.space import load_space

SOURCES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"```[a-z]*\n(.*?)```", re.S)
INLINE = re.compile(r"`(ecgsearch (?:-|[a-z])[^`]*)`")
PLACEHOLDER = re.compile(r"\[|\||\.\.\.|\b(?:RUN_DIR|FILE|DIR|NAME|JOB|URI|OUT|ID|KEY=VALUE|MODULE|KIND|X|URL|N)\b|<")
RUNS_FOR_REAL = ("report", "compare", "scale", "prune", "bench", "export", "validate", "plugins", "data")
PARSE_ONLY = {  # verb -> why the docs' example is only parsed here
    "run": "a full search (the quickstart itself runs in tests/test_quickstart.py)",
    "submit": "needs a Ray cluster (tests/test_submit.py submits to a real one)",
    "status": "needs a Ray cluster", "stop": "needs a Ray cluster", "logs": "needs a Ray cluster",
    "predict": "needs PhysioNet-format records under /data (tests/test_predict.py predicts on real ones)",
    "evaluate": "needs Challenge label and output folders (tests/test_evaluate_cli.py scores real ones)",
}


def doc_commands() -> list[tuple[str, str]]:
    """``(where, command)`` of every ``ecgsearch ...`` in a code block or inline code of the docs."""
    found: list[tuple[str, str]] = []
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        for block in FENCE.findall(text):
            for line in block.splitlines():
                line = line.strip().removeprefix("$ ")
                if line.startswith("ecgsearch "):
                    found.append((path.name, line.split(" #")[0].strip()))
        for inline in INLINE.findall(text):
            found.append((path.name, inline.strip()))
    return sorted(set(found))


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps its subparsers here, and nowhere public
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _mentions_a_verb(command: str) -> bool:
    """``ecgsearch report`` or ``ecgsearch submit/status/stop/logs`` in prose: a verb's name, not a command."""
    words = shlex.split(command)[1:]
    verbs = set(_subparsers(build_parser())) | {"inspect"}
    return 0 < len(words) <= 2 and all(set(w.split("/")) <= verbs for w in words)


def _mentions_options(command: str) -> bool:
    """``ecgsearch bench --accuracy`` in prose: a verb and some of its options, not a command to run."""
    words = shlex.split(command)[1:]
    return len(words) > 1 and words[0] in _subparsers(build_parser()) and all(w.startswith("-") for w in words[1:])


COMMANDS = doc_commands()
SYNOPSES = [(w, c) for w, c in COMMANDS if PLACEHOLDER.search(c) or _mentions_a_verb(c) or _mentions_options(c)]
CONCRETE = [(w, c) for w, c in COMMANDS if (w, c) not in SYNOPSES]


def _verb(words: list[str]) -> tuple[list[str], argparse.ArgumentParser | None]:
    """The verb's words (``data inspect``) and its parser, after the global options."""
    parser, verb = build_parser(), []
    rest = [w for w in words if w not in ("--debug",)]
    while rest and rest[0] in ("-p", "--plugin"):
        rest = rest[2:]
    while rest and rest[0] in _subparsers(parser):
        verb.append(rest[0])
        parser = _subparsers(parser)[rest.pop(0)]
    return verb, parser if verb else None


def test_the_docs_print_many_commands():
    assert len(COMMANDS) > 60 and len(CONCRETE) > 25 and len(SYNOPSES) > 20


@pytest.mark.parametrize("where, command", SYNOPSES, ids=[c for _, c in SYNOPSES])
def test_a_synopsis_names_a_real_verb_and_real_options(where, command):
    words = shlex.split(command.replace("\\|", "|"))[1:]
    if _mentions_a_verb(command):
        names = [name for word in words for name in word.split("/")]
        known = set(_subparsers(build_parser()))
        assert names[0] in known, f"{where}: `{command}` names no verb of the CLI"
        if len(names) > 1 and names[0] == "data":
            assert names[1] in _subparsers(_subparsers(build_parser())["data"]), command
        else:
            assert set(names) <= known | {"inspect"}, f"{where}: `{command}` names {sorted(set(names) - known)}"
        return
    verb, parser = _verb(words)
    if not verb:  # `ecgsearch -p MODULE`, `ecgsearch --debug run ...`: global options only
        assert all(w in ("-p", "--plugin", "--debug", "MODULE", "run", "...") for w in words), command
        return
    options = {s for a in parser._actions for s in a.option_strings}
    used = set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", " ".join(words[len(verb):])))
    assert used <= options, f"{where}: `{command}` uses {sorted(used - options)}, not options of `{' '.join(verb)}`"


@pytest.mark.parametrize("where, command", CONCRETE, ids=[c for _, c in CONCRETE])
def test_a_concrete_command_parses(where, command, capsys):
    """Each command parses; a ``--help`` one runs here (argparse prints the help and exits 0)."""
    try:
        build_parser().parse_args(shlex.split(command)[1:])
    except SystemExit as error:
        if "--help" in shlex.split(command) and error.code == 0:
            assert capsys.readouterr().out.startswith("usage: ecgsearch"), f"{where}: `{command}` printed no help"
            return
        pytest.fail(f"{where}: `{command}` does not parse (exit {error.code})")


@pytest.fixture(scope="module")
def small_run(ray_session, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("doc_commands")
    space = folder / "quickstart.yaml"
    space.write_text(reduced_quickstart())
    run_search(load_space(space), folder / "run")
    return folder / "run"


def _copy(run: Path, folder: Path) -> Path:
    if not folder.exists():
        shutil.copytree(run, folder)
    return folder


def _against(command: str, run: Path, out: Path) -> list[str]:
    """The command with the docs' example run, trial ids, FLOP target and output folders made real."""
    frame = pd.read_parquet(run / RESULTS_FILE)
    weighted = [t for t in frame["trial_id"] if (run / "trials" / t / "best.pt").is_file()]
    words = []
    for word in shlex.split(command)[1:]:
        if re.fullmatch(r"runs/quickstart-[\w-]+", word):  # another run of the docs (compare): a copy of the run
            word = str(_copy(run, out / Path(word).name))
        word = word.replace("runs/quickstart", str(run))
        if re.fullmatch(r"t\d{4}", word):
            word = weighted[0]
        words.append(word)
    if "--target-flops" in words:
        words[words.index("--target-flops") + 1] = str(float(frame["cost.flops"].max()))
        words += ["--candidates", "30", "--bootstrap", "20"]
    if words[:1] in (["export"], ["prune"], ["compare"]) and "--out" in words:
        words[words.index("--out") + 1] = str(out / Path(words[words.index("--out") + 1]).name)
    if words[:1] == ["prune"]:
        words += ["--candidates", "200", "--min-trials", "1"]
    return words


RUNNABLE = [(w, c) for w, c in CONCRETE if shlex.split(c)[1] in RUNS_FOR_REAL
            and not re.search(r"/data/|\bruns/(?!quickstart\b)", c)]


def test_every_concrete_command_is_run_or_has_a_reason_not_to_be():
    for where, command in CONCRETE:
        verb = shlex.split(command)[1]
        if "--help" in shlex.split(command):
            continue  # run by test_a_concrete_command_parses
        if (where, command) not in RUNNABLE:
            assert verb in PARSE_ONLY or re.search(r"/data/|\bruns/(?!quickstart\b)", command), (where, command)


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize("where, command", RUNNABLE, ids=[c for _, c in RUNNABLE])
def test_a_doc_command_runs(small_run, tmp_path, capsys, where, command):
    words = _against(command, small_run, tmp_path)
    code = main(words)
    err = capsys.readouterr().err
    assert code == 0, f"{where}: `{command}` (as `ecgsearch {' '.join(words)}`) exited {code}: {err[-500:]}"


@pytest.mark.ray
@pytest.mark.slow
def test_every_command_the_report_prints_runs(small_run, tmp_path, capsys):
    assert main(["report", str(small_run), "--folds", "2", "--out", str(tmp_path / "report")]) == 0
    capsys.readouterr()
    html = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    printed = [unescape(c) for c in re.findall(r"<td>(ecgsearch [^<]+)</td>", html)]
    assert len(printed) >= 3, printed  # scale, bench, export (prune needs 8 trials; this run has 4)
    for command in printed:
        code = main(shlex.split(command)[1:])
        assert code == 0, f"the report prints `{command}`, which exited {code}: {capsys.readouterr().err[-400:]}"
