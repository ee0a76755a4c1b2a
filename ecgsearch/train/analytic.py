"""The arithmetic of an architecture's costs and the parts of its factory, without torch.

``Costs`` (one model's cost features), ``Tally`` (parameters and MACs added up layer by layer), ``Span``
(a receptive field pushed through the layers) and ``AnalyticFactory`` (a factory made of a ``spec`` that
checks the arguments, a ``model`` that builds the network and a ``costs`` that counts it) are what a
plugin's registration module and a space-file check need; none of them imports torch, so
``ecgsearch validate`` and ``ecgsearch plugins`` stay fast. ``ecgsearch.train.costs`` counts built models
(torch) and re-exports these names.
"""

from __future__ import annotations

import functools
import inspect
import math
from dataclasses import asdict, dataclass
from typing import Any, Callable

from ecgsearch.infos import resolve

ESTIMATOR = "estimator"  # ArchitectureInfo.model_kind of features and a fitted model: no network to count


@dataclass(frozen=True)
class Span:
    """How much of the input one output sample sees (``size``) and the input step between outputs."""

    size: float = 1
    jump: int = 1

    def conv(self, kernel: int, stride: int = 1, dilation: int = 1) -> Span:
        return Span(self.size + (kernel - 1) * dilation * self.jump, self.jump * stride)

    def whole(self) -> Span:
        """Every output sees the whole input (attention, global pooling)."""
        return Span(math.inf, self.jump)

    @staticmethod
    def widest(*spans: Span) -> Span:
        """Parallel branches merged by addition or concatenation: the widest one wins."""
        return Span(max(s.size for s in spans), max(s.jump for s in spans))



@dataclass(frozen=True)
class Costs:
    """One model's cost features; ``None`` where the model does not say (no stem/stages/head contract,
    or an unknown sampling rate)."""

    params: int
    macs: int
    flops: int
    receptive_field: int | None = None  # input samples one last-stage feature sees (<= input length)
    receptive_field_s: float | None = None  # the same in seconds
    stages: int | None = None
    feature_width: int | None = None  # head.in_features: the pooled vector the output layer reads
    receptive_field_frac: float | None = None  # receptive_field / input samples, in (0, 1]

    def columns(self) -> dict[str, Any]:
        """The results-table columns (``cost.params``, ``cost.macs``, ``cost.flops``, ...)."""
        return {f"cost.{k}": v for k, v in asdict(self).items()}


@dataclass
class Tally:
    """Parameters and MACs added up layer by layer: the arithmetic of an analytic cost function."""

    params: int = 0
    macs: int = 0

    def conv(self, c_in: int, c_out: int, kernel: int, length_out: int, *, groups: int = 1,
             bias: bool = False) -> None:
        weights = c_out * (c_in // groups) * kernel
        self.params += weights + (c_out if bias else 0)
        self.macs += weights * length_out

    def linear(self, n_in: int, n_out: int, positions: int = 1, *, bias: bool = True) -> None:
        """A linear layer applied at ``positions`` time steps or tokens."""
        self.params += n_in * n_out + (n_out if bias else 0)
        self.macs += n_in * n_out * positions

    def norm(self, channels: int) -> None:
        """An affine BatchNorm or LayerNorm: a scale and a shift per channel, no MACs."""
        self.params += 2 * channels

    def costs(self, span: Span, num_samples: int, stages: int, feature_width: int) -> Costs:
        field = int(min(span.size, num_samples))
        return Costs(params=self.params, macs=self.macs, flops=2 * self.macs, receptive_field=field,
                     stages=stages, feature_width=feature_width, receptive_field_frac=field / num_samples)


class AnalyticFactory:
    """An architecture factory ``factory(in_leads, num_samples, num_outputs, **hparams)`` made of three
    parts: ``spec`` validates the arguments into a plain description (raising one-sentence
    ``ValueError``s), ``model(spec)`` builds the module and ``costs(spec)`` counts it without building.
    ``model`` and ``costs`` may each be a callable or a ``"module:attr"`` reference imported on first use
    (as ``PluginInfo.factory`` may): a plugin keeps the spec where it registers and its ``nn.Module`` classes
    in a module that imports torch, so listing the plugin and checking a space file import no torch.

    It has ``spec``'s signature (the space file's parameter names are checked against it) and is picklable.
    """

    def __init__(self, spec: Callable[..., Any], model: Callable[[Any], Any] | str,
                 costs: Callable[[Any], Costs] | str) -> None:
        self.spec = spec
        self._model, self._costs = model, costs
        self.__signature__ = inspect.signature(spec).replace(return_annotation="torch.nn.Module")
        self.__doc__ = spec.__doc__
        self.__name__ = getattr(spec, "__name__", "factory").removesuffix("_spec")

    @property
    def model(self) -> Callable[[Any], Any]:
        """``model(spec) -> nn.Module`` (a ``"module:attr"`` reference is imported now)."""
        return resolve(self._model)

    @property
    def costs(self) -> Callable[[Any], Costs]:
        """``costs(spec) -> Costs`` (a ``"module:attr"`` reference is imported now)."""
        return resolve(self._costs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(self.spec(*args, **kwargs))

    def analytic_costs(self, *args: Any, **kwargs: Any) -> Costs:
        """The cost features, from the same arguments as the factory, without building the model."""
        return self.costs(self.spec(*args, **kwargs))

    def __repr__(self) -> str:
        return f"AnalyticFactory({self.__name__}{inspect.signature(self.spec)})"


def _bound(factory: Callable[..., Any], part: Callable[[Any], Any]) -> Callable[..., Any] | None:
    """``part(factory)`` (a callable taking the factory's arguments, or None), through ``functools.partial``
    variants of the factory with the same bound arguments."""
    if isinstance(factory, functools.partial):
        inner = _bound(factory.func, part)
        return None if inner is None else functools.partial(inner, *factory.args, **factory.keywords)
    fn = part(factory)
    return fn if callable(fn) else None


def analytic_costs(factory: Callable[..., Any]) -> Callable[..., Costs] | None:
    """The factory's analytic cost function (same arguments as the factory), or ``None``.

    Any factory may offer one as an ``analytic_costs`` attribute; ``functools.partial`` variants of a
    factory that has one inherit it with the same bound arguments.
    """
    return _bound(factory, lambda f: getattr(f, "analytic_costs", None))


def argument_check(factory: Callable[..., Any]) -> Callable[..., Any] | None:
    """The ``spec`` of an ``AnalyticFactory`` (or of a ``functools.partial`` variant of one): it checks the
    factory's arguments, raising the factory's ``ValueError``, without building or counting anything.
    None for any other factory."""
    return _bound(factory, lambda f: f.spec if isinstance(f, AnalyticFactory) else None)
