"""A model as the kernels a graph runtime runs: its ONNX graph cut into fusion groups.

ONNX Runtime and OpenVINO do not run a model op by op: a convolution and the BatchNorm, activation and
residual ``Add`` after it become one fused kernel, a ``MatMul`` takes its bias, activation and reshapes
with it. Timing ops one by one would count each of those separately (and pay a call's overhead for each
``Relu``), so the model is cut where the runtimes cut it:

1. ``model_graph`` exports the model to ONNX exactly as the backends do (TorchScript exporter, opset 17,
   fixed batch), folds constants and BatchNorms into convolutions (ONNX Runtime's *basic*, runtime-neutral
   graph optimisations, when ONNX Runtime is installed), and infers every tensor's static shape.
2. ``fusion_groups`` walks the nodes in order: an *anchor* (``FusionRules.anchors``: convolutions, matrix
   products, pooling) starts a new kernel; every other op (normalisation, activation, elementwise,
   reshape, concat...) joins the latest kernel that produced one of its inputs: the fusion the runtimes
   apply to post-ops. A backend may fuse more (``fusion_rules``: OpenVINO runs attention as one kernel).
   Kernels only ever feed later kernels, so their sum is a valid schedule.
3. ``kernel_model`` writes each group as a standalone ONNX model (its outside inputs become graph inputs,
   its weights come along), and ``kernel_signature`` names it by what decides its run time: ops,
   attributes, shapes, dtypes (never weight values), so identical layers of different models share one
   measurement (``latency.kernel_table``).
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch

if TYPE_CHECKING:
    import onnx

OPSET = 17  # the backends' export (LayerNormalization is one op from opset 17 on)
INPUT_NAME, OUTPUT_NAME = "ecg", "outputs"
SMALL_CONSTANT = 64  # integer initialisers up to this size (shapes, axes, pads) are part of a signature
POOL_OPS = ("MaxPool", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool")  # a reduction: its own kernel
OP_CLASSES = {"Conv": "conv", "ConvTranspose": "conv", "ConvInteger": "conv", "QLinearConv": "conv",
              "MatMul": "matmul", "Gemm": "matmul", "MatMulInteger": "matmul", **dict.fromkeys(POOL_OPS, "pool")}
ANCHOR_OPS = frozenset(OP_CLASSES)
KERNEL_CLASSES = ("conv", "matmul", "pool", "other")


@dataclass(frozen=True)
class FusionRules:
    """Which ops start a kernel; every other op is fused into the kernel that produced its input.

    attention: a matrix product that reads a ``Softmax`` joins the Softmax's kernel, so attention
    (``MatMul`` -> ``Softmax`` -> ``MatMul``) is one kernel, as OpenVINO's CPU plugin runs it (one fused
    node that never writes the attention matrix out; timed as two kernels it cost up to 1.6 times as much
    as in the model: docs/benchmarks.md).
    """

    anchors: frozenset[str] = ANCHOR_OPS
    attention: bool = False


DEFAULT_FUSION = FusionRules()
BACKEND_FUSION = {"openvino-cpu": FusionRules(attention=True)}


def fusion_rules(backend: str) -> FusionRules:
    """The fusion a backend applies (the default rules unless listed in ``BACKEND_FUSION``)."""
    return BACKEND_FUSION.get(backend, DEFAULT_FUSION)


@dataclass(frozen=True)
class Kernel:
    """One fusion group: its signature (the cache key), its ops, its standalone ONNX model."""

    signature: str
    ops: tuple[str, ...]
    onnx: bytes
    output_bytes: int  # bytes the kernel writes (its outputs): what it costs to hand them on
    weight_bytes: int = 0  # bytes of its weights (initializers): what it reads besides its inputs

    @property
    def kind(self) -> str:
        """``conv``, ``matmul``, ``pool`` or ``other``: the class of the op that started the kernel."""
        return OP_CLASSES.get(self.ops[0], "other")

    @property
    def label(self) -> str:
        return "+".join(self.ops)


def export_onnx_bytes(model: torch.nn.Module, example: torch.Tensor) -> bytes:
    """The ONNX export the backends run (fp32, opset 17, batch fixed to the example's)."""
    model = copy.deepcopy(model).to("cpu", torch.float32).eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter deprecation notes are not the user's concern
        torch.onnx.export(model, (example.to("cpu", torch.float32),), buffer, dynamo=False, opset_version=OPSET,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME])
    return buffer.getvalue()


def simplified(model_bytes: bytes) -> bytes:
    """Constants folded, BatchNorms folded into convolutions: ONNX Runtime's basic (runtime-neutral) level.

    Without ONNX Runtime the export is used as it is (shape-computing ops then stay inside kernels).
    """
    try:
        import onnxruntime  # deferred: an optional runtime
    except ImportError:
        return model_bytes
    with tempfile.TemporaryDirectory(prefix="ecgsearch-kernels-") as tmp:
        path = Path(tmp) / "basic.onnx"
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(path)
        options.log_severity_level = 3
        onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
        return path.read_bytes()


def model_graph(model: torch.nn.Module, example: torch.Tensor) -> onnx.ModelProto:
    """The model's simplified ONNX graph with the static shape of every tensor."""
    import onnx  # deferred: an optional dependency (the latency extra)

    proto = onnx.load_from_string(simplified(export_onnx_bytes(model, example)))
    return onnx.shape_inference.infer_shapes(proto, strict_mode=False, data_prop=True)


def fusion_groups(graph: onnx.GraphProto, rules: FusionRules = DEFAULT_FUSION) -> list[list[onnx.NodeProto]]:
    """The graph's nodes cut into kernels (in order); see the module docstring for the rule."""
    weights = {w.name for w in graph.initializer}
    group_of: dict[str, int] = {}  # tensor name -> the group that produced it
    groups: list[list[Any]] = []
    softmax_out: set[str] = set()
    for node in graph.node:
        producers = [group_of[name] for name in node.input if name and name not in weights and name in group_of]
        joins = rules.attention and node.op_type == "MatMul" and any(name in softmax_out for name in node.input)
        if node.op_type == "Softmax":
            softmax_out.update(node.output)
        if (node.op_type in rules.anchors and not joins) or not producers:
            groups.append([])
            index = len(groups) - 1
        else:
            index = max(producers)  # the latest producer: every input of the node exists by then
        groups[index].append(node)
        group_of.update({name: index for name in node.output})
    return groups


def _tensor_types(model: onnx.ModelProto) -> dict[str, Any]:
    graph = model.graph
    return {v.name: v for v in [*graph.input, *graph.value_info, *graph.output]}


def _group_io(model: onnx.ModelProto, group: Sequence[Any]) -> tuple[list[str], list[str], list[str]]:
    """(outside inputs, weights, outputs used outside) of a group, each in order of first use."""
    weights = {w.name for w in model.graph.initializer}
    made = {name for node in group for name in node.output}
    inputs, used = [], []
    for node in group:
        for name in node.input:
            if not name:
                continue
            target = used if name in weights else inputs if name not in made else None
            if target is not None and name not in target:
                target.append(name)
    members = {id(node) for node in group}
    outside = {name for node in model.graph.node if id(node) not in members for name in node.input}
    outside |= {o.name for o in model.graph.output}
    outputs = [name for node in group for name in node.output if name in outside]
    return inputs, used, outputs or [group[-1].output[0]]


def kernel_model(model: onnx.ModelProto, group: Sequence[Any]) -> onnx.ModelProto:
    """One group as a standalone ONNX model: outside inputs as graph inputs, its weights, its used outputs."""
    from onnx import helper  # deferred: an optional dependency

    inputs, used, outputs = _group_io(model, group)
    types = _tensor_types(model)
    missing = [name for name in inputs + outputs if name not in types]
    if missing:
        raise ValueError(f"no static shape for tensor(s) {', '.join(missing)} of the exported graph")
    weights = {w.name: w for w in model.graph.initializer}
    graph = helper.make_graph(list(group), "kernel", [types[n] for n in inputs], [types[n] for n in outputs],
                              [weights[n] for n in used])
    return helper.make_model(graph, opset_imports=model.opset_import, ir_version=model.ir_version)


def _shape(value_info: Any) -> list[int | str]:
    tensor = value_info.type.tensor_type
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in tensor.shape.dim]


def _attribute(attribute: Any) -> Any:
    from onnx import helper, numpy_helper  # deferred: an optional dependency

    value = helper.get_attribute_value(attribute)
    if hasattr(value, "dims") and hasattr(value, "data_type"):  # a tensor attribute (Constant)
        array = numpy_helper.to_array(value)
        return [list(array.shape), str(array.dtype), array.ravel().tolist() if array.size <= SMALL_CONSTANT else None]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (list, tuple)):
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value]
    return value if isinstance(value, (int, float, str)) else str(value)


def _weight(tensor: Any) -> list[Any]:
    from onnx import numpy_helper  # deferred: an optional dependency

    array = numpy_helper.to_array(tensor)
    small_int = array.dtype.kind in "iub" and array.size <= SMALL_CONSTANT
    return [list(array.shape), str(array.dtype), array.ravel().tolist() if small_int else None]


def kernel_signature(kernel: onnx.ModelProto) -> str:
    """A stable name of what decides a kernel's run time: ops, attributes, shapes and dtypes, not weights."""
    graph = kernel.graph
    names: dict[str, str] = {}
    for prefix, tensors in (("i", [v.name for v in graph.input]), ("w", [w.name for w in graph.initializer])):
        names.update({name: f"{prefix}{k}" for k, name in enumerate(tensors)})
    nodes = []
    for node in graph.node:
        for name in node.output:
            names.setdefault(name, f"t{len(names)}")
        nodes.append([node.domain, node.op_type, [names.get(n, "") for n in node.input],
                      [names[n] for n in node.output],
                      sorted([a.name, _attribute(a)] for a in node.attribute)])
    described = {"nodes": nodes,
                 "inputs": [[_shape(v), v.type.tensor_type.elem_type] for v in graph.input],
                 "weights": [_weight(w) for w in graph.initializer],
                 "outputs": [[names[v.name], _shape(v)] for v in graph.output]}
    text = json.dumps(described, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:20]


def _tensor_bytes(dims: Any, elem_type: int) -> int:
    from onnx import helper  # deferred: an optional dependency

    return int(np.prod(dims)) * np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)).itemsize


def _output_bytes(kernel: onnx.ModelProto) -> int:
    return sum(_tensor_bytes([d for d in _shape(v) if isinstance(d, int)], v.type.tensor_type.elem_type)
               for v in kernel.graph.output)


def _weight_bytes(kernel: onnx.ModelProto) -> int:
    return sum(_tensor_bytes(w.dims, w.data_type) for w in kernel.graph.initializer)


def model_kernels(model: torch.nn.Module, example: torch.Tensor,
                  rules: FusionRules = DEFAULT_FUSION) -> list[Kernel]:
    """The kernels ``model`` runs for inputs shaped like ``example``, in execution order."""
    graph = model_graph(model, example)
    out = []
    for group in fusion_groups(graph.graph, rules):
        proto = kernel_model(graph, group)
        out.append(Kernel(signature=kernel_signature(proto), ops=tuple(n.op_type for n in group),
                          onnx=proto.SerializeToString(), output_bytes=_output_bytes(proto),
                          weight_bytes=_weight_bytes(proto)))
    return out
