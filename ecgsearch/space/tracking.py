"""``tracking:``: the experiment trackers a search logs to, each off unless named (docs/tracking.md).

``tracking: {mlflow: {tracking_uri: ...}, tensorboard: {}, wandb: {project: ...}}``: each key a registered
tracker (``ecgsearch_register_trackers``), each value a mapping of its settings (``{}`` or ``true``: its
defaults; ``false``: off), checked against what the tracker declares like any plugin's options. A tracker
whose package is not installed is refused here, so ``ecgsearch validate`` names the extra to install.
"""

from __future__ import annotations

from typing import Any, Mapping

from ecgsearch.infos import TrackerInfo
from ecgsearch.plugins import Registries
from ecgsearch.space.fields import mapping, registered
from ecgsearch.space.messages import Context, show
from ecgsearch.space.search_options import parse_plugin_options
from ecgsearch.space.sections import usable
from ecgsearch.space.yamlio import child_key

FACTORY_POSITIONAL = 2  # factory(spec, out_dir, **settings)


def parse_tracking(ctx: Context, value: Any, registries: Registries,
                   check_installed: bool = True) -> dict[str, Mapping[str, Any]]:
    """Tracker name -> its checked settings, for the trackers that are on (and installed, unless
    ``check_installed`` is False: reading a finished run needs no tracker)."""
    section = mapping(ctx, "tracking", value, "a mapping of tracker names to their settings")
    on = {}
    for name, settings in section.items():
        key = child_key("tracking", name)
        info = registered(ctx, key, name, registries.trackers)
        if settings is False:
            continue
        settings = _as_mapping(ctx, key, settings, info)
        if check_installed:
            usable(ctx, key, info)  # "tracker 'mlflow' needs the Python package 'mlflow' (pip install ...)"
        on[name] = parse_plugin_options(ctx, key, settings, info, FACTORY_POSITIONAL, registries)
    return on


def _as_mapping(ctx: Context, key: str, settings: Any, info: TrackerInfo) -> dict[str, Any]:
    """A tracker's settings: a mapping, or ``true`` for its defaults."""
    if settings is True:
        return {}
    if not isinstance(settings, dict):
        raise ctx.error(key, f"{show(settings)} is not a mapping of settings, true or false; write "
                        f"{info.name}: {{}} to use its defaults")
    return settings
