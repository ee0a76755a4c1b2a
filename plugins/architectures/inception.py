"""InceptionTime-1D (Ismail Fawaz et al., 2020): the 1D-CNN of the synthetic-to-real transfer study.

An Inception module runs, side by side on its input: a 1x1 bottleneck (``bottleneck`` channels; skipped
on a single-lead input, as in the original) followed by three convs of kernels ``kernel``,
``kernel / 2`` and ``kernel / 4`` (made odd, so 39, 19, 9 by default), and a 3-wide max-pool followed
by a 1x1 conv; each branch gives ``filters`` channels, concatenated to ``4 * filters``, then BN + ReLU.
Every three modules form a residual block (a stage): a 1x1 conv + BN shortcut is added before the
last ReLU. The signal is never downsampled; a pool over time (``pool``, global average by default) and a
linear layer make the head.
``depth`` is the number of modules (6 in the paper); a last block may hold fewer than three.

The network (``InceptionTime1d``) is in ``_inception_impl.py``, imported when a model is built.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ecgsearch import (
    AnalyticFactory,
    ArchitectureInfo,
    Costs,
    Span,
    Tally,
    bool_param,
    hookimpl,
    int_param,
)
from ecgsearch_plugins.architectures._blocks import (
    MAX_WIDTH,
    blocks_param,
    check_int,
    check_io,
    check_kernel,
    check_pool,
    kernel_param,
    pool_param,
    tally_head,
    width_param,
)

MODULES_PER_BLOCK = 3


def branch_kernels(kernel: int) -> tuple[int, int, int]:
    """``kernel``, ``kernel / 2``, ``kernel / 4``, each made odd so 'same' padding stays centred."""
    return tuple((kernel >> i) | 1 for i in range(3))  # type: ignore[return-value]


@dataclass(frozen=True)
class InceptionSpec:
    in_leads: int
    num_samples: int
    num_outputs: int
    filters: int
    depth: int
    kernel: int
    bottleneck: int
    residual: bool
    pool: str = "gap"

    def block_sizes(self) -> list[int]:
        """Modules per residual block: threes, the last one possibly shorter."""
        return [min(MODULES_PER_BLOCK, self.depth - start) for start in range(0, self.depth, MODULES_PER_BLOCK)]


PARAMS = {
    "filters": width_param(doc="channels per branch; a module outputs `4 * filters`"),
    "depth": blocks_param("Inception modules; every three form a residual block (a stage)"),
    "kernel": kernel_param("the longest kernel; the branches use `kernel`, `kernel / 2`, `kernel / 4`, made odd"),
    "bottleneck": int_param(0, MAX_WIDTH, doc="channels of the 1x1 bottleneck before the branches (0 = none)"),
    "residual": bool_param("the 1x1 conv + BN shortcut around each block"),
    "pool": pool_param(),
}


def inception_spec(in_leads: int, num_samples: int, num_outputs: int, *, filters: int = 32, depth: int = 6,
                   kernel: int = 39, bottleneck: int = 32, residual: bool = True,
                   pool: str = "gap") -> InceptionSpec:
    """InceptionTime-1D with ``depth`` modules of ``4 * filters`` channels, longest odd ``kernel`` (which
    must fit in ``num_samples``), a ``bottleneck``-channel 1x1 conv (0 = none), residual blocks and the
    head's ``pool``."""
    name = "inception"
    filters = check_int(name, "filters", filters)
    depth = check_int(name, "depth", depth)
    kernel = check_kernel(name, kernel)
    bottleneck = check_int(name, "bottleneck", bottleneck, minimum=0)
    if not isinstance(residual, bool):
        raise ValueError(f"{name}: residual={residual!r} must be true or false.")
    pool = check_pool(name, pool)
    in_leads, num_samples, num_outputs = check_io(
        name, in_leads, num_samples, num_outputs, min_samples=kernel,
        reason=f"the longest kernel (kernel={kernel}); use a smaller kernel or longer records")
    return InceptionSpec(in_leads, num_samples, num_outputs, filters, depth, kernel, bottleneck, residual, pool)


def inception_costs(spec: InceptionSpec) -> Costs:
    """Parameters, MACs and receptive field of ``InceptionTime1d(spec)`` without building it."""
    t, f, length, span = Tally(), spec.filters, spec.num_samples, Span()
    c_in = spec.in_leads
    for block in spec.block_sizes():
        if spec.residual:
            t.conv(c_in, 4 * f, 1, length)
            t.norm(4 * f)
        for _ in range(block):
            width = c_in
            if c_in > 1 and spec.bottleneck:
                t.conv(c_in, spec.bottleneck, 1, length)
                width = spec.bottleneck
            for k in branch_kernels(spec.kernel):
                t.conv(width, f, k, length)
            t.conv(c_in, f, 1, length)
            t.norm(4 * f)
            span = Span.widest(span.conv(max(branch_kernels(spec.kernel))), span.conv(3))
            c_in = 4 * f
    features = tally_head(t, 4 * f, length, spec.num_outputs, spec.pool)
    return t.costs(span, spec.num_samples, len(spec.block_sizes()), features)


build_inception = AnalyticFactory(inception_spec, "ecgsearch_plugins.architectures._inception_impl:InceptionTime1d",
                                  inception_costs)


@hookimpl
def ecgsearch_register_architectures() -> list[ArchitectureInfo]:
    return [
        ArchitectureInfo(
            name="inception",
            description="InceptionTime-1D (parallel convs of 3 kernel sizes + max-pool, residual every 3 modules)",
            factory=build_inception,
            family="inception",
            default_space={"filters": {"choice": [16, 32]}, "depth": {"choice": [3, 6]},
                           "kernel": {"choice": [19, 39]}},
            params=PARAMS,
        ),
        ArchitectureInfo(
            name="inception_tiny",
            description="InceptionTime-1D with 8 filters per branch, 3 modules, kernel 19: fast, for tests",
            factory=functools.partial(build_inception, filters=8, depth=3, kernel=19, bottleneck=8),
            family="inception",
            default_space={"filters": {"choice": [4, 8]}, "kernel": {"choice": [9, 19]}},
            params=PARAMS,
        ),
    ]
