"""The plugin host: a pluggy manager, and the typed registries (one generic ``Registry`` per kind) built from it.

``get_plugin_manager()`` is a factory (tests and embedders get a fresh manager each call):
hookspecs, then the built-in plugins, then the ``ecgsearch`` entry points (unless
``ECGSEARCH_DISABLE_PLUGIN_AUTOLOAD`` is set), then modules named in ``ECGSEARCH_PLUGINS``
(comma-separated) or passed explicitly, then ``check_pending()`` so a misspelled hook fails loudly.

A plugin that fails to import, or whose collection hook raises, is recorded as broken with the
command that fixes it; it never takes the engine down.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib
import logging
import os
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Generic, Iterable, Iterator, TypeVar

import pluggy

from ecgsearch import hookspecs
from ecgsearch.errors import PluginError, UserError
from ecgsearch.infos import (
    ArchitectureInfo,
    BackendInfo,
    DatasetInfo,
    MetricInfo,
    OptimizerInfo,
    PluginInfo,
    ScheduleInfo,
    SchedulerInfo,
    SearcherInfo,
    SurrogateInfo,
    TaskInfo,
    TrackerInfo,
)

log = logging.getLogger(__name__)

T = TypeVar("T", bound=PluginInfo)

ENTRY_POINT_GROUP = "ecgsearch"
DISABLE_AUTOLOAD_ENV = "ECGSEARCH_DISABLE_PLUGIN_AUTOLOAD"
EXTRA_PLUGINS_ENV = "ECGSEARCH_PLUGINS"

# The built-ins, by the same names as their entry points in pyproject.toml.
BUILTIN_PLUGINS: dict[str, str] = {
    "resnet": "ecgsearch_plugins.architectures.resnet",
    "convnext": "ecgsearch_plugins.architectures.convnext",
    "regnet": "ecgsearch_plugins.architectures.regnet",
    "transformer": "ecgsearch_plugins.architectures.transformer",
    "inception": "ecgsearch_plugins.architectures.inception",
    "recurrent": "ecgsearch_plugins.architectures.recurrent",
    "features_gbm": "ecgsearch_plugins.architectures.features_gbm",
    "optimizers": "ecgsearch_plugins.optimizers",
    "schedules": "ecgsearch_plugins.schedules",
    "tasks": "ecgsearch_plugins.tasks",
    "ssl_tasks": "ecgsearch_plugins.ssl_tasks",
    "metrics": "ecgsearch_plugins.metrics",
    "synthetic": "ecgsearch_plugins.datasets.synthetic",
    "physionet2021": "ecgsearch_plugins.datasets.physionet2021",
    "ptbxl": "ecgsearch_plugins.datasets.ptbxl",
    "code15": "ecgsearch_plugins.datasets.code15",
    "deepfake": "ecgsearch_plugins.datasets.deepfake",
    "surrogates": "ecgsearch_plugins.surrogates",
    "schedulers": "ecgsearch_plugins.schedulers",
    "searchers": "ecgsearch_plugins.searchers",
    "torch_backends": "ecgsearch_plugins.backends.torch_backends",
    "onnxruntime_backends": "ecgsearch_plugins.backends.onnxruntime_backends",
    "openvino_backends": "ecgsearch_plugins.backends.openvino_backends",
    "tracking": "ecgsearch_plugins.tracking.hooks",
    "mlflow_tracker": "ecgsearch_plugins.tracking.mlflow_tracker",
    "tensorboard_tracker": "ecgsearch_plugins.tracking.tensorboard_tracker",
    "wandb_tracker": "ecgsearch_plugins.tracking.wandb_tracker",
}

# hook name -> (registry attribute, info type)
COLLECTION_HOOKS: dict[str, tuple[str, type[PluginInfo]]] = {
    "ecgsearch_register_architectures": ("architectures", ArchitectureInfo),
    "ecgsearch_register_optimizers": ("optimizers", OptimizerInfo),
    "ecgsearch_register_schedules": ("schedules", ScheduleInfo),
    "ecgsearch_register_datasets": ("datasets", DatasetInfo),
    "ecgsearch_register_tasks": ("tasks", TaskInfo),
    "ecgsearch_register_metrics": ("metrics", MetricInfo),
    "ecgsearch_register_backends": ("backends", BackendInfo),
    "ecgsearch_register_surrogates": ("surrogates", SurrogateInfo),
    "ecgsearch_register_schedulers": ("schedulers", SchedulerInfo),
    "ecgsearch_register_searchers": ("searchers", SearcherInfo),
    "ecgsearch_register_trackers": ("trackers", TrackerInfo),
}


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


@dataclass(frozen=True)
class BrokenPlugin:
    """A plugin that could not be loaded or whose hook raised; ``fix`` says what to run."""

    name: str
    error: str
    fix: str

    def message(self) -> str:
        return f"plugin '{self.name}' could not be loaded ({self.error}); fix: {self.fix}"


class EcgsearchPluginManager(pluggy.PluginManager):
    """A pluggy manager that also remembers which plugins failed to load."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.broken: list[BrokenPlugin] = []


def _fix_for(error: BaseException, module: str, distribution: str | None) -> str:
    missing = error.name if isinstance(error, ModuleNotFoundError) and error.name else None
    if missing and not module.startswith(missing) and missing.split(".")[0] != module.split(".")[0]:
        return f"pip install {missing.split('.')[0]}"  # a dependency of the plugin is missing
    if module.startswith("ecgsearch_plugins."):
        return "pip install --force-reinstall ecgsearch"  # a built-in is missing: a broken install
    if missing:
        return f"pip install {missing.split('.')[0]}"
    if distribution:
        return f"pip install --force-reinstall {distribution}"
    return f"check that the module imports: python -c 'import {module}'"


def _register_module(pm: EcgsearchPluginManager, name: str, module: str, dist: str | None = None) -> None:
    try:
        pm.register(importlib.import_module(module), name=name)
    except Exception as error:  # a broken plugin must never take the engine down
        broken = BrokenPlugin(name, f"{type(error).__name__}: {error}", _fix_for(error, module, dist))
        log.warning(broken.message())
        pm.broken.append(broken)


def check_named_modules(modules: Iterable[str]) -> None:
    """Import each explicitly named plugin module (``ecgsearch -p MODULE``) now: one that cannot be imported
    is a ``PluginError`` naming it, not a warning the run goes on past without the plugin."""
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as error:
            broken = BrokenPlugin(module, f"{type(error).__name__}: {error}", _fix_for(error, module, None))
            raise PluginError(f"-p {module}: {broken.message()}.") from None


def get_plugin_manager(extra_modules: Iterable[str] = ()) -> EcgsearchPluginManager:
    """A new plugin manager with built-ins, installed entry points and explicitly named modules."""
    pm = EcgsearchPluginManager()
    pm.add_hookspecs(hookspecs)
    for name, module in BUILTIN_PLUGINS.items():
        _register_module(pm, name, module)
    if not os.environ.get(DISABLE_AUTOLOAD_ENV):
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if pm.has_plugin(ep.name) or any(b.name == ep.name for b in pm.broken):
                continue
            _register_module(pm, ep.name, ep.value.partition(":")[0], ep.dist.name if ep.dist else None)
    named = [m.strip() for m in os.environ.get(EXTRA_PLUGINS_ENV, "").split(",") if m.strip()]
    for module in [*named, *extra_modules]:
        if not pm.has_plugin(module):
            _register_module(pm, module, module)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as error:
        raise PluginError(
            f"plugin '{pm.get_name(error.plugin)}' implements a hook that does not exist ({error}); "
            "check the hook's spelling against ecgsearch/hookspecs.py."
        ) from None
    return pm


@dataclass
class Registries:
    """All typed registries, plus the plugins that are registered and those that are broken."""

    architectures: Registry[ArchitectureInfo] = field(default_factory=lambda: Registry("architecture"))
    optimizers: Registry[OptimizerInfo] = field(default_factory=lambda: Registry("optimizer"))
    schedules: Registry[ScheduleInfo] = field(default_factory=lambda: Registry("schedule"))
    datasets: Registry[DatasetInfo] = field(default_factory=lambda: Registry("dataset"))
    tasks: Registry[TaskInfo] = field(default_factory=lambda: Registry("task"))
    metrics: Registry[MetricInfo] = field(default_factory=lambda: Registry("metric"))
    backends: Registry[BackendInfo] = field(default_factory=lambda: Registry("backend"))
    surrogates: Registry[SurrogateInfo] = field(default_factory=lambda: Registry("surrogate"))
    schedulers: Registry[SchedulerInfo] = field(default_factory=lambda: Registry("scheduler"))
    searchers: Registry[SearcherInfo] = field(default_factory=lambda: Registry("searcher"))
    trackers: Registry[TrackerInfo] = field(default_factory=lambda: Registry("tracker"))
    plugins: list[str] = field(default_factory=list)
    broken: list[BrokenPlugin] = field(default_factory=list)
    manager: Any = None

    def by_kind(self) -> dict[str, Registry[Any]]:
        return {attr: getattr(self, attr) for attr, _ in COLLECTION_HOOKS.values()}


def build_registries(pm: EcgsearchPluginManager) -> Registries:
    """Call every collection hook plugin by plugin, so each item knows who registered it."""
    regs = Registries(manager=pm, broken=list(pm.broken))
    regs.plugins = sorted(name for name, _ in pm.list_name_plugin())
    for hook_name, (attr, info_type) in COLLECTION_HOOKS.items():
        registry = getattr(regs, attr)
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            try:
                items = list(impl.function() or [])
            except Exception as error:
                regs.broken.append(BrokenPlugin(impl.plugin_name, f"{hook_name} raised {error!r}",
                                                "report it to the plugin's authors or uninstall it"))
                continue
            for item in items:
                if not isinstance(item, info_type):
                    raise PluginError(
                        f"plugin '{impl.plugin_name}' returned {type(item).__name__} from {hook_name}; "
                        f"it must return {info_type.__name__} records."
                    )
                registry.add(_with_plugin(item, impl.plugin_name))
    if regs.broken:
        names = ", ".join(f"'{b.name}'" for b in regs.broken)
        for registry in regs.by_kind().values():
            registry.broken_note = f" (plugins {names} failed to load: see `ecgsearch plugins`)"
    return regs


def _with_plugin(item: PluginInfo, plugin: str) -> PluginInfo:
    return dataclasses.replace(item, plugin=plugin)


@functools.lru_cache(maxsize=None)
def get_registries() -> Registries:
    """The registries of this process (built once; trial workers call this too)."""
    return build_registries(get_plugin_manager())
