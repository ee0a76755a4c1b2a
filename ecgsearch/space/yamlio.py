"""Line-aware, safe YAML reading for space files.

Error messages must name the file *line* of a bad key, which ``yaml.safe_load`` throws away. So the
document is composed into nodes with a ``SafeLoader`` (nothing is ever evaluated as code), and the
nodes are turned into plain Python values while a map ``dotted.key -> line`` is recorded on the way.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml

from ecgsearch.errors import SpaceError

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"


class SpaceLoader(yaml.SafeLoader):
    """A ``SafeLoader`` that also reads ``5e7``, ``5.0e7`` and ``1e-3`` as floats.

    PyYAML follows YAML 1.1, where a float needs a dot and a signed exponent, so ``5.0e7`` would be the
    *string* ``'5.0e7'``; YAML 1.2 and every user read it as a number.
    """


SpaceLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def read_text(path: str | Path) -> str:
    """The file's text; an unreadable file is a one-line ``SpaceError``."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise SpaceError(f"{path}: cannot read the file (not UTF-8 text: {error.reason})") from None
    except OSError as error:
        raise SpaceError(f"{path}: cannot read the file ({error.strerror or error})") from None


def child_key(parent: str, name: object) -> str:
    """The dotted key of a mapping entry."""
    return f"{parent}.{name}" if parent else str(name)


def item_key(parent: str, index: int) -> str:
    """The key of a list item, ``parent[index]``."""
    return f"{parent}[{index}]"


def parent_key(key: str) -> str:
    """The key one level up (``a.b[2]`` -> ``a.b`` -> ``a`` -> ``''``)."""
    if key.endswith("]") and "[" in key:
        return key[: key.rindex("[")]
    return key.rpartition(".")[0]


def load_yaml(text: str, source: str) -> tuple[Any, dict[str, int]]:
    """Parse ``text`` into plain values (dict, list, scalars) and the 1-based line of every key.

    The root's line is stored under ``""``. Raises ``SpaceError`` for syntax errors (with the line of
    the YAML mark), unsupported tags, duplicate keys, non-name keys, non-finite numbers, an empty
    document and a file over the size limits (checked first, before any parsing).
    """
    if len(text) > MAX_CHARACTERS:
        raise SpaceError(f"{source}: the file has {len(text):,} characters, more than the {MAX_CHARACTERS:,} a "
                         "space file may have; a space file is a short description of a search, not data")
    try:
        loader = SpaceLoader(text)  # refuses control characters (NUL...) as it reads the text
    except yaml.YAMLError as error:
        raise SpaceError(_one_line(f"{source}: invalid YAML: {error}")) from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise SpaceError(
                f"{source}: the file is empty; a space file is a mapping with the sections "
                "data, task, budget and space"
            )
        lines: dict[str, int] = {"": node.start_mark.line + 1}
        return _Builder(loader, source, lines).build(node, "", ()), lines
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = error.problem or error.context or "cannot be parsed"
        context = error.context_mark
        if error.problem and error.context and context is not None and mark is not None \
                and context.line != mark.line:
            problem += f"; {error.context} that starts on line {context.line + 1}"
        raise SpaceError(_one_line(f"{where}: invalid YAML: {problem}")) from None
    except yaml.YAMLError as error:
        raise SpaceError(_one_line(f"{source}: invalid YAML: {error}")) from None
    except RecursionError:  # e.g. [[[[...]]]] thousands deep: the parser recurses per level
        raise SpaceError(f"{source}: invalid YAML: the document is nested too deeply to be a space file") from None
    finally:
        loader.dispose()


def _one_line(text: str) -> str:
    return " ".join(text.split())


MAX_VALUES = 100_000  # a space file holds hundreds; aliases of aliases could expand to billions
MAX_CHARACTERS = 100_000  # the study spaces have about 3,000; parsing 100,000 takes about 2 s


class _Builder:
    """Turns composed nodes into plain values, filling ``lines`` as it goes."""

    def __init__(self, loader: SpaceLoader, source: str, lines: dict[str, int]) -> None:
        self.loader = loader
        self.source = source
        self.lines = lines
        self.built = 0

    def fail(self, node: yaml.Node, problem: str) -> SpaceError:
        return SpaceError(f"{self.source}:{node.start_mark.line + 1}: {problem}")

    def build(self, node: yaml.Node, key: str, path: tuple[int, ...]) -> Any:
        if id(node) in path:
            raise self.fail(node, f"{key or 'the document'}: a YAML alias refers to itself")
        path = (*path, id(node))
        self.built += 1
        if self.built > MAX_VALUES:
            raise self.fail(node, f"{key or 'the document'}: the file holds more than {MAX_VALUES:,} values "
                            "(YAML aliases count each time they are used); a space file is small: shorten the "
                            "lists or remove the alias chain")
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, key or "the document")
        if isinstance(node, yaml.SequenceNode):
            self._check_tag(node, _SEQ_TAG, key)
            values = []
            for index, item in enumerate(node.value):
                sub = item_key(key, index)
                self.lines[sub] = item.start_mark.line + 1
                values.append(self.build(item, sub, path))
            return values
        self._check_tag(node, _MAP_TAG, key)
        return self._mapping(node, key, path)

    def scalar(self, node: yaml.ScalarNode, key: str) -> Any:
        """A scalar's value; a value its tag cannot read, or a non-finite number, is a ``SpaceError``."""
        try:
            value = self.loader.construct_object(node, deep=True)
        except (ValueError, KeyError, TypeError, OverflowError, AttributeError):  # `!!int twelve`, `!!timestamp x`
            raise self.fail(node, f"{key}: {node.value!r} is not a valid value for the YAML tag "
                            f"'{node.tag}'") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(node, f"{key}: {node.value!r} is not a finite number; space files take finite "
                            "numbers only (write a bound such as 1.0e9 instead of .inf)")
        return value

    def _check_tag(self, node: yaml.Node, tag: str, key: str) -> None:
        if node.tag != tag:
            raise self.fail(node, f"{key or 'the document'}: the YAML tag '{node.tag}' is not supported here")

    def _mapping(self, node: yaml.MappingNode, key: str, path: tuple[int, ...]) -> dict[str, Any]:
        own = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
        self.loader.flatten_mapping(node)  # resolves '<<' merge keys; the node's own pairs come last
        result: dict[str, Any] = {}
        own_lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail(key_node, f"{key or 'the document'}: a mapping key must be a name")
            name = self.scalar(key_node, child_key(key, key_node.value))
            if not isinstance(name, str):
                raise self.fail(key_node, f"{child_key(key, name)}: the key {name!r} must be a name (quote it)")
            sub = child_key(key, name)
            line = key_node.start_mark.line + 1
            if id(key_node) in own:  # merged pairs come first, so the node's own pairs override them
                if name in own_lines:
                    raise self.fail(key_node, f"{sub}: duplicate key; it is already set on line {own_lines[name]}")
                own_lines[name] = line
            self.lines[sub] = line
            result[name] = self.build(value_node, sub, path)
        return result
