"""Fuzzing the space-file reader: mutated files end in one clear sentence and exit 2, never a traceback.

Over 500 mutated files are fed to ``ecgsearch validate`` in this process: random keys, wrong types,
extreme values, broken YAML, alias bombs, deep nesting, and YAML tags that would run code under an
unsafe loader (``!!python/object/apply:os.system``...). Each must exit 2 with a single line naming the
file (or exit 0 when the mutation happens to be a valid file), and no tag may ever execute anything.
"""

from __future__ import annotations

import copy
import io
import random
import string
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import yaml
from conftest import ROOT

from ecgsearch.cli import main

CASES = 600
MIN_INVALID = 500
SEED = 20261121

BASES = [
    yaml.safe_load((ROOT / "spaces" / "quickstart.yaml").read_text()),
    {"data": {"dataset": "synthetic", "records": 100}, "task": "multilabel", "budget": {"trials": 2, "epochs": 1},
     "space": {"architecture": {"resnet": {"depth": {"choice": [8, 10]}}}, "optimizer": "adamw"}},
]
KEYS = ["name", "seed", "data", "task", "metric", "budget", "resources", "search", "constraints", "latency",
        "space", "architecture", "optimizer", "dataset", "records", "trials", "epochs", "choice", "uniform",
        "loguniform", "randint", "grid", "default", "lr", "cpu", "gpu", "max_failures", "checkpoint_every",
        "hang_timeout_s", "root", "cache_dir", "__class__", "__import__", "os.system", "", " ", "<<", "ñ", "日本"]


def tags(marker: Path) -> list[str]:
    """YAML tags an unsafe loader would turn into code execution or arbitrary objects."""
    cmd = f'["touch {marker}"]'
    return [
        f"!!python/object/apply:os.system {cmd}",
        f"!!python/object/new:os.system {cmd}",
        f"!!python/object/apply:subprocess.check_output [[touch, '{marker}']]",
        "!!python/name:os.system",
        "!!python/module:os",
        "!!python/object:collections.OrderedDict {}",
        "!!python/tuple [1, 2]",
        "!!binary aGVsbG8=",
        "!!set {a: null, b: null}",
        "!!omap [{a: 1}, {b: 2}]",
        "!!timestamp 2001-12-14t21:59:43.10-05:00",
        "!!float not-a-number",
        "!!int twelve",
        "!!bool maybe",
        "!custom {x: 1}",
        "!<tag:example.com,2000:app/foo> bar",
    ]


def random_scalar(rng: random.Random) -> Any:
    return rng.choice([
        None, True, False, 0, -1, 1, 2**63, -(10**30), 0.5, -0.0, float("nan"), float("inf"), -float("inf"),
        1e308, "", " ", "a" * 5000, "ñ∂ƒ", "1e6", "5e7", "null", "yes", "0x1F", "~", "../../etc/passwd",
        "".join(rng.choice(string.printable) for _ in range(rng.randint(1, 20))),
    ])


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.random()
    if depth > 2 or kind < 0.6:
        return random_scalar(rng)
    if kind < 0.8:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(KEYS): random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a mapping entry or list item of a document."""
    out = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        out.append((*prefix, key))
        out += paths(value, (*prefix, key))
    return out


def mutate_tree(doc: Any, rng: random.Random) -> Any:
    doc = copy.deepcopy(doc)
    for _ in range(rng.randint(1, 3)):
        targets = paths(doc)
        if not targets:
            return random_value(rng)
        path = rng.choice(targets)
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        last = path[-1]
        op = rng.choice(["delete", "replace", "rename", "add", "wrap"])
        if op == "delete":
            del parent[last]
        elif op == "replace":
            parent[last] = random_value(rng)
        elif op == "rename" and isinstance(parent, dict):
            name = str(last)
            typo = name[:-1] if len(name) > 1 and rng.random() < 0.5 else name + rng.choice(string.ascii_lowercase)
            parent[rng.choice([typo, rng.choice(KEYS), 1, None, 2.5])] = parent.pop(last)
        elif op == "add" and isinstance(parent, dict):
            parent[rng.choice(KEYS)] = random_value(rng)
        else:
            parent[last] = rng.choice([[parent[last]], {rng.choice(KEYS): parent[last]}])
    return doc


def mutate_text(text: str, rng: random.Random, marker: Path) -> str:
    lines = text.splitlines()
    op = rng.choice(["tag"] * 5 + ["bomb", "deep", "bytes", "bytes", "truncate", "duplicate", "documents", "indent"])
    if op == "tag":
        index = rng.randrange(len(lines))
        key, sep, _ = lines[index].partition(":")
        unsafe = [t for t in tags(marker) if t.startswith("!!python")]
        tag = rng.choice(unsafe if rng.random() < 0.6 else tags(marker))
        lines[index] = f"{key}: {tag}" if sep else f"{lines[index]} {tag}"
        return "\n".join(lines)
    if op == "bomb":  # billion laughs: 9^depth values from a few lines
        depth = rng.randint(5, 9)
        bomb = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
        bomb += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, depth)]
        return "\n".join(bomb + [f"name: *a{depth - 1}"] + lines)
    if op == "deep":
        depth = rng.choice([50, 500])  # 500 already exceeds the parser's recursion
        return text + f"\nextra: {'[' * depth}1{']' * depth}\n"
    if op == "bytes":
        data = bytearray(text.encode())
        for _ in range(rng.randint(1, 5)):
            data[rng.randrange(len(data))] = rng.choice([0, 9, 0xFF, 0xC3, ord(":"), ord("{"), ord("&"), ord("*")])
        return data.decode("utf-8", errors="surrogateescape")
    if op == "truncate":
        return text[: rng.randrange(len(text))]
    if op == "duplicate":
        index = rng.randrange(len(lines))
        return "\n".join(lines + [lines[index]])
    if op == "documents":
        return text + "\n---\n" + text
    index = rng.randrange(len(lines))
    lines[index] = " " * rng.randint(1, 7) + lines[index]
    return "\n".join(lines)


def make_case(index: int, rng: random.Random, folder: Path, marker: Path) -> Path:
    doc = mutate_tree(rng.choice(BASES), rng)
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    if rng.random() < 0.5:
        text = mutate_text(text, rng, marker)
    path = folder / f"case{index:04d}.yaml"
    path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    return path


def validate(path: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["validate", str(path)])
    return code, out.getvalue(), err.getvalue()


def test_mutated_space_files_end_in_one_sentence_and_exit_2(tmp_path):
    rng = random.Random(SEED)
    marker = tmp_path / "EXECUTED"
    invalid, valid, tagged = 0, 0, 0
    for index in range(CASES):
        path = make_case(index, rng, tmp_path, marker)
        tagged += b"!!python" in path.read_bytes()
        try:
            code, out, err = validate(path)
        except BaseException as error:  # a traceback: show the file that caused it
            raise AssertionError(f"{path.name} escaped with {type(error).__name__}: {error}\n"
                                 f"{path.read_bytes()[:2000]!r}") from error
        assert not marker.exists(), f"{path.name}: a YAML tag executed code"
        if code == 0:
            valid += 1
            assert out.startswith(f"{path}: ok") and not err, path.name
            continue
        invalid += 1
        message = err.strip()
        assert code == 2, (path.name, code, err)
        assert "Traceback" not in err and "\n" not in message, (path.name, err)
        assert message.startswith(str(path)) and len(message) < 1000, (path.name, message)
        assert not out
    print(f"\nfuzz: {CASES} mutated files: {invalid} rejected with one sentence and exit 2, {valid} valid, "
          f"{tagged} with !!python tags")
    assert invalid >= MIN_INVALID and tagged >= 50


def test_a_code_execution_tag_is_refused_by_name(tmp_path):
    marker = tmp_path / "EXECUTED"
    path = tmp_path / "evil.yaml"
    path.write_text(f"name: !!python/object/apply:os.system [\"touch {marker}\"]\n"
                    "data: {dataset: synthetic}\ntask: multilabel\nbudget: {trials: 1, epochs: 1}\n"
                    "space: {architecture: resnet, optimizer: adamw}\n")
    code, out, err = validate(path)
    assert code == 2 and not marker.exists()
    assert err.strip() == f"{path}:1: name: the YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is " \
                          "not supported here"
