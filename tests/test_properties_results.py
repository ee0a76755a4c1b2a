"""Property-based tests (Hypothesis) of the results table: rows written by ``ResultsTable.append`` and read by
``read_results`` come back as they were, in the contract's column order.

What a round trip keeps, from the docs (getting-started.md, "Reading the results") and the table's
contract: numbers stay numbers (an int column with an empty cell reads back as floats), strings and
booleans stay themselves, a column mixing strings and numbers (a choice over both) is stored as strings,
a list (a choice over lists) as its ``str`` (``ecgsearch.search.features`` reads it so), and a column a
trial does not have (the option was not chosen) is empty for it.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest

pytest.importorskip("hypothesis", reason="the property-based tests need Hypothesis (pip install hypothesis)")

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ecgsearch.results import ResultsTable, column_order, read_results
from ecgsearch.results import table as table_module
from ecgsearch.results.table import RESULTS_FILE, RESULTS_LOG, STATUSES

PROPERTY = settings(derandomize=True, deadline=None, max_examples=40, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

LEADING = ["trial_id", "status", "error", "architecture", "optimizer", "schedule"]
TRAILING = ["epochs", "train_seconds", "cost.params", "cost.macs", "cost.flops"]
PREFIXES = ["hp.", "val.", "test.", "latency."]  # the prefixed groups, in the contract's order

text = st.text(st.characters(codec="utf-8"), max_size=8)
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "int": st.integers(-2**31, 2**31),
    "float": st.floats(allow_nan=True, allow_infinity=True),
    "str": text,
    "bool": st.booleans(),
    # a choice over strings and numbers (``act: {choice: [gelu, 3]}``)
    "mixed": st.one_of(text, st.integers(-1000, 1000), st.floats(-1e6, 1e6, allow_nan=False)),
    "list": st.lists(st.integers(1, 64), min_size=1, max_size=4),  # ``depths: [2, 2, 6, 2]``
}
PLAIN = ("int", "float", "str")

column_names = st.one_of(
    st.builds(lambda prefix, tail: prefix + tail,
              st.sampled_from(["hp.", "hp.architecture.resnet.", "val.", "test.", "latency.torch-cpu.", "cost.",
                               "extra."]),
              st.text("abcxyz_.", min_size=1, max_size=5)),
    st.sampled_from(["architecture", "optimizer", "schedule", "epochs", "train_seconds", "cost.params", "cost.flops"]),
)


@st.composite
def tables(draw, kinds: tuple[str, ...] = tuple(VALUES), missing: bool = True, max_rows: int = 6):
    """Rows of one run: columns of one kind each; with ``missing``, a row may lack any of them."""
    names = draw(st.lists(column_names, max_size=6, unique=True))
    kind = {name: draw(st.sampled_from(kinds)) for name in names}
    rows = []
    for i in range(draw(st.integers(1, max_rows))):
        row: dict[str, Any] = {"trial_id": f"t{i:04d}", "status": draw(st.sampled_from(STATUSES)),
                               "error": draw(st.one_of(st.none(), text))}
        for name in names:
            if not missing or draw(st.booleans()):
                row[name] = draw(VALUES[kind[name]])
        rows.append(row)
    return rows


def write(rows: list[dict[str, Any]], folder: Path) -> None:
    table = ResultsTable(folder)
    for row in rows:
        assert table.append(row) is True


def is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def kinds_of(rows: list[dict[str, Any]], column: str) -> set[type]:
    return {type(r[column]) for r in rows if column in r and not is_missing(r[column])}


def check_value(got: Any, value: Any, kinds: set[type], where: str) -> None:
    """``got``, read back, is what the table's contract makes of ``value`` in a column of ``kinds``."""
    if column_missing(value):
        assert is_missing(got), f"{where}: an empty cell reads back as {got!r}"
    elif kinds <= {int, float}:  # a number column (floats once a cell is empty or a value is a float)
        assert isinstance(got, (int, float, np.integer, np.floating)) and not isinstance(got, (bool, np.bool_)), \
            f"{where}: {value!r} reads back as {got!r}"
        assert got == value or (math.isnan(got) and math.isnan(value)), f"{where}: {value!r} reads back as {got!r}"
    elif kinds in ({bool}, {str}):
        assert type(got) in ({bool, np.bool_} if kinds == {bool} else {str}) and got == value, \
            f"{where}: {value!r} reads back as {got!r}"
    else:  # strings mixed with numbers, or lists: stored as their str (an integral number without ".0")
        assert got == as_text(value), f"{where}: {value!r} reads back as {got!r}, not {as_text(value)!r}"


def as_text(value: Any) -> str:
    """A cell of a column stored as strings: ``3`` whether the trial's value was 3 or 3.0 (a column of
    integers turns float once a cell is missing, and the table may have been written before the strings
    came), ``0.5``, ``gelu``, ``[3, 3]``."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


_ABSENT = object()  # a column the row does not have


def column_missing(value: Any) -> bool:
    return value is _ABSENT or is_missing(value)


def check_round_trip(rows: list[dict[str, Any]], folder: Path) -> None:
    frame = read_results(folder)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    assert list(frame.columns) == column_order(columns)
    records = frame.to_dict("records")
    assert [r["trial_id"] for r in records] == [r["trial_id"] for r in rows]  # in the order they ended
    for column in columns:
        kinds = kinds_of(rows, column)
        for row, record in zip(rows, records):
            check_value(record[column], row.get(column, _ABSENT), kinds, f"{row['trial_id']}.{column}")


# ---------------------------------------------------------------- round trips


@PROPERTY
@given(tables(missing=False))
def test_rows_with_every_column_survive_a_round_trip(rows):
    with tempfile.TemporaryDirectory() as folder:
        write(rows, Path(folder))
        check_round_trip(rows, Path(folder))


@PROPERTY
@given(tables(kinds=PLAIN))
def test_number_and_string_columns_survive_trials_that_lack_them(rows):
    with tempfile.TemporaryDirectory() as folder:
        write(rows, Path(folder))
        check_round_trip(rows, Path(folder))


@PROPERTY
@given(tables())
@example(rows=[{"trial_id": "t0000", "status": "ok", "hp.act": "gelu"},  # a choice over [gelu, 3] of one option
               {"trial_id": "t0001", "status": "ok", "hp.act": 3},
               {"trial_id": "t0002", "status": "ok"}])  # another option: hp.act reads back as 'nan'
def test_any_rows_survive_a_round_trip(rows):
    with tempfile.TemporaryDirectory() as folder:
        write(rows, Path(folder))
        check_round_trip(rows, Path(folder))


@PROPERTY
@given(st.lists(st.one_of(st.none(), st.booleans()), min_size=2, max_size=6).filter(
    lambda cells: None in cells and any(c is not None for c in cells)))
@example(cells=[True, None])
def test_a_boolean_column_stays_boolean_when_a_trial_lacks_it(cells):
    """``hp.optimizer.sgd.nesterov`` exists only for the trials that chose sgd."""
    rows = [{"trial_id": f"t{i:04d}", "status": "ok", **({} if c is None else {"hp.optimizer.sgd.nesterov": c})}
            for i, c in enumerate(cells)]
    with tempfile.TemporaryDirectory() as folder:
        write(rows, Path(folder))
        got = read_results(folder)["hp.optimizer.sgd.nesterov"].tolist()
    for cell, value in zip(cells, got):
        if cell is not None:
            assert type(value) in (bool, np.bool_) and value == cell, f"{cell!r} reads back as {value!r}"


@PROPERTY
@given(tables(kinds=PLAIN), st.data())
def test_reopening_the_table_between_trials_changes_nothing(rows, data):
    """A resumed run reads the table back and appends to it: the file ends as if written in one go."""
    cut = data.draw(st.integers(0, len(rows)))
    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as two:
        write(rows, Path(one))
        write(rows[:cut], Path(two))
        reopened = ResultsTable(two)
        assert reopened.finished_ids() == {r["trial_id"] for r in rows[:cut]}
        for row in rows[cut:]:
            assert reopened.append(row) is True
        a, b = read_results(one), read_results(two)
    assert list(a.columns) == list(b.columns)
    for column in a.columns:
        for x, y in zip(a[column].tolist(), b[column].tolist()):
            assert (is_missing(x) and is_missing(y)) or x == y, f"{column}: {x!r} != {y!r}"


@PROPERTY
@given(tables(max_rows=12))
def test_rows_still_in_the_row_log_read_as_rows_compacted(rows):
    """Between compactions the rows ended since are lines of ``results.appended.jsonl``, merged on read:
    the table reads the same, dtypes included, whether every row was compacted as it came or only the
    first (the rest read from the log), and again once that log is compacted."""
    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as two:
        with patch.object(table_module, "COMPACT_FRACTION", 0.0):  # every append rewrites the parquet file
            write(rows, Path(one))
        with patch.object(table_module, "COMPACT_FRACTION", 1e9):  # the first does; the rest are log lines
            write(rows, Path(two))
        assert len(rows) == 1 or (Path(two) / RESULTS_LOG).exists()
        compacted, logged = read_results(one), read_results(two)
        check_round_trip(rows, Path(two))
        assert ResultsTable(two).compact() is (len(rows) > 1)
        again = read_results(two)
    for frame in (logged, again):
        assert list(frame.columns) == list(compacted.columns)
        assert list(frame.dtypes) == list(compacted.dtypes)
        for column in frame.columns:
            for x, y in zip(frame[column].tolist(), compacted[column].tolist()):
                assert (is_missing(x) and is_missing(y)) or x == y, f"{column}: {x!r} != {y!r}"


@PROPERTY
@given(tables(kinds=PLAIN, max_rows=4), st.data())
def test_a_trial_already_recorded_is_not_written_again(rows, data):
    again = dict(data.draw(st.sampled_from(rows)))
    again["status"] = data.draw(st.sampled_from(STATUSES))
    again["val.changed"] = 1.0
    with tempfile.TemporaryDirectory() as folder:
        table = ResultsTable(folder)
        for row in rows:
            table.append(row)
        before = (Path(folder) / RESULTS_FILE).read_bytes()
        assert table.append(again) is False
        assert ResultsTable(folder).append(again) is False  # also after reopening
        assert (Path(folder) / RESULTS_FILE).read_bytes() == before
        assert not list(Path(folder).glob("*.tmp*"))


@PROPERTY
@given(text.filter(lambda s: s not in STATUSES) | st.none() | st.integers())
def test_an_unknown_status_is_refused_and_nothing_is_written(status):
    with tempfile.TemporaryDirectory() as folder:
        with pytest.raises(ValueError, match="status must be one of"):
            ResultsTable(folder).append({"trial_id": "t0000", "status": status})
        assert not list(Path(folder).iterdir())


# ---------------------------------------------------------------- column order


def group_of(column: str) -> int:
    """The contract's groups: identity, hp, val, test, epochs/time/costs, latency, anything else."""
    if column in LEADING:
        return 0
    for rank, prefix in zip((1, 2, 3, 5), PREFIXES):
        if column.startswith(prefix):
            return rank
    return 4 if column in TRAILING else 6


@PROPERTY
@given(st.lists(column_names | st.sampled_from(LEADING + TRAILING), max_size=20), st.randoms(use_true_random=False))
def test_column_order_is_the_contract_for_any_columns_in_any_order(columns, random):
    ordered = column_order(columns)
    assert sorted(ordered) == sorted(set(columns))  # every column once
    shuffled = list(columns)
    random.shuffle(shuffled)
    assert column_order(shuffled) == ordered  # the input order does not matter
    assert column_order(ordered) == ordered
    ranks = [group_of(c) for c in ordered]
    assert ranks == sorted(ranks)
    for rank in (1, 2, 3, 5, 6):  # prefixed groups and the rest: alphabetical
        group = [c for c in ordered if group_of(c) == rank]
        assert group == sorted(group)
    for fixed in (LEADING, TRAILING):  # the fixed groups: in the contract's own order
        group = [c for c in ordered if c in fixed]
        assert group == [c for c in fixed if c in group]
