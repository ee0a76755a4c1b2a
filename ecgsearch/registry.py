"""One generic, typed registry for every kind of plugin item."""

from __future__ import annotations

import difflib
from typing import Generic, Iterator, TypeVar

from ecgsearch.errors import PluginError, UserError
from ecgsearch.infos import PluginInfo

T = TypeVar("T", bound=PluginInfo)


class Registry(Generic[T]):
    """Items of one kind by name; duplicate names are errors that name both plugins."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        # Appended to "not registered" problems: the name may belong to a plugin that failed to load.
        self.broken_note = ""

    def add(self, item: T) -> None:
        existing = self._items.get(item.name)
        if existing is not None:
            raise PluginError(
                f"{self.kind} '{item.name}' is registered twice, by plugin '{existing.plugin}' and by "
                f"plugin '{item.plugin}'; uninstall one of them or rename the {self.kind}."
            )
        self._items[item.name] = item

    def get(self, name: str) -> T:
        """The item called ``name``; an unknown name is a user error with the close matches."""
        try:
            return self._items[name]
        except KeyError:
            raise UserError(self.unknown_message(name)) from None

    def unknown_message(self, name: object) -> str:
        known = sorted(self._items)
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return (f"'{name}' is not a registered {self.kind}{self.broken_note} "
                f"(allowed: {', '.join(known) or 'none'}){hint}")

    def names(self, filter: str | None = None) -> list[str]:
        """Sorted names, optionally those containing ``filter`` (timm's ``list_models`` style)."""
        return sorted(n for n in self._items if filter is None or filter in n)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[T]:
        return iter(self._items[n] for n in sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)
