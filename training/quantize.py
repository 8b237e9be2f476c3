"""The int8 copies of a CNN that serve it, calibrated on training drawings and checked on test.

onnxruntime's static quantisation (weights per output channel in int8, activations per tensor in
uint8, QDQ format): the convolutions then run on integer kernels, several times cheaper on one core
than float32, for a top-1 that agrees with the float graph on nearly every drawing (the card keeps
the figures). The network is quantised once, with its probabilities and the features the embedding
is made of as outputs; two files are cut from it, so they answer the same probabilities to the bit:

- ``probabilities_onnx``: the probabilities alone, what a prediction runs;
- ``embedding_onnx``: the same, plus the embedding built from the int8 features in float
  (``EmbeddingHead``), what runs when taught categories need both.

Both answer for each drawing and its mirror image in one call (``with_mirror``), which the int8
speed pays for.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.card import Quantization
from models.runtime import onnx_runner, probabilities_output

METHOD = "onnxruntime static quantisation: QDQ, int8 weights per channel and uint8 activations per tensor (min-max)"
CALIBRATION_DRAWINGS = 1_000
CALIBRATION_BATCH = 64
CHECK_BATCH = 2048


@dataclass(frozen=True)
class EmbeddingHead:
    """How the embedding is made from the network's features: each one unit-normalised, concatenated
    in the order of ``features``, summed with the mirror image's, projected, unit-normalised."""

    features: tuple[str, ...]  # outputs of the network before quantisation
    projection: np.ndarray  # (sum of the features' sizes, embedding dim)
    output: str


def quantize(
    network_onnx: Path,
    head: EmbeddingHead,
    float_onnx: Path,
    probabilities_onnx: Path,
    embedding_onnx: Path,
    calibration: np.ndarray,
    test: np.ndarray,
    labels: np.ndarray,
    split: str,
    num_classes: int,
) -> Quantization:
    """Write ``probabilities_onnx`` and ``embedding_onnx`` from ``network_onnx`` (float: input bitmaps
    (n, 28, 28, 1) float32, 0-255; outputs the probabilities and ``head.features``). ``float_onnx``
    is the float graph served before (probabilities of the drawing alone, and the embedding), to
    compare with. ``calibration`` comes from the training split, ``test``/``labels`` from ``split``."""
    import onnx
    from onnx.utils import Extractor
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    graph = onnx.load(str(network_onnx))
    name = graph.graph.input[0].name
    output = probabilities_output([o.name for o in graph.graph.output if o.name not in head.features])

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(range(0, len(calibration), CALIBRATION_BATCH))

        def get_next(self) -> dict[str, np.ndarray] | None:
            start = next(self.batches, None)
            return None if start is None else {name: calibration[start : start + CALIBRATION_BATCH]}

    with tempfile.TemporaryDirectory() as tmp:
        prepared, int8 = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        quant_pre_process(str(network_onnx), str(prepared), skip_symbolic_shape=True)
        prepared_graph = onnx.load(str(prepared))
        quantize_static(
            str(prepared),
            str(int8),
            Reader(),
            quant_format=QuantFormat.QDQ,
            # uint8 activations: onnxruntime's int8 x int8 matrix product is several times slower here.
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            nodes_to_exclude=[*_logit_nodes(prepared_graph, output), *_relus_of(prepared_graph, head.features)],
        )
        served = with_embedding_head(with_mirror(with_first_conv_unfolded(onnx.load(str(int8))), name, output), head)
        onnx.save(served, str(embedding_onnx))
        onnx.save(Extractor(served).extract_model([name], [output]), str(probabilities_onnx))
        top_int8 = _outputs(onnx_runner(int8, 4, num_classes), test)[output].argmax(axis=1)

    before = _outputs(onnx_runner(float_onnx, 4, num_classes), test)
    served_probs = _outputs(onnx_runner(probabilities_onnx, 4, num_classes), test)[output]
    both = _outputs(onnx_runner(embedding_onnx, 4, num_classes), test)
    if not np.array_equal(both[output], served_probs):
        raise RuntimeError(f"{embedding_onnx} does not give the probabilities of {probabilities_onnx}")
    cosine = (both[head.output] * before[head.output]).sum(axis=1)
    top_float, top_served = before[output].argmax(axis=1), served_probs.argmax(axis=1)
    return Quantization(
        method=METHOD,
        calibration=f"{len(calibration)} drawings of the training split, chosen at random",
        sha256=_sha256(probabilities_onnx),
        split=split,
        n=len(test),
        top1_agreement=round(float((top_float == top_int8).mean()), 4),
        top1_float=round(float((top_float == labels).mean()), 4),
        top1_int8=round(float((top_int8 == labels).mean()), 4),
        mirrored=True,
        top1_served=round(float((top_served == labels).mean()), 4),
        embedding_sha256=_sha256(embedding_onnx),
        embedding_cosine_median=round(float(np.median(cosine)), 6),
        embedding_cosine_min=round(float(cosine.min()), 6),
    )


def with_mirror(model, name: str, output: str):
    """``model`` (one input ``name``, bitmaps (n, 28, 28, 1)) answering ``output`` for each drawing as
    the mean of its probabilities and those of its mirror image: one call on both, then the halves
    averaged (any other output is left with both halves). A drawing facing left is the same thing
    facing right, and two views vote better than one."""
    from onnx import TensorProto, helper

    graph = model.graph
    both, answers = f"{name}_and_mirror", f"{output}_and_mirror"
    halves = [f"{output}_of_drawing", f"{output}_of_mirror"]
    for node in graph.node:
        node.input[:] = [both if i == name else i for i in node.input]
        node.output[:] = [answers if o == output else o for o in node.output]
    const = [
        helper.make_tensor(f"mirror_{k}", TensorProto.INT64, [1], [v])
        for k, v in (("start", -1), ("end", -(2**62)), ("axis", 2), ("step", -1))
    ]
    graph.initializer.extend([*const, helper.make_tensor("mirror_half", TensorProto.FLOAT, [], [0.5])])
    before = [
        helper.make_node("Slice", [name, *(c.name for c in const)], [f"{name}_mirrored"], name="mirror"),
        helper.make_node("Concat", [name, f"{name}_mirrored"], [both], axis=0, name="mirror_concat"),
    ]
    after = [
        helper.make_node("Split", [answers], halves, axis=0, name="mirror_split"),
        helper.make_node("Add", halves, [f"{output}_sum"], name="mirror_add"),
        helper.make_node("Mul", [f"{output}_sum", "mirror_half"], [output], name="mirror_mean"),
    ]
    nodes = [*before, *graph.node, *after]
    del graph.node[:]
    graph.node.extend(nodes)
    # The shapes recorded inside name the input's batch size, which the inside now has twice.
    del graph.value_info[:]
    return model


def with_first_conv_unfolded(model):
    """``model`` (QDQ) with its convolutions of one input channel as 1x1 convolutions over each
    pixel's k x k neighbourhood, gathered in float beforehand (a pad, k² slices, a concat): the same
    integers multiplied and summed, so the same answers to the bit, but onnxruntime's int8 kernel
    runs a single-channel k x k convolution at a fraction of the speed of the equivalent 1x1 one
    (docs/models.md). Padding in float with 0 is padding with the zero point, as the int8
    convolution does."""
    from onnx import helper, numpy_helper

    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    for conv in [n for n in graph.node if n.op_type == "Conv"]:
        found = _single_channel_input(graph, conv, weights)
        if found is None:
            continue
        x_q, weight = found
        w = numpy_helper.to_array(weight)
        attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
        (kh, kw), pads = attrs.get("kernel_shape", list(w.shape[2:])), list(attrs.get("pads", [0] * 4))
        nodes, constants = _neighbourhoods(conv.name or conv.output[0], x_q.input[0], kh, kw, pads)
        graph.initializer.extend(numpy_helper.from_array(np.asarray(v, np.int64), n) for n, v in constants.items())
        weight.CopyFrom(numpy_helper.from_array(w.reshape(len(w), kh * kw, 1, 1), weight.name))
        x_q.input[0] = nodes[-1].output[0]
        for a in conv.attribute:
            if a.name in ("kernel_shape", "pads"):
                a.ints[:] = [1, 1] if a.name == "kernel_shape" else [0, 0, 0, 0]
        at = list(graph.node).index(x_q)
        for i, node in enumerate(nodes):
            graph.node.insert(at + i, node)
    return model


def _single_channel_input(graph, conv, weights: dict):
    """(the QuantizeLinear of ``conv``'s input, its int8 weight initializer) when ``conv`` is a plain
    k x k convolution of one input channel that keeps the input's size, each only its own; else None."""
    from onnx import helper

    producers = {out: node for node in graph.node for out in node.output}
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    x_dq, w_dq = producers.get(conv.input[0]), producers.get(conv.input[1])
    if x_dq is None or x_dq.op_type != "DequantizeLinear" or w_dq is None or w_dq.input[0] not in weights:
        return None
    x_q = producers.get(x_dq.input[0])
    if x_q is None or x_q.op_type != "QuantizeLinear":
        return None
    if readers[x_q.output[0]] != 1 or readers[conv.input[0]] != 1 or readers[w_dq.input[0]] != 1:
        return None  # rewiring them would change what another node reads
    attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
    shape = weights[w_dq.input[0]].dims
    k = list(attrs.get("kernel_shape", shape[2:]))
    top, left, bottom, right = list(attrs.get("pads", [0] * 4))
    plain = attrs.get("group", 1) == 1 and set(attrs.get("strides", [1])) == {1} == set(attrs.get("dilations", [1]))
    if shape[1] != 1 or len(k) != 2 or not plain or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        return None
    if k[0] - 1 != top + bottom or k[1] - 1 != left + right:
        return None
    return x_q, weights[w_dq.input[0]]


def _neighbourhoods(tag: str, source: str, kh: int, kw: int, pads: list[int]) -> tuple[list, dict[str, list[int]]]:
    """Nodes that make each pixel's kh x kw neighbourhood of ``source`` (n, 1, h, w) into kh·kw
    channels (n, kh·kw, h, w), in the order of a convolution's weights; the last one gives them.
    And the int64 constants they read."""
    from onnx import helper

    top, left, bottom, right = pads
    padded, axes = f"{tag}_unfold_padded", f"{tag}_unfold_axes"
    constants = {f"{tag}_unfold_pads": [0, 0, top, left, 0, 0, bottom, right], axes: [2, 3]}
    nodes = [helper.make_node("Pad", [source, f"{tag}_unfold_pads"], [padded], mode="constant")]
    slices = []
    for dy in range(kh):
        for dx in range(kw):
            start, end, out = f"{tag}_unfold_start_{dy}_{dx}", f"{tag}_unfold_end_{dy}_{dx}", f"{tag}_unfold_{dy}_{dx}"
            # Ends counted from the padded edge, so the graph keeps any input size.
            constants |= {start: [dy, dx], end: [dy - (kh - 1) or 2**62, dx - (kw - 1) or 2**62]}
            nodes.append(helper.make_node("Slice", [padded, start, end, axes], [out]))
            slices.append(out)
    nodes.append(helper.make_node("Concat", slices, [f"{tag}_unfolded"], axis=1))
    return nodes, constants


def with_embedding_head(model, head: EmbeddingHead):
    """``model`` from ``with_mirror``, with ``head.output`` too: the features of the drawing (first
    half of the batch) and of its mirror image (second half), made into the embedding in float."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    nodes = []

    def unit(x: str, out: str = "") -> str:
        out = out or f"{x}_unit"
        nodes.extend(
            [
                helper.make_node("ReduceL2", [x], [f"{x}_norm"], axes=[-1], keepdims=1),
                helper.make_node("Max", [f"{x}_norm", "head_floor"], [f"{x}_norm_floored"]),
                helper.make_node("Div", [x, f"{x}_norm_floored"], [out]),
            ]
        )
        return out

    halves = ["features_of_drawing", "features_of_mirror"]
    nodes.append(helper.make_node("Concat", [unit(f) for f in head.features], ["features"], axis=1))
    nodes += [
        helper.make_node("Split", ["features"], halves, axis=0),
        helper.make_node("Add", halves, ["features_sum"]),
        helper.make_node("MatMul", ["features_sum", "head_projection"], ["projected"]),
    ]
    unit("projected", head.output)
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.float32(1e-6), "head_floor"),  # as training.embedding.L2Normalize
            numpy_helper.from_array(np.asarray(head.projection, np.float32), "head_projection"),
        ]
    )
    graph.node.extend(nodes)
    kept = [o for o in graph.output if o.name not in head.features]
    del graph.output[:]
    dim = head.projection.shape[1]
    graph.output.extend([*kept, helper.make_tensor_value_info(head.output, TensorProto.FLOAT, ["n", dim])])
    return model


def _logit_nodes(graph, output: str) -> list[str]:
    """The node that gives ``output`` and the one that gives its input (the softmax and the layer of
    logits): kept in float, so that the answers are not rounded to 256 levels and do not tie."""
    producers = {out: node for node in graph.graph.node for out in node.output}
    last = producers[output]
    return [last.name, *(producers[i].name for i in last.input if i in producers)]


def _relus_of(graph, features: tuple[str, ...]) -> list[str]:
    """ReLUs that read a feature: kept in float. Quantised, a ReLU shares its input's range, which
    would then lose the negative half that the embedding reads."""
    return [n.name for n in graph.graph.node if n.op_type == "Relu" and set(n.input) & set(features)]


def _outputs(run, x: np.ndarray) -> dict[str, np.ndarray]:
    parts = [run(x[i : i + CHECK_BATCH]) for i in range(0, len(x), CHECK_BATCH)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
