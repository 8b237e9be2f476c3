"""The int8 graph's surgery (training/quantize.py) changes how it runs, never what it answers."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
quantization = pytest.importorskip("onnxruntime.quantization")

import onnxruntime as ort  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from training.quantize import with_first_conv_unfolded  # noqa: E402


def _int8_convolutions(tmp_path, rng: np.random.Generator, low: float):
    """A float network shaped like the CNN's start (one input channel, a 3x3 convolution padded to
    keep the size, then one over several channels), quantised as training/quantize.py does."""
    weights = [
        numpy_helper.from_array(rng.normal(size=(8, 1, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(size=(8,)).astype(np.float32), "b1"),
        numpy_helper.from_array(rng.normal(size=(4, 8, 3, 3)).astype(np.float32), "w2"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        "convolutions",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1, 12, 12])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4, 12, 12])],
        weights,
    )
    float_path, int8_path = tmp_path / "float.onnx", tmp_path / "int8.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(float_path))

    class Reader(quantization.CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"x": rng.uniform(low, 255, (16, 1, 12, 12)).astype(np.float32)}])

        def get_next(self):
            return next(self.batches, None)

    quantization.quantize_static(
        str(float_path),
        str(int8_path),
        Reader(),
        quant_format=quantization.QuantFormat.QDQ,
        activation_type=quantization.QuantType.QUInt8,
        weight_type=quantization.QuantType.QInt8,
        per_channel=True,
    )
    return onnx.load(str(int8_path))


def _run(model, x: np.ndarray) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


@pytest.mark.parametrize("low", [0.0, -60.0])  # inputs from 0 (the bitmaps), and a zero point that is not 0
def test_the_single_channel_convolution_is_unfolded_and_answers_to_the_bit(tmp_path, low):
    rng = np.random.default_rng(7)
    int8 = _int8_convolutions(tmp_path, rng, low)
    x = rng.uniform(low, 255, (32, 1, 12, 12)).astype(np.float32) * (rng.random((32, 1, 12, 12)) > 0.6)
    before = _run(int8, x)
    unfolded = with_first_conv_unfolded(int8)
    onnx.checker.check_model(unfolded)
    kernels = [
        helper.get_attribute_value(a)
        for node in unfolded.graph.node
        if node.op_type == "Conv"
        for a in node.attribute
        if a.name == "kernel_shape"
    ]
    assert sorted(kernels) == [[1, 1], [3, 3]]  # only the convolution of one channel changed
    assert np.array_equal(_run(unfolded, x), before)
    assert np.array_equal(_run(unfolded, x[:1]), before[:1])  # any batch size, one drawing too
