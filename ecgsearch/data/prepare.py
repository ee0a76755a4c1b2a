"""A registered dataset's cache entry, with the dataset's problems turned into one user sentence.

``run``, ``predict`` and ``data inspect`` all need the same thing: find the dataset, check it is usable
here, build its source and prepare (or reuse) the cache entry. A dataset's ValueError (at construction
or while reading: a missing folder, no readable record...) is the user's to fix, so it is reported as
one sentence naming the dataset; a TypeError at construction is a parameter it does not take.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ecgsearch.data.cache import default_cache_root, prepare_dataset
from ecgsearch.data.source import Progress
from ecgsearch.errors import UserError
from ecgsearch.plugins import get_registries

if TYPE_CHECKING:
    from ecgsearch.space.spec import DataSpec


def prepare_data(section: DataSpec, where: str, progress: Progress | None = None, **overrides: Any) -> Path:
    """The cache entry of a space file's ``data`` section (or ``transfer.pretrain.data``); ``overrides``
    replace keys (``predict`` points ``root`` at new records). Errors start with ``where``."""
    cache_root = Path(section.cache_dir).expanduser() if section.cache_dir else None
    return prepare_entry(section.dataset, {**dict(section.params), **overrides}, cache_root, where, progress)


def prepare_entry(name: str, params: Mapping[str, Any], cache_root: Path | None, where: str,
                  progress: Progress | None = None) -> Path:
    """The cache entry of dataset ``name`` with ``params``; errors start with ``where`` (a file, a command)."""
    info = get_registries().datasets.get(name)  # an unknown name: the registry's did-you-mean sentence
    usable, reason = info.available()
    if not usable:
        raise UserError(f"{where}: dataset '{name}' cannot be used here: it {reason}.")
    try:
        source = info.create(**dict(params))
    except TypeError as error:
        raise UserError(f"{where}: dataset '{name}' rejected its parameters: {error}") from None
    except ValueError as error:
        raise _dataset_error(where, name, error) from None
    try:
        return prepare_dataset(name, source, cache_root or default_cache_root(), progress)
    except ValueError as error:
        raise _dataset_error(where, name, error) from None


def _dataset_error(where: str, name: str, error: ValueError) -> UserError:
    # readers start their sentences with their own name; say it once
    return UserError(f"{where}: dataset '{name}': {str(error).removeprefix(name + ': ')}")
