"""Paths in a space file: relative to the file's own folder, and confined to the declared data roots.

A space file is data, and on a shared cluster it may come from someone else: it must not be able to
point a dataset reader (or the cache writer) anywhere on the filesystem. The path-like values of the
``data`` section (``root``, ``cache_dir`` and any key ending in ``_root``, ``_dir``, ``_path`` or
``_file``) are therefore resolved first (``~`` expanded; a relative path is taken from the folder of
the space file, not from wherever the command runs) and then, when ``$ECGSEARCH_DATA_ROOTS`` is set
(folders separated by ``:``), must lie inside one of those folders after symlinks are followed. Unset,
every path is allowed: a workstation needs no configuration.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ecgsearch.space.messages import Context, show
from ecgsearch.space.yamlio import child_key

DATA_ROOTS_ENV = "ECGSEARCH_DATA_ROOTS"
PATH_NAMES = ("root", "cache_dir")
PATH_SUFFIXES = ("_root", "_dir", "_path", "_file")


def is_path_key(name: str) -> bool:
    return name in PATH_NAMES or name.endswith(PATH_SUFFIXES)


def allowed_roots() -> list[Path]:
    """The folders of ``$ECGSEARCH_DATA_ROOTS`` (symlinks resolved); empty means no restriction."""
    value = os.environ.get(DATA_ROOTS_ENV, "")
    return [Path(os.path.realpath(Path(part).expanduser())) for part in value.split(os.pathsep) if part.strip()]


def resolve(ctx: Context, key: str, value: str) -> str:
    """``value`` as an absolute path (relative to the space file's folder), checked against the roots."""
    path = Path(value).expanduser()
    if not path.is_absolute():
        source = Path(ctx.source)
        base = source.parent if not ctx.source.startswith("<") else Path.cwd()
        path = base / path
    path = Path(os.path.normpath(path.absolute()))
    roots = allowed_roots()
    if roots:
        real = Path(os.path.realpath(path))
        if not any(real == root or root in real.parents for root in roots):
            listed = os.pathsep.join(str(root) for root in roots)
            raise ctx.error(key, f"{show(value)} is outside the allowed data folders ({DATA_ROOTS_ENV}={listed}); "
                            f"move the data under one of them or ask for {DATA_ROOTS_ENV} to include it")
    return str(path)


def data_paths(ctx: Context, prefix: str, params: dict[str, Any],
               cache_dir: str | None) -> tuple[dict[str, Any], str | None]:
    """The ``data`` parameters and ``cache_dir`` with every path-like string resolved and checked."""
    resolved = {name: resolve(ctx, child_key(prefix, name), value) if is_path_key(name) and isinstance(value, str)
                else value for name, value in params.items()}
    return resolved, None if cache_dir is None else resolve(ctx, child_key(prefix, "cache_dir"), cache_dir)
