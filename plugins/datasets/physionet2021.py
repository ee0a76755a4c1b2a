"""The ``physionet2021`` dataset: the PhysioNet/CinC Challenge 2021 training set (88k 12-lead ECGs).

Reads an unpacked training tree of any nesting (every ``*.hea`` with its ``.mat``), in all three header
layouts found in the wild (see ``_wfdb_header``). Labels are the Challenge's 26 scored classes (the four
pairs of equivalent SNOMED-CT codes merged, named ``a|b`` as in ``weights.csv``) or every code seen.
Unreadable records are skipped and listed in ``extra["skipped"]`` rather than failing a search after
an hour of decoding. Splits are stratified k-fold over (labels, source) or a held-out source, the
latter to measure generalisation across hospitals.

Label groups (``EcgArrays.label_groups``, scored as ``val.<group>.macro_auroc``): the four families of
classes of the ResNet depth/channels/kernel study (Lee et al.), so that a design that suits rhythms but not
conduction or intervals shows as such. The Challenge defines no such groups, so ``LABEL_GROUPS`` is this
project's reading of the scored classes (by their abbreviations in ``dx_mapping_scored.csv``), grouped by
what the network must see:

- ``arrhythmia``, the rhythm and its rate or regularity, and ectopic beats: AF, AFL, Brady, SA, SB, STach,
  PAC|SVPB, PVC|VPB and PR (pacing rhythm: a rhythm the pacemaker sets; in the Challenge ``PR`` is not the
  PR interval).
- ``conduction_disorder``, delayed or blocked conduction: IAVB (first-degree AV block is AV conduction
  slowed, so it is here although its sign is a long PR interval), BBB, CLBBB|LBBB, CRBBB|RBBB, IRBBB,
  LAnFB, NSIVCB.
- ``axis_deviation``: LAD, RAD.
- ``prolonged_intervals``: LPR (prolonged PR interval) and LQT (prolonged QT interval).

NSR (normal: what every group is told apart from) and the morphology classes (LQRSV, PRWP, QAb, TAb, TInv)
belong to none of the four families and are in no group. With ``classes: all`` each code column of a scored
class joins its class's group (both codes of a merged pair); unscored codes join none.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import csv
import functools
import logging
import math
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ecgsearch import (
    LEAD_SETS,
    STANDARD_LEADS,
    DatasetInfo,
    EcgArrays,
    LabelSet,
    Preprocessing,
    Progress,
    SignalWriter,
    bool_param,
    check_int,
    either,
    float_param,
    hookimpl,
    int_param,
    is_int,
    list_param,
    str_param,
)
from ecgsearch_plugins import _challenge2021 as challenge
from ecgsearch_plugins._challenge2021 import (
    parse_dx,  # one Dx parser: the reader and `evaluate`
)
from ecgsearch_plugins.datasets._wfdb_header import (
    RecordError,
    read_header,
    read_raw,
    to_physical,
)

log = logging.getLogger(__name__)

# Bump when build() output changes for the same parameters. 3: float32 decoding, batched FFT filters.
# 4: records without Dx codes or without a single sample are skipped (were kept); 5: label groups in the entry
READER_VERSION = 5
NO_LABELS = "the header has no Dx codes (a '#Dx:' line with SNOMED-CT codes); a record without labels is skipped"
NO_SAMPLES = "every sample of the record is missing (NaN); it would be a flat signal, so it is skipped"
PROGRESS_WHAT = "decoding PhysioNet 2021 records"
PROGRESS_EVERY = 200  # records between two progress reports
# A spawned worker process costs about 2 s before its first record (a fresh interpreter importing
# numpy, scipy.signal and this plugin; 8-10 s on a busy machine) and one process decodes about 2,000
# records per second, so a worker is started per this many records only (2 workers break even near
# 10,000 records); fewer records are decoded faster in this process, where one helper thread
# preprocesses a batch while the next is read (see _Batch; a second helper, or one running only the
# resampling, was measured slower: header parsing holds the GIL). ``workers`` is the upper bound.
MIN_RECORDS_PER_WORKER = 5000
# Consecutive records of one shape are preprocessed together (one FFT over all their leads): up to
# BATCH records and BATCH_BYTES of float32 signal (larger batches leave the CPU caches and slow down).
BATCH, BATCH_BYTES = 8, 8 << 20
VAL_FRACTION = 0.15
# The 26 scored classes in the official order, named like weights.csv ("a|b": equivalent codes);
# the Challenge facts live once, in ecgsearch_plugins._challenge2021, shared with the metric.
SCORED_CLASSES: tuple[str, ...] = tuple(challenge.class_names())
SCORED_ABBREVIATIONS: dict[str, str] = dict(zip(SCORED_CLASSES, challenge.ABBREVIATIONS))
CODE_TO_SCORED: dict[str, str] = {code: name for name in SCORED_CLASSES for code in name.split("|")}
# The label groups of the module docstring, by the scored classes' abbreviations (_challenge2021.ABBREVIATIONS).
LABEL_GROUPS: dict[str, tuple[str, ...]] = {
    "arrhythmia": ("AF", "AFL", "Brady", "SA", "SB", "STach", "PAC|SVPB", "PVC|VPB", "PR"),
    "conduction_disorder": ("IAVB", "BBB", "CLBBB|LBBB", "CRBBB|RBBB", "IRBBB", "LAnFB", "NSIVCB"),
    "axis_deviation": ("LAD", "RAD"),
    "prolonged_intervals": ("LPR", "LQT"),
}
# Record-name prefix -> source. "JS" covers both Chapman-Shaoxing and Ningbo: the Challenge renamed
# both to JS##### and the names alone cannot tell them apart. Longest prefixes are tried first.
SOURCES: dict[str, str] = {
    "HR": "PTB-XL", "JS": "Chapman-Shaoxing/Ningbo", "A": "CPSC", "Q": "CPSC-Extra", "I": "INCART",
    "S": "PTB", "E": "Georgia",
}


def label_groups(names: Sequence[str]) -> dict[str, list[str]]:
    """``LABEL_GROUPS`` as target names: each name (a merged class ``a|b`` or one code) of a grouped scored
    class, in the order given; a group without such a name is left out."""
    group_of = {challenge.ABBREVIATIONS.index(abbreviation): group
                for group, abbreviations in LABEL_GROUPS.items() for abbreviation in abbreviations}
    groups: dict[str, list[str]] = {}
    for name in names:
        group = group_of.get(challenge.class_index(name))
        if group is not None:
            groups.setdefault(group, []).append(name)
    return {group: groups[group] for group in LABEL_GROUPS if group in groups}


def available_cpus() -> int:
    """CPUs this process may run on (its affinity where the system says, else the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


_PREFIXES = tuple(sorted(SOURCES, key=len, reverse=True))


def source_of(record: str) -> str:
    name = record.upper()
    return next((SOURCES[prefix] for prefix in _PREFIXES if name.startswith(prefix)), "unknown")


def _age(text: str | None) -> float:
    try:
        value = float(text) if text is not None else math.nan
    except ValueError:
        return math.nan
    return value if math.isfinite(value) and value >= 0 else math.nan


def _sex(text: str | None) -> str:
    value = (text or "").strip().lower()
    return {"male": "Male", "m": "Male", "female": "Female", "f": "Female"}.get(value, "Unknown")


# What decoding hands on, in record order: records (metadata dicts; an unreadable one has a
# ``reason``) and the signals of the readable ones, or None when there are none.
Emit = Callable[[list[dict[str, Any]], "np.ndarray | None"], None]


class _Batch:
    """Consecutive records of one (rate, length, leads), converted into reused float32 buffers.

    With a helper thread, the helper preprocesses a full buffer (FFTs and numpy release the GIL)
    while this thread reads the next records into the other buffer (header parsing holds the GIL).
    Batches are emitted in order, so an error names the first record it concerns.
    """

    def __init__(self, header: Any, preprocessing: Preprocessing, emit: Emit,
                 helper: concurrent.futures.Executor | None) -> None:
        self.key = (header.fs, header.n_samples, header.lead_names)
        self.fs, self.leads, self.samples = header.fs, header.lead_names, header.n_samples
        self.preprocessing, self.emit, self.helper = preprocessing, emit, helper
        size = max(1, min(BATCH, BATCH_BYTES // (4 * header.n_sig * header.n_samples)))
        # Samples as the file stores them (time-major), zero-padded for the resampling FFT.
        length = preprocessing.padded_length(header.n_samples, header.fs)
        self.buffers = [np.zeros((size, length, header.n_sig), dtype=np.float32)
                        for _ in range(1 if helper is None else 2)]
        # Per buffer: the records of its batch and their preprocessing (a Future on the helper).
        self.pending: list[tuple[list[dict[str, Any]], Any] | None] = [None] * len(self.buffers)
        self.current = 0
        self.records: list[dict[str, Any]] = []

    @property
    def buffer(self) -> np.ndarray:
        return self.buffers[self.current]

    def flush(self) -> None:
        """Preprocess the pending records; then emit the batch that used the next buffer."""
        if not self.records:
            return
        work = functools.partial(self.preprocessing.apply_batch, self.buffer[:len(self.records)], self.fs,
                                 self.leads, leads_last=True, samples=self.samples)
        self.pending[self.current] = (self.records, work if self.helper is None else self.helper.submit(work))
        self.records = []
        self.current = (self.current + 1) % len(self.buffers)
        self.collect(self.current)  # the next records go into that buffer

    def collect(self, which: int | None = None) -> None:
        """Emit buffer ``which``'s batch (None: every batch, oldest first) with its signals."""
        ring = len(self.buffers)
        for i in [which] if which is not None else [(self.current + k) % ring for k in range(ring)]:
            if self.pending[i] is None:
                continue
            (records, work), self.pending[i] = self.pending[i], None
            try:
                signals = work.result() if isinstance(work, concurrent.futures.Future) else work()
            except ValueError as error:  # user-fixable (leads, rates): fail the build, naming the record
                raise ValueError(f"physionet2021: record {records[0]['path']}: {error}") from None
            self.emit(records, signals)


def _decode_chunk(paths: Sequence[str], preprocessing: Preprocessing, emit: Emit | None = None,
                  helper: concurrent.futures.Executor | None = None,
                  progress: Callable[[int], None] | None = None) -> list[tuple[list[dict], np.ndarray | None]]:
    """Read and preprocess records, handing them to ``emit`` in order (see ``Emit``); without ``emit``
    (a worker process) return what would have been emitted. Unreadable records carry a ``reason``.

    Consecutive records sharing rate, length and leads are preprocessed a batch at a time, in order,
    so a preprocessing error (a missing lead, a rate that cannot be reached) names the first record
    it concerns, and little memory is in flight. ``helper``: a thread that preprocesses while this
    one reads (see ``_Batch``); ``progress``: called with the records read, every ``PROGRESS_EVERY``.
    """
    emitted: list[tuple[list[dict], np.ndarray | None]] = []
    emit = emit or (lambda records, signals: emitted.append((records, signals)))
    batch: _Batch | None = None
    for done, path in enumerate(paths):
        if progress is not None and done and done % PROGRESS_EVERY == 0:
            progress(done)
        name = os.path.splitext(os.path.basename(path))[0]
        try:
            header = read_header(path)
            raw = read_raw(header, path)
        except RecordError as error:
            emit([{"record": name, "path": path, "reason": str(error)}], None)
            continue
        if batch is None or batch.key != (header.fs, header.n_samples, header.lead_names):
            if batch is not None:
                batch.flush()
                batch.collect()
            batch = _Batch(header, preprocessing, emit, helper)
        comments = header.comments
        dx = parse_dx(comments.get("Dx", ""))
        if not dx:  # the same rule as `ecgsearch evaluate`: a record without labels is not all-negative
            emit([{"record": name, "path": path, "reason": NO_LABELS}], None)
            continue
        row = batch.buffer[len(batch.records), :header.n_samples]
        to_physical(raw, header, np.float32, out=row, leads_last=True)
        if not np.isfinite(row).any():  # would become a flat zero signal, labelled as if it had been read
            emit([{"record": name, "path": path, "reason": NO_SAMPLES}], None)
            continue
        batch.records.append({
            "record": name, "path": path, "source": source_of(name), "dx": dx, "age": _age(comments.get("Age")),
            "sex": _sex(comments.get("Sex")), "fs": header.fs,
        })
        if len(batch.records) == len(batch.buffer):
            batch.flush()
    if batch is not None:
        batch.flush()
        batch.collect()
    if progress is not None:
        progress(len(paths))
    return emitted


class _Records:
    """Where decoded records go, in path order: metadata kept, signals appended to the writer,
    unreadable records and repeated record names listed as skipped (with the reason, logged)."""

    def __init__(self, writer: SignalWriter) -> None:
        self.writer = writer
        self.records: list[dict[str, Any]] = []
        self.skipped: list[dict[str, Any]] = []
        self.seen: set[str] = set()

    def add(self, records: list[dict[str, Any]], signals: np.ndarray | None) -> None:
        keep = []
        for i, rec in enumerate(records):
            if "reason" not in rec and rec["record"] in self.seen:
                rec = {"record": rec["record"], "path": rec["path"], "reason": "duplicate record name"}
            if "reason" in rec:
                log.warning("physionet2021: skipping %s: %s", rec["path"], rec["reason"])
                self.skipped.append(rec)
            else:
                self.seen.add(rec["record"])
                self.records.append(rec)
                keep.append(i)
        if keep:
            self.writer.append(signals if len(keep) == len(signals) else signals[keep])


class PhysioNet2021:
    """An ``EcgSource`` over a local copy of the Challenge 2021 training data (see the module docstring).

    root: the training folder; sampling_rate, seconds, leads (None: 12, a Challenge lead count, or
    names), bandpass_low/high (Hz or None), normalize: the preprocessing; classes: ``scored`` or
    ``all``; split ``kfold`` (``fold`` is test, the next fold val) or ``source`` (``holdout_source``
    is test, a seeded 15% of the rest val); workers: at most this many decoding processes (0:
    ``min(4, cpu_count)``), one per ``MIN_RECORDS_PER_WORKER`` records (fewer decode in this process,
    with a helper thread when there is a second CPU; every way gives the same arrays, bit for bit).
    """

    def __init__(self, root: str, sampling_rate: float = 100, seconds: float = 10,
                 leads: int | Sequence[str] | None = None, classes: str = "scored", folds: int = 5,
                 fold: int = 0, split: str = "kfold", holdout_source: str | None = None,
                 bandpass_low: float | None = 0.5, bandpass_high: float | None = None,
                 normalize: bool = True, workers: int = 0, seed: int = 0) -> None:
        try:
            self.preprocessing = Preprocessing(sampling_rate=sampling_rate, seconds=seconds, leads=leads,
                                               bandpass_low=bandpass_low, bandpass_high=bandpass_high,
                                               normalize=bool(normalize))
        except ValueError as error:
            raise ValueError(f"physionet2021: {error}") from None
        if classes not in ("scored", "all"):
            raise ValueError(f"physionet2021: classes must be 'scored' or 'all' (got {classes!r}).")
        if split not in ("kfold", "source"):
            raise ValueError(f"physionet2021: split must be 'kfold' or 'source' (got {split!r}).")
        check_int("physionet2021", "folds", folds, low=3, note=" so that train, val and test each get a fold")
        if not is_int(fold) or not 0 <= fold < folds:
            raise ValueError(f"physionet2021: fold must be an integer from 0 to {folds - 1} (got {fold!r}).")
        names = sorted(set(SOURCES.values()))
        if split == "source":
            match = {n.lower(): n for n in names}.get(str(holdout_source).lower())
            if match is None:
                raise ValueError(f"physionet2021: split='source' needs holdout_source, one of "
                                 f"{', '.join(names)} (got {holdout_source!r}).")
            holdout_source = match
        elif holdout_source is not None:
            raise ValueError("physionet2021: holdout_source is only used with split='source'; "
                             "remove it or set split='source'.")
        for key, value in (("workers", workers), ("seed", seed)):
            check_int("physionet2021", key, value)
        self.root = Path(root).expanduser()
        self.classes, self.folds, self.fold, self.split = classes, int(folds), int(fold), split
        self.holdout_source, self.workers, self.seed = holdout_source, int(workers), int(seed)

    def fingerprint(self) -> dict[str, Any]:
        """Every parameter that changes the arrays (not ``workers``). Files added under root later are
        not detected: point at a new folder or clear the cache entry."""
        return {
            "root": str(self.root.resolve()), "classes": self.classes, "folds": self.folds,
            "fold": self.fold, "split": self.split, "holdout_source": self.holdout_source,
            "seed": self.seed, "preprocessing": self.preprocessing.fingerprint(), "reader": READER_VERSION,
        }

    def headers(self) -> list[Path]:
        """Every ``.hea`` under root, sorted; a missing or empty root is a one-sentence ValueError."""
        if not self.root.is_dir():
            raise ValueError(f"physionet2021: the data folder {self.root} does not exist; set root to the "
                             "unpacked Challenge 2021 training folder.")
        paths = sorted(self.root.rglob("*.hea"), key=lambda path: path.parts)  # Path order, compared once each
        if not paths:
            raise ValueError(f"physionet2021: no .hea header files under {self.root}; set root to the "
                             "unpacked Challenge 2021 training folder.")
        return paths

    def build(self, workdir: Path | None, progress: Progress | None = None) -> EcgArrays:
        """Decode every record (in worker processes when there are enough records), label and split them."""
        started = time.perf_counter()
        paths = self.headers()
        prep = self.preprocessing
        writer = SignalWriter(workdir, len(paths), (len(prep.leads), prep.samples))
        records, skipped = self._decode([str(p) for p in paths], progress, writer)
        if not records:
            first = "; ".join(f"{s['record']}: {s['reason']}" for s in skipped[:3])
            raise ValueError(f"physionet2021: no readable records under {self.root}: all {len(skipped)} "
                             f"were skipped ({first}).")
        names = self._class_names(records)
        column = {name: i for i, name in enumerate(names)}
        targets = np.zeros((len(records), len(names)), dtype=np.float32)
        for row, rec in enumerate(records):
            for code in rec["dx"]:
                name = CODE_TO_SCORED.get(code) if self.classes == "scored" else code
                if name is not None:
                    targets[row, column[name]] = 1.0
        sources = np.array([str(rec["source"]) for rec in records])
        split = self.assign_splits(targets, sources)
        signals = writer.finish()
        if workdir is not None:
            self._write_table(Path(workdir) / "records.csv", records, split)
        log.info("read %d PhysioNet 2021 records (%d skipped) in %.1f s", len(records), len(skipped),
                 time.perf_counter() - started)
        extra = {
            "class_counts": {n: int(c) for n, c in zip(names, targets.sum(axis=0))},
            "source_counts": {str(s): int((sources == s).sum()) for s in sorted(set(sources))},
            "split_counts": {s: int((split == s).sum()) for s in ("train", "val", "test")},
            "skipped": [{"record": s["record"], "reason": s["reason"]} for s in skipped],
            "sex_counts": {s: sum(r["sex"] == s for r in records) for s in ("Female", "Male", "Unknown")},
            "age_missing": sum(math.isnan(r["age"]) for r in records),
        }
        if self.classes == "scored":
            extra["class_names"] = dict(SCORED_ABBREVIATIONS)
        return EcgArrays(signals=signals, targets=targets, target_names=names, split=split,
                         sampling_rate=self.preprocessing.sampling_rate, leads=list(self.preprocessing.leads),
                         record_ids=np.array([rec["record"] for rec in records]), extra=extra,
                         groups=sources, label_groups=label_groups(names))

    def _class_names(self, records: list[dict[str, Any]]) -> list[str]:
        if self.classes == "scored":
            return list(SCORED_CLASSES)
        seen = {code for rec in records for code in rec["dx"]}
        return sorted(seen, key=lambda c: (not c.isdigit(), int(c) if c.isdigit() else 0, c))

    def _decode(self, paths: list[str], progress: Progress | None,
                writer: SignalWriter) -> tuple[list[dict], list[dict]]:
        """Readable records (metadata, in path order; their signals go to ``writer``) and skipped ones."""
        report = progress or (lambda done, total, what: None)
        total = len(paths)
        workers = min(self.workers or min(4, os.cpu_count() or 1), total // MIN_RECORDS_PER_WORKER)
        sink = _Records(writer)
        report(0, total, PROGRESS_WHAT)
        if workers <= 1:
            # One pass in this process, with a helper thread where a second CPU can run it.
            helper = (concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ecgsearch-preprocess")
                      if available_cpus() > 1 else contextlib.nullcontext())
            with helper as threads:
                _decode_chunk(paths, self.preprocessing, sink.add, threads,
                              progress=lambda done: report(done, total, PROGRESS_WHAT))
            return sink.records, sink.skipped
        size = max(1, min(200, math.ceil(total / (4 * workers))))
        chunks = [paths[i:i + size] for i in range(0, total, size)]
        finished: dict[int, list] = {}  # chunks done out of order, kept until those before them are in
        written, done = 0, 0
        # "spawn": forking a process that runs threads (a Ray driver, a progress bar) can deadlock.
        context = multiprocessing.get_context("spawn")
        task = functools.partial(_decode_chunk, preprocessing=self.preprocessing)
        with concurrent.futures.ProcessPoolExecutor(min(workers, len(chunks)), mp_context=context) as pool:
            futures = {pool.submit(task, chunk): i for i, chunk in enumerate(chunks)}
            try:
                for future in concurrent.futures.as_completed(futures):
                    finished[futures[future]] = future.result()
                    done += len(chunks[futures[future]])
                    while written in finished:  # in path order
                        for records, signals in finished.pop(written):
                            sink.add(records, signals)
                        written += 1
                    report(done, total, PROGRESS_WHAT)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        return sink.records, sink.skipped

    def assign_splits(self, targets: np.ndarray, sources: np.ndarray) -> np.ndarray:
        """``train``/``val``/``test`` per record, seeded (see the class docstring)."""
        n = len(targets)
        rng = np.random.default_rng([self.seed, 2021])
        split = np.full(n, "train", dtype="<U5")
        if self.split == "source":
            test = sources == self.holdout_source
            if not test.any():
                raise ValueError(f"physionet2021: holdout_source {self.holdout_source!r} has no records "
                                 f"under {self.root}; sources found: {', '.join(sorted(set(sources)))}.")
            split[test] = "test"
            rest = rng.permutation(np.flatnonzero(~test))
            split[rest[:round(VAL_FRACTION * len(rest))]] = "val"
            return split
        # Stratify on (source, rarest positive class): records of rare classes spread over all folds.
        frequency = targets.sum(axis=0)
        keys = []
        for row, source in zip(targets, sources):
            positive = np.flatnonzero(row)
            rarest = int(positive[np.argmin(frequency[positive])]) if len(positive) else -1
            keys.append((str(source), rarest))
        folds = np.empty(n, dtype=int)
        offset = int(rng.integers(self.folds))
        for key in sorted(set(keys)):
            members = rng.permutation([i for i, k in enumerate(keys) if k == key])
            folds[members] = (offset + np.arange(len(members))) % self.folds
            offset = (offset + len(members)) % self.folds  # keeps fold sizes within one of each other
        split[folds == self.fold] = "test"
        split[folds == (self.fold + 1) % self.folds] = "val"
        return split

    @staticmethod
    def _write_table(path: Path, records: list[dict[str, Any]], split: np.ndarray) -> None:
        """Per-record metadata (age, sex, source, Dx) beside the cache entry, for reports and audits."""
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["record", "source", "age", "sex", "fs", "dx", "split", "path"])
            for rec, part in zip(records, split):
                writer.writerow([rec["record"], rec["source"], rec["age"], rec["sex"], rec["fs"],
                                 ",".join(rec["dx"]), part, rec["path"]])


def target_names(params: Mapping[str, Any]) -> list[str] | None:
    """The target names the data parameters give (``DatasetInfo.target_names``): the 26 scored classes, or None
    for ``classes: all`` (every code seen in the records read)."""
    return list(SCORED_CLASSES) if params.get("classes", "scored") == "scored" else None


@hookimpl
def ecgsearch_register_datasets() -> list[DatasetInfo]:
    return [DatasetInfo(
        name="physionet2021",
        description="PhysioNet/CinC Challenge 2021 12-lead ECGs (local copy): 26 scored classes, "
                    "k-fold or held-out-source splits",
        factory=PhysioNet2021,
        label_param="classes",
        label_sets={"scored": LabelSet(("multilabel",), doc="the 26 scored classes"),
                    "all": LabelSet(("multilabel",), doc="every SNOMED-CT code")},
        target_names=target_names,
        provides=(),
        evaluator="ecgsearch_plugins.datasets._challenge_eval:evaluate",
        requires=("scipy",),
        install_hint="pip install scipy",
        params={
            "root": str_param(doc="the training folder (records one or two levels down)"),
            "sampling_rate": float_param(1, 10_000, doc="resampled rate (Hz)"),
            "seconds": float_param(0, 3600, low_open=True, doc="records are cropped (centre) or zero-padded to this"),
            "leads": either(int_param(choices=tuple(LEAD_SETS)),
                            list_param("str", choices=STANDARD_LEADS, ignore_case=True), nullable=True,
                            doc="a Challenge lead set or a list of lead names (null: 12)"),
            "classes": str_param("scored", "all",
                                 doc="`scored`: the 26 scored classes, equivalent codes merged; `all`: every code"),
            "folds": int_param(3, 1000, doc="folds of `split: kfold`"),
            "fold": int_param(0, 999, doc="the test fold of `split: kfold` (the next one is validation)"),
            "split": str_param("kfold", "source", doc="`kfold`: stratified by (source, labels); `source`: "
                               "`holdout_source` is the test set"),
            "holdout_source": str_param(nullable=True, doc="for `split: source`: CPSC, CPSC-Extra, INCART, PTB, "
                                        "PTB-XL, Georgia or Chapman-Shaoxing/Ningbo (the JS prefix covers both)"),
            "bandpass_low": float_param(0, 10_000, low_open=True, nullable=True,
                                        doc="zero-phase Butterworth high-pass edge (Hz; null: off)"),
            "bandpass_high": float_param(0, 10_000, low_open=True, nullable=True,
                                         doc="low-pass edge (Hz; null: off)"),
            "normalize": bool_param("per-lead z-score"),
            "workers": int_param(0, 1024, doc="decoding processes (0: up to 4, one per 5,000 records); the arrays "
                                 "do not depend on it"),
            "seed": int_param(0, 2**32 - 1, doc="the k-fold assignment"),
        }
    )]
