"""The dataset cache: each (dataset, fingerprint) is built once per node and memory-mapped by every trial.

Decoding PhysioNet records or running ECGSYN takes minutes; a search runs hundreds of trials, often
several at once on one node. So ``prepare_dataset`` builds an entry once, under an exclusive file lock
(concurrent callers wait, then reuse it), into a temporary sibling directory that is renamed into place
only when complete (``meta.json`` is written last): a crash never leaves an entry that looks valid.
``open_dataset`` memory-maps the signals read-only, so trials share one copy through the page cache.

Layout of ``cache_root/<key>/``: ``signals.npy`` (float32), ``targets.npy``, ``split.npy``,
``record_ids.npy``, optionally ``groups.npy`` (each record's origin) and ``patients.npy`` (each record's
patient; entries built before it read as None), ``meta.json`` (with the names, the
label groups and ``extra``), and ``work/`` (the
source's scratch directory, where a ``SignalWriter`` may write the signals as it decodes them: that
file is moved into place instead of written again).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from ecgsearch.data import EcgArrays, EcgSource, Progress
from ecgsearch.data.signal_writer import written_file

log = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when the entry layout changes: old entries then get new keys
CACHE_ENV = "ECGSEARCH_CACHE"
META = "meta.json"
ARRAYS = ("signals", "targets", "split", "record_ids")
GROUPS = "groups"  # optional: groups.npy exists only for datasets that name each record's origin
PATIENTS = "patients"  # optional: patients.npy exists only for datasets that know each record's patient


def default_cache_root() -> Path:
    """``$ECGSEARCH_CACHE`` if set, else ``~/.cache/ecgsearch``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ecgsearch"


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON-able")


def _canonical(fingerprint: Mapping[str, Any]) -> Any:
    """The fingerprint as plain JSON data (tuples become lists, Paths strings), as stored in meta.json."""
    try:
        return json.loads(json.dumps(dict(fingerprint), sort_keys=True, default=_json_default))
    except (TypeError, ValueError) as error:
        raise ValueError(f"a dataset fingerprint must be JSON-able ({error}): "
                         f"{dict(fingerprint)!r}") from None


def cache_key(dataset: str, fingerprint: Mapping[str, Any]) -> str:
    """``<dataset>-<16 hex>``: readable in ``ls``, unique per dataset, parameters and cache format."""
    payload = {"dataset": dataset, "fingerprint": _canonical(fingerprint), "format": CACHE_FORMAT}
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    return f"{dataset}-{digest[:16]}"


def is_complete(entry: Path) -> bool:
    """An entry is usable only once its meta.json (written last) says so in the current format."""
    try:
        meta = json.loads((entry / META).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("format") == CACHE_FORMAT and all(
        (entry / f"{name}.npy").is_file() for name in ARRAYS)


@contextlib.contextmanager
def exclusive_lock(path: Path, key: str) -> Iterator[None]:
    """An ``flock`` held until the block ends; the kernel releases it if the process dies."""
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("dataset cache: waiting for another process building %s", key)
            started = time.monotonic()
            fcntl.flock(handle, fcntl.LOCK_EX)
            log.info("dataset cache: waited %.1f s for %s", time.monotonic() - started, key)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_entry(directory: Path, arrays: EcgArrays, dataset: str, key: str, fingerprint: Any) -> None:
    """Write the arrays, then meta.json last, each flushed to disk before the rename publishes them."""
    written = written_file(arrays.signals, directory / "work") if arrays.signals.dtype == np.float32 else None
    if written is not None:  # decoded straight into its file (ecgsearch.data.signal_writer): moved, not copied
        os.replace(written, directory / "signals.npy")
        _fsync(directory / "signals.npy")
    columns = {} if written is not None else {"signals": np.ascontiguousarray(arrays.signals, dtype=np.float32)}
    columns |= {
        "targets": np.ascontiguousarray(arrays.targets, dtype=np.float32),
        "split": np.asarray(arrays.split).astype(str),
        "record_ids": np.asarray(arrays.record_ids).astype(str),
    }
    if arrays.groups is not None:
        columns[GROUPS] = np.asarray(arrays.groups).astype(str)
    if arrays.patients is not None:
        columns[PATIENTS] = np.asarray(arrays.patients).astype(str)
    for name, values in columns.items():
        np.save(directory / f"{name}.npy", values, allow_pickle=False)
        _fsync(directory / f"{name}.npy")
    meta = {
        "format": CACHE_FORMAT,
        "dataset": dataset,
        "key": key,
        "fingerprint": fingerprint,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "records": int(arrays.signals.shape[0]),
        "shape": list(arrays.signals.shape),
        "target_names": [str(name) for name in arrays.target_names],
        "sampling_rate": float(arrays.sampling_rate),
        "leads": [str(lead) for lead in arrays.leads],
        "extra": json.loads(json.dumps(arrays.extra, default=_json_default)),
        "label_groups": arrays.label_groups,
    }
    (directory / META).write_text(json.dumps(meta, indent=2, sort_keys=True))
    _fsync(directory / META)
    _fsync(directory)


def prepare_dataset(dataset: str, source: EcgSource, cache_root: Path,
                    progress: Progress | None = None) -> Path:
    """Return ``cache_root/<key>/``, building it with ``source.build`` once if it is missing.

    Safe for concurrent callers on one node: one builds, the others wait on the lock and reuse it.
    A failing build leaves nothing behind and its error propagates.
    """
    cache_root = Path(cache_root).expanduser()
    cache_root.mkdir(parents=True, exist_ok=True)
    fingerprint = _canonical(source.fingerprint())
    key = cache_key(dataset, fingerprint)
    entry = cache_root / key
    if is_complete(entry):
        log.info("dataset cache hit: %s (%s)", key, entry)
        return entry
    with exclusive_lock(cache_root / f"{key}.lock", key):
        if is_complete(entry):  # another process built it while we waited
            log.info("dataset cache hit: %s (%s)", key, entry)
            return entry
        log.info("dataset cache miss: %s; building %s into %s", key, dataset, entry)
        # Under the lock, leftovers of this key are from crashed builds: remove them.
        for stale in cache_root.glob(f".{key}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        if entry.is_dir() and not entry.is_symlink():  # incomplete: never published by us
            shutil.rmtree(entry)
        elif entry.exists() or entry.is_symlink():
            entry.unlink()
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.tmp-", dir=cache_root))
        try:
            workdir = tmp / "work"
            workdir.mkdir()
            started = time.monotonic()
            arrays = source.build(workdir, progress)
            if not isinstance(arrays, EcgArrays):
                raise TypeError(f"{dataset}: build() returned {type(arrays).__name__}, not EcgArrays")
            _write_entry(tmp, arrays, dataset, key, fingerprint)
            os.replace(tmp, entry)
            _fsync(cache_root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log.info("dataset cache: built %s in %.1f s", key, time.monotonic() - started)
    return entry


def open_dataset(entry: Path) -> EcgArrays:
    """The arrays of a complete entry; signals are memory-mapped read-only, the rest loaded."""
    entry = Path(entry)
    if not is_complete(entry):
        raise FileNotFoundError(f"{entry} is not a complete dataset cache entry; "
                                "prepare it with ecgsearch.data.cache.prepare_dataset().")
    meta = json.loads((entry / META).read_text())
    groups, patients = entry / f"{GROUPS}.npy", entry / f"{PATIENTS}.npy"
    return EcgArrays(
        signals=np.load(entry / "signals.npy", mmap_mode="r", allow_pickle=False),
        targets=np.load(entry / "targets.npy", allow_pickle=False),
        target_names=list(meta["target_names"]),
        split=np.load(entry / "split.npy", allow_pickle=False),
        sampling_rate=float(meta["sampling_rate"]),
        leads=list(meta["leads"]),
        record_ids=np.load(entry / "record_ids.npy", allow_pickle=False),
        extra=dict(meta.get("extra") or {}),
        groups=np.load(groups, allow_pickle=False) if groups.exists() else None,
        label_groups=dict(meta.get("label_groups") or {}),  # absent from entries built before label groups
        patients=np.load(patients, allow_pickle=False) if patients.exists() else None,  # absent before patients
    )


def entry_dataset(entry: Path) -> str:
    """The dataset name a complete entry was built from (its ``meta.json``)."""
    return str(json.loads((Path(entry) / META).read_text())["dataset"])
