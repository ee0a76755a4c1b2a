"""The package's layout holds: one stage per subpackage, imports running one way, no cycles, plugins that
import only the public face, and a design guide whose module names exist.

The order (top may import bottom, never the reverse) is declared here and in docs/design.md:

    cli -> api -> jobs -> engine -> deploy -> latency -> report -> analysis -> search -> train -> results
        -> space -> data -> contracts (plugins -> hookspecs -> infos, errors, lazy)

Imports under ``if TYPE_CHECKING:`` are for annotations only and are not checked; an import inside a
function must say why it is deferred (a comment with the word "deferred" on it or on the import block).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "ecgsearch"
PLUGINS = ROOT / "plugins"

LAYERS = ("cli", "api", "jobs", "engine", "deploy", "latency", "report", "analysis", "search", "train", "results",
          "space", "data")
# the contracts, top to bottom: the plugin host builds registries from the hookspecs' info records
CONTRACTS = ("plugins", "hookspecs", "infos", "errors", "lazy")
TOP_LEVEL = {"__init__", "__main__", *CONTRACTS}
PUBLIC_FACE = {"ecgsearch", "ecgsearch.hookspecs", "ecgsearch.infos", "ecgsearch.errors"}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (a submodule when ``from package import submodule``)
    line: int
    deferred: bool  # inside a function
    commented: bool  # a "deferred" comment on the statement or its import block


def module_name(path: Path, root: Path, package: str) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts])


def _modules(root: Path, package: str) -> dict[str, Path]:
    return {module_name(p, root, package): p for p in sorted(root.rglob("*.py"))}


def _resolve(node: ast.ImportFrom, source: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = source.split(".") if is_package else source.split(".")[:-1]
    base = base[:len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_blocks(body: list[ast.stmt]) -> dict[int, list[ast.stmt]]:
    """Each import statement of a body (by line) -> the run of consecutive import statements it is in."""
    blocks: dict[int, list[ast.stmt]] = {}
    run: list[ast.stmt] = []
    for statement in [*body, None]:
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            run.append(statement)
            continue
        for member in run:
            blocks[member.lineno] = run
        run = []
    return blocks


def _commented(lines: list[str], block: list[ast.stmt]) -> bool:
    """A "deferred" comment on one of the block's lines, or on the comment lines right above it."""
    if any("deferred" in line for line in lines[block[0].lineno - 1:block[-1].end_lineno]):
        return True
    k = block[0].lineno - 2
    while k >= 0 and lines[k].strip().startswith("#"):
        if "deferred" in lines[k]:
            return True
        k -= 1
    return False


def imports_of(path: Path, source: str, known: set[str], prefix: str) -> list[Import]:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        body = getattr(node, "body", [])
        blocks = _import_blocks(body if isinstance(body, list) else [])
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit(other, in_function)
                continue
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            targets: list[str] = []
            if isinstance(child, ast.Import):
                targets = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                module = _resolve(child, source, path.name == "__init__.py")
                targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in known else module for a in child.names]
            for target in dict.fromkeys(targets):
                if target == prefix or target.startswith(prefix + "."):
                    block = blocks.get(child.lineno, [child])
                    found.append(Import(source, target, child.lineno, in_function,
                                        _commented(lines, block) if in_function else True))
            visit(child, inner)

    visit(ast.parse(text), False)
    return found


CORE = _modules(PACKAGE, "ecgsearch")
CORE_IMPORTS = [imp for name, path in CORE.items() for imp in imports_of(path, name, set(CORE), "ecgsearch")]


def stage(module: str) -> str:
    """The subpackage (or top-level module) a module belongs to: ``ecgsearch.train.trial`` -> ``train``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def rank(module: str) -> int:
    name = stage(module)
    if name in LAYERS:
        return LAYERS.index(name)
    if name in CONTRACTS:
        return len(LAYERS) + CONTRACTS.index(name)
    return -1  # the public face and ``python -m ecgsearch``: above everything


def test_the_top_level_holds_only_the_public_face_and_the_contracts():
    top = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert set(top) <= TOP_LEVEL, f"modules outside a stage's subpackage: {sorted(set(top) - TOP_LEVEL)}"
    assert len(top) <= len(TOP_LEVEL)  # the contracts and the public face, nothing else
    folders = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    assert folders == sorted(LAYERS), "a subpackage was added or removed: declare its place in LAYERS and docs"


def order_violations(imports: list[Import]) -> list[str]:
    """The imports that run against the declared order (or import the public face from inside)."""
    wrong = []
    for imp in imports:
        if rank(imp.source) == -1:
            continue  # the public face re-exports from every stage
        if imp.target == "ecgsearch":
            wrong.append(f"{imp.source}:{imp.line} imports the public face 'ecgsearch'; import the module itself")
        elif stage(imp.source) == stage(imp.target) and rank(imp.source) < len(LAYERS):
            continue  # within one stage
        elif rank(imp.target) <= rank(imp.source):
            wrong.append(f"{imp.source}:{imp.line} ({stage(imp.source)}) imports {imp.target} "
                         f"({stage(imp.target)}), which is not below it")
    return wrong


def test_imports_run_one_way():
    wrong = order_violations(CORE_IMPORTS)
    assert not wrong, "imports against the declared order:\n" + "\n".join(wrong)


def test_the_order_check_catches_an_import_upwards():
    upwards = [Import("ecgsearch.data.cache", "ecgsearch.engine.run", 1, False, True),
               Import("ecgsearch.infos", "ecgsearch.latency.backend", 2, True, True),
               Import("ecgsearch.errors", "ecgsearch.infos", 3, False, True),
               Import("ecgsearch.train.trial", "ecgsearch", 4, False, True)]
    downwards = [Import("ecgsearch.engine.run", "ecgsearch.data.cache", 1, False, True),
                 Import("ecgsearch.plugins", "ecgsearch.infos", 2, False, True),
                 Import("ecgsearch", "ecgsearch.engine", 3, True, True)]
    assert len(order_violations(upwards)) == 4 and order_violations(downwards) == []


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def connect(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for other in edges.get(node, ()):
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return cycles


def test_no_import_cycle_at_module_level_or_inside_functions():
    edges: dict[str, set[str]] = {}
    for imp in CORE_IMPORTS:
        if imp.target in CORE and imp.target != imp.source:
            edges.setdefault(imp.source, set()).add(imp.target)
    assert find_cycles(edges) == []


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_an_import_inside_a_function_says_why_it_is_deferred():
    silent = [f"{imp.source}:{imp.line} imports {imp.target}" for imp in CORE_IMPORTS
              if imp.deferred and not imp.commented]
    assert not silent, ("imports inside functions without a '# deferred: <why>' comment (import at module "
                        "level unless it defers a heavy dependency):\n" + "\n".join(silent))


def test_built_in_plugins_import_only_the_public_face():
    known = set(_modules(PLUGINS, "ecgsearch_plugins")) | set(CORE)
    wrong = []
    for name, path in _modules(PLUGINS, "ecgsearch_plugins").items():
        for imp in imports_of(path, name, known, "ecgsearch"):
            if imp.target.startswith("ecgsearch_plugins") or imp.target in PUBLIC_FACE:
                continue
            wrong.append(f"{name}:{imp.line} imports {imp.target}")
    assert not wrong, "built-in plugins must import only ecgsearch (the public face) and its contracts:\n" + \
        "\n".join(wrong)


def test_the_core_imports_no_plugin():
    assert not [imp for name, path in CORE.items()
                for imp in imports_of(path, name, set(CORE), "ecgsearch_plugins")]


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_each_stage_says_what_lives_there_and_what_it_may_import(package):
    doc = ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text())) or ""
    assert len(doc.splitlines()) >= 2, f"ecgsearch/{package}/__init__.py needs a docstring"
    assert "import" in doc and re.search(r"[Rr]ead ``\w+\.py`` first", doc), doc
    first = re.search(r"[Rr]ead ``(\w+\.py)`` first", doc).group(1)
    assert (PACKAGE / package / first).is_file()


def test_every_module_the_design_guide_names_exists():
    text = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    named = set(re.findall(r"\b(ecgsearch(?:\.\w+)+)", text)) | {
        ("ecgsearch." + p.replace("/", ".").removesuffix(".py")).removesuffix(".__init__")
        for p in re.findall(r"ecgsearch/([\w/]+\.py)", text)}
    assert len(named) > 30
    missing = []
    for name in sorted(named):
        module, attribute = name, None
        while module not in CORE and "." in module:  # ``ecgsearch.results.open_run``: an attribute of a module
            module, attribute = module.rsplit(".", 1)[0], name.rsplit(".", 1)[1]
        if module not in CORE:
            missing.append(name)
        elif attribute is not None and not re.search(rf"\b{attribute}\b", CORE[module].read_text()):
            missing.append(name)
    assert not missing, f"docs/design.md names what does not exist: {missing}"


@pytest.mark.parametrize("old", ["ecgsearch.trial", "ecgsearch.cache", "ecgsearch.preprocess", "ecgsearch.costs",
                                 "ecgsearch.analysis.features"])
def test_an_old_import_path_still_imports_with_a_deprecation_warning(old):
    import importlib
    import sys

    import ecgsearch

    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=rf"{re.escape(old)} moved to {re.escape(ecgsearch.MOVED[old][0])}"):
        module = importlib.import_module(old)
    new = importlib.import_module(ecgsearch.MOVED[old][0])
    name = next(n for n in vars(new) if not n.startswith("_") and callable(getattr(new, n))
                and getattr(getattr(new, n), "__module__", "") == new.__name__)
    assert getattr(module, name) is getattr(new, name)
    with pytest.raises(AttributeError, match="moved to"):
        module.no_such_name  # noqa: B018


def test_the_public_face_resolves_every_lazy_name_and_stays_light():
    import subprocess
    import sys

    import ecgsearch

    for name in ecgsearch.__all__:
        assert getattr(ecgsearch, name) is not None
    code = "import sys, ecgsearch; print(sorted(m for m in ('torch', 'ray', 'pandas') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "[]"


def test_no_module_imports_another_modules_private_names():
    private = []
    for name, path in CORE.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ecgsearch"):
                private += [f"{name}:{node.lineno} imports {node.module}.{a.name}" for a in node.names
                            if a.name.startswith("_") and not a.name.startswith("__")]
    assert not private, "\n".join(private)
