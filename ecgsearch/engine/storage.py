"""Where a run's results live: a local or shared (NFS) folder, or an object-store URI (s3://, gs://...).

A folder is used as is. A URI is reached through pyarrow filesystems (the same Ray Tune uses): Tune
keeps its experiment state and the trial checkpoints at ``URI/tune`` directly, so every node of a
cluster reads and writes them; ecgsearch's own files (``results.parquet`` and its row log, ``space.yaml``,
``faults/``, ``trials/<id>/best.pt``) are written to a local staging folder on the driver
(``$ECGSEARCH_STAGING``, default ``~/.cache/ecgsearch/staging/<hash of the URI>``) and copied to the URI
each time a trial ends and when the search ends. A resumed run first copies them back from the URI.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray import tune

from ecgsearch.errors import UserError
from ecgsearch.results.table import RESULTS_FILE, RESULTS_LOG

log = logging.getLogger(__name__)

STAGING_ENV = "ECGSEARCH_STAGING"
MARKER = ".ecgsearch-storage"  # in a staging folder: the URI it mirrors
MIRRORED = (RESULTS_FILE, RESULTS_LOG, "space.yaml", "faults", "trials")
EXPERIMENT = "tune"
_URI = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def is_uri(out: str | Path) -> bool:
    return isinstance(out, str) and bool(_URI.match(out))


def check_run_location(where: object, noun: str, holds_run: bool, resume: bool) -> None:
    """Refuse to mix two runs in one folder or URI, and a resume with nothing to resume (one sentence)."""
    if resume and not holds_run:
        raise UserError(f"{where}: there is no run to resume here (no {EXPERIMENT}/ folder or results.parquet); "
                        "drop --resume to start a new run.")
    if not resume and holds_run:
        raise UserError(f"{where}: this {noun} already holds a run; pass --resume to continue it "
                        "or choose another --out.")


@dataclass(frozen=True)
class RunStorage:
    """A run's local folder and, for a URI, the URI it mirrors to."""

    local: Path
    uri: str | None = None

    @property
    def tune_root(self) -> str:
        """Tune's ``storage_path``: the URI itself, or the local folder."""
        return self.uri or str(self.local)

    @property
    def experiment(self) -> str:
        """Where Tune's experiment state lives (``Tuner.can_restore`` / ``Tuner.restore`` take it)."""
        return f"{self.uri.rstrip('/')}/{EXPERIMENT}" if self.uri else str(self.local / EXPERIMENT)

    def push(self) -> None:
        """Copy ecgsearch's files from the staging folder to the URI (nothing for a plain folder)."""
        if self.uri is None:
            return
        from pyarrow import fs

        remote, root = _filesystem(self.uri)
        for name in MIRRORED:
            source = self.local / name
            if source.exists():
                _copy(fs.LocalFileSystem(), str(source), remote, f"{root}/{name}")
            elif name == RESULTS_LOG and remote.get_file_info(f"{root}/{name}").type == fs.FileType.File:
                remote.delete_file(f"{root}/{name}")  # compacted: its rows are in the parquet file

    def pull(self) -> bool:
        """Copy ecgsearch's files from the URI into the staging folder; whether the URI holds a run."""
        if self.uri is None:
            return False
        from pyarrow import fs

        remote, root = _filesystem(self.uri)
        found = False
        for name in (*MIRRORED, EXPERIMENT):
            info = remote.get_file_info(f"{root}/{name}")
            if info.type == fs.FileType.NotFound:
                continue
            found = True
            if name != EXPERIMENT:  # Tune reads its own state from the URI
                _copy(remote, f"{root}/{name}", fs.LocalFileSystem(), str(self.local / name))
        return found


def push_trial(uri: str, out_dir: str | Path, trial_id: str) -> None:
    """Copy one trial's folder (its best weights) to the URI: workers on other nodes call this."""
    from pyarrow import fs

    source = Path(out_dir) / "trials" / trial_id
    if source.is_dir():
        remote, root = _filesystem(uri)
        _copy(fs.LocalFileSystem(), str(source), remote, f"{root}/trials/{trial_id}")


def _copy(source_fs: Any, source: str, target_fs: Any, target: str) -> None:
    """Copy a file or a folder tree between pyarrow filesystems, creating the target's folders."""
    from pyarrow import fs

    if source_fs.get_file_info(source).type != fs.FileType.Directory:
        target_fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        fs.copy_files(source, target, source_filesystem=source_fs, destination_filesystem=target_fs)
        return
    for info in source_fs.get_file_info(fs.FileSelector(source, recursive=True)):
        if info.type == fs.FileType.File:
            relative = info.path[len(source.rstrip("/")) + 1:]
            _copy(source_fs, info.path, target_fs, f"{target}/{relative}")


def _filesystem(uri: str) -> tuple[Any, str]:
    from pyarrow import fs

    try:
        filesystem, path = fs.FileSystem.from_uri(uri)
    except Exception as error:  # pyarrow raises ArrowInvalid/OSError with its own wording
        raise UserError(f"--out {uri}: cannot open this storage URI ({error}); use a folder, or an s3://, gs:// "
                        "or other URI that pyarrow supports, with the credentials of this machine.") from None
    return filesystem, path.rstrip("/")


def staging_folder(uri: str) -> Path:
    base = Path(os.environ.get(STAGING_ENV) or Path.home() / ".cache" / "ecgsearch" / "staging").expanduser()
    return base / hashlib.sha256(uri.encode()).hexdigest()[:16]


def open_run_storage(out: str | Path, resume: bool) -> RunStorage:
    """The storage of ``--out``; for a URI a fresh staging folder, filled from the URI on ``--resume``."""
    if not is_uri(out):
        return RunStorage(Path(out).resolve())
    uri = str(out).rstrip("/")
    local = staging_folder(uri)
    shutil.rmtree(local, ignore_errors=True)  # the URI is the truth; stale staging files must not mix in
    local.mkdir(parents=True)
    (local / MARKER).write_text(uri)
    storage = RunStorage(local, uri)
    holds_run = storage.pull()
    check_run_location(uri, "location", holds_run, resume)
    if resume and not (local / "results.parquet").exists():
        (local / EXPERIMENT).mkdir()  # lets the local folder checks see the run Tune keeps at the URI
    return storage


def storage_of(out_dir: str | Path) -> RunStorage:
    """The storage a run folder belongs to (a staging folder names its URI in its marker file)."""
    out_dir = Path(out_dir)
    marker = out_dir / MARKER
    return RunStorage(out_dir, marker.read_text().strip() if marker.is_file() else None)


def storage_callbacks(out_dir: str | Path) -> list[Any]:
    """For a URI run: a Tune callback copying the results to the URI as trials end (last in the list)."""
    return [MirrorCallback(str(out_dir))] if storage_of(out_dir).uri else []


class MirrorCallback(tune.Callback):
    """Copies a URI run's results from its staging folder to the URI whenever a trial ends."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        storage_of(self.out_dir).push()

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        storage_of(self.out_dir).push()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        storage_of(self.out_dir).push()
