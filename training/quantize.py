"""An int8 copy of a CNN's probabilities graph, calibrated on training drawings and checked on test.

onnxruntime's static quantisation (weights per output channel, activations per tensor, QDQ format,
signed int8 for both): the convolutions then run on integer kernels, several times cheaper on one
core than float32, for a top-1 that agrees with the float graph on nearly every drawing (the card
keeps the figures). Only the probabilities graph is quantised: the embedding stays float, since
the graph that gives both runs slower in int8 here (`docs/models.md`). The served file then answers
for each drawing and its mirror image in one call (``with_mirror``), which the int8 speed pays for.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np

from models.card import Quantization
from models.runtime import onnx_runner, probabilities_output

METHOD = "onnxruntime static quantisation: QDQ, int8 weights per channel and int8 activations per tensor (min-max)"
CALIBRATION_DRAWINGS = 1_000
CALIBRATION_BATCH = 64


def quantize(
    float_onnx: Path,
    int8_onnx: Path,
    calibration: np.ndarray,
    test: np.ndarray,
    labels: np.ndarray,
    split: str,
    num_classes: int,
) -> Quantization:
    """Write ``int8_onnx``: the part of ``float_onnx`` that gives the probabilities, in int8.
    Inputs are bitmaps (n, 28, 28, 1) float32, 0-255: ``calibration`` from the training split,
    ``test``/``labels`` from ``split``."""
    import onnx
    from onnx.utils import Extractor
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    graph = onnx.load(str(float_onnx))
    name = graph.graph.input[0].name
    output = probabilities_output([o.name for o in graph.graph.output])

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(range(0, len(calibration), CALIBRATION_BATCH))

        def get_next(self) -> dict[str, np.ndarray] | None:
            start = next(self.batches, None)
            return None if start is None else {name: calibration[start : start + CALIBRATION_BATCH]}

    with tempfile.TemporaryDirectory() as tmp:
        alone, prepared, int8 = (Path(tmp) / f for f in ("probabilities.onnx", "prepared.onnx", "int8.onnx"))
        onnx.save(Extractor(graph).extract_model([name], [output]), str(alone))
        quant_pre_process(str(alone), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(int8),
            Reader(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            nodes_to_exclude=_logit_nodes(onnx.load(str(prepared)), output),
        )
        onnx.save(with_mirror(onnx.load(str(int8)), name, output), str(int8_onnx))
        top_float = _top1(onnx_runner(alone, 4, num_classes), test)
        top_int8 = _top1(onnx_runner(int8, 4, num_classes), test)
    top_served = _top1(onnx_runner(int8_onnx, 4, num_classes), test)
    return Quantization(
        method=METHOD,
        calibration=f"{len(calibration)} drawings of the training split, chosen at random",
        sha256=hashlib.sha256(int8_onnx.read_bytes()).hexdigest(),
        split=split,
        n=len(test),
        top1_agreement=round(float((top_float == top_int8).mean()), 4),
        top1_float=round(float((top_float == labels).mean()), 4),
        top1_int8=round(float((top_int8 == labels).mean()), 4),
        mirrored=True,
        top1_served=round(float((top_served == labels).mean()), 4),
    )


def with_mirror(model, name: str, output: str):
    """``model`` (one input ``name``, bitmaps (n, 28, 28, 1); one output) answering for each drawing
    the mean of its probabilities and those of its mirror image: one call on both, then the halves
    averaged. A drawing facing left is the same thing facing right, and two views vote better than one."""
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


def _logit_nodes(graph, output: str) -> list[str]:
    """The node that gives ``output`` and the one that gives its input (the softmax and the layer of
    logits): kept in float, so that the answers are not rounded to 256 levels and do not tie."""
    producers = {out: node for node in graph.graph.node for out in node.output}
    last = producers[output]
    return [last.name, *(producers[i].name for i in last.input if i in producers)]


def _top1(run, x: np.ndarray, batch: int = 2048) -> np.ndarray:
    tops = []
    for i in range(0, len(x), batch):
        out = run(x[i : i + batch])
        tops.append(out[probabilities_output(list(out))].argmax(axis=1))
    return np.concatenate(tops) if tops else np.zeros(0, int)
