"""One-line error messages: ``FILE:LINE: dotted.key: problem (allowed: ...); did you mean 'x'?``.

Every check in the space package reports through ``Context.error`` so that all messages share one
format that editors and humans can jump to.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from ecgsearch.errors import SpaceError
from ecgsearch.space.yamlio import parent_key

_MAX_SHOWN = 60


def show(value: Any) -> str:
    """A short rendering of a user's value: strings quoted, long values cut."""
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def close_match(word: object, candidates: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The closest candidate to ``word`` (difflib), if any is close enough."""
    matches = difflib.get_close_matches(str(word), list(candidates), n=1, cutoff=cutoff)
    return matches[0] if matches else None


@dataclass(frozen=True)
class Context:
    """Where a document came from and the line of each of its keys."""

    source: str
    lines: Mapping[str, int] = field(default_factory=dict)

    def line(self, key: str) -> int | None:
        """The line of ``key``, else of its nearest ancestor (a missing key points at its parent)."""
        while True:
            if key in self.lines:
                return self.lines[key]
            if not key:
                return None
            key = parent_key(key)

    def error(
        self,
        key: str,
        problem: str,
        allowed: Iterable[str] = (),
        word: object = None,
        at: str | None = None,
    ) -> SpaceError:
        """Build the error for ``key``; ``word`` gets a did-you-mean from ``allowed``; ``at`` is the key
        whose line to report when it differs from ``key``."""
        allowed = [str(a) for a in allowed]
        line = self.line(at if at is not None else key)
        message = f"{self.source}:{line}" if line is not None else self.source
        if key:
            message += f": {key}"
        message += f": {problem}"
        if allowed:
            message += f" (allowed: {', '.join(allowed)})"
        guess = close_match(word, allowed) if word is not None and allowed else None
        if guess is not None:
            message += f"; did you mean '{guess}'?"
        return SpaceError(" ".join(message.split()))
