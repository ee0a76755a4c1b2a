"""Errors meant for users: one clear sentence, shown without a traceback (unless ``--debug``)."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix; ``str(error)`` is the whole message. Exit code 2."""

    exit_code = 2


class PluginError(UserError):
    """A plugin is broken or clashes with another (duplicate names, misspelled hooks)."""


class SpaceError(UserError):
    """A space file is invalid; the message starts with ``FILE:LINE: dotted.key:``."""


def shown(error: UserError) -> str:
    """The line the CLI prints for ``error``: a space file's as it is (it starts with ``FILE:LINE:``, like a
    compiler's), any other after ``error: ``."""
    return str(error) if isinstance(error, SpaceError) else f"error: {error}"
