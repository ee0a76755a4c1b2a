"""``Space``: a space file in a notebook, read from YAML or built from a dict, checked as ``validate`` checks it.

Reading keeps the document; ``validate()`` parses and checks it (every problem is one ``UserError`` whose
message is the sentence ``ecgsearch validate`` prints) and everything else validates first. ``to_tune()``
and ``trainable(out)`` hand the space to a Ray Tune user's own ``Tuner``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ecgsearch.errors import UserError

if TYPE_CHECKING:
    from ecgsearch.space import SearchSpec


class Space:
    """A whole space file (data, task, budget, the searched parameters...), as docs/space-file.md describes.

    Build one with ``Space.from_yaml(path)`` or ``Space.from_dict(mapping)``; ``validate()`` checks it.
    ``spec`` is the validated, typed form the engine reads.
    """

    def __init__(self, source: Path | Mapping[str, Any], trials: int | None = None) -> None:
        self._source = source
        self._trials = trials
        self._spec: SearchSpec | None = None

    @classmethod
    def from_yaml(cls, path: str | Path) -> Space:
        """The space file at ``path`` (read when validated; a missing file is refused then, in one sentence)."""
        return cls(Path(path))

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> Space:
        """A space file given as a mapping (what ``yaml.safe_load`` of a space file returns)."""
        if not isinstance(document, Mapping):
            raise UserError(f"Space.from_dict: expected a mapping of the space file's sections, got "
                            f"{type(document).__name__}; pass a dict such as yaml.safe_load(open(path)).")
        return cls(dict(document))

    def validate(self) -> Space:
        """Parse and check the space (plugins, values, and that each drawn architecture can be built), as
        ``ecgsearch validate`` does; raise ``ecgsearch.UserError`` with the same sentence, else return self."""
        if self._spec is None:
            # deferred: parsing loads the plugin registries; the buildability check imports the plugins' code
            from ecgsearch.search.candidates import check_buildable
            from ecgsearch.space import load_space, parse_space
            from ecgsearch.space.spec import with_trials

            spec = load_space(self._source) if isinstance(self._source, Path) else parse_space(self._source)
            spec = with_trials(spec, self._trials)
            check_buildable(spec)
            self._spec = spec
        return self

    @property
    def spec(self) -> SearchSpec:
        """The validated space file (``ecgsearch.space.SearchSpec``)."""
        self.validate()
        assert self._spec is not None
        return self._spec

    @property
    def path(self) -> Path | None:
        """The file the space was read from (None for one built from a dict)."""
        return self._source if isinstance(self._source, Path) else None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def metric(self) -> str:
        """The searched metric's column, ``val.<metric>``."""
        return f"val.{self.spec.metric}"

    @property
    def mode(self) -> str:
        return self.spec.mode

    def with_trials(self, trials: int) -> Space:
        """The same space with ``budget.trials`` replaced (as ``ecgsearch run --trials``)."""
        return type(self)(self._source, trials)

    def to_yaml(self) -> str:
        """The space file's text: the file as written, or the mapping dumped as YAML (what a run folder keeps)."""
        if isinstance(self._source, Path):
            from ecgsearch.space.yamlio import read_text  # deferred: only the file form reads it

            return read_text(self._source)
        return yaml.safe_dump(self._source, sort_keys=False)

    def summary(self) -> str:
        """The line ``ecgsearch validate`` prints after ``ok``."""
        spec = self.spec
        seeds = f" x {spec.budget.repeats} seeds" if spec.budget.repeats > 1 else ""
        return (f"{spec.name}: {spec.budget.trials} trials{seeds} of {spec.budget.epochs} epochs, metric {spec.metric} "
                f"({spec.mode}), architectures {', '.join(spec.space.choices['architecture'])}, optimizers "
                f"{', '.join(spec.space.choices['optimizer'])}")

    # --- Ray Tune ------------------------------------------------------------------------------------

    def to_tune(self) -> dict[str, Any]:
        """A Ray Tune ``param_space``: one flat key per searched parameter (``tune.choice``, ``tune.loguniform``...)."""
        return self.spec.space.to_tune()

    def trainable(self, out: str | Path) -> Any:
        """A Ray Tune trainable that trains one configuration of ``to_tune()`` as an ecgsearch trial does.

        It reports each epoch (``objective`` and ``val.<metric>`` to optimise, the costs, the losses) and
        keeps each trial's best weights in ``out/trials/<trial id>/best.pt``. The data is prepared here
        (once, cached). Pass it to ``tune.Tuner(space.trainable(out), param_space=space.to_tune(), ...)``.
        """
        from ecgsearch.engine import tune_adapter  # deferred: the engine imports Ray and torch

        return tune_adapter(self.spec, Path(out))

    def __repr__(self) -> str:
        where = str(self._source) if isinstance(self._source, Path) else "a dict"
        return f"Space({where}{'' if self._spec is None else ', validated'})"
