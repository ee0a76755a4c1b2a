"""Names a package's ``__init__`` exports without importing their modules until first use (PEP 562).

``__getattr__, __dir__ = lazy_names(__name__, {name: module}, globals())`` in a package makes
``package.name`` import ``module`` on first access (and keep the value), so importing the package stays
light: the public face (``ecgsearch``), ``ecgsearch.search`` and ``ecgsearch.results`` use it.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping


def lazy_names(package: str, table: Mapping[str, str], namespace: dict[str, Any]
               ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` whose lazy names ``table`` maps to their modules."""

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # resolved once
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__
