"""Make `model.onnx`: MLPerf Tiny's anomaly detection autoencoder (ad01, the
DCASE 2020 ToyCar baseline) as an int8 ONNX model, the way a vendor whose
toolchain speaks ONNX would ship it, and check it against onnxruntime.

1. Read the ten FULLY_CONNECTED layers of `models/mlperf-tiny/ad01_int8.tflite`
   (ai-edge-litert's interpreter with the reference kernels) and dequantize
   their int8 weights and int32 biases to float32: the float model those
   int8 weights stand for. Every layer but the last has a fused ReLU (its
   output zero point is -128).
2. Write it as a float ONNX graph: Gemm (transB) and Relu, input [1, 640].
3. Quantize it to QDQ with onnxruntime's `quantize_static`: int8 activations,
   per-channel int8 weights with `reduce_range=True` (7-bit, so onnxruntime's
   own x86 kernels do not saturate; see tests/fixtures/onnx/make_models.py),
   calibrated on the 196 five-frame windows of the sample clip
   `examples/data/anomaly/normal_id_01_00000000_hist_librosa.bin`.
4. Run that clip through onnxruntime's optimized session and write
   `inputs.bin` (the clip's first 16 windows, float32), `outputs.bin` (their
   outputs: what `gatehouse infer` must give byte for byte) and
   `scores.json` (the clip's anomaly score as MLPerf Tiny defines it: the
   mean squared reconstruction error, against the TFLite int8 and float
   models' scores from `examples/data/anomaly/expected.json`).

Made with ai-edge-litert 2.3.0, onnx 1.23.2, onnxruntime 1.32.0 and numpy:

    python3 -m venv /tmp/cv && /tmp/cv/bin/pip install ai-edge-litert==2.3.0 onnx==1.23.2 onnxruntime==1.32.0 numpy
    /tmp/cv/bin/python examples/onnx/anomaly/convert.py
"""
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
from ai_edge_litert.interpreter import Interpreter, OpResolverType
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
TFLITE = os.path.join(ROOT, "models", "mlperf-tiny", "ad01_int8.tflite")
CLIP = os.path.join(ROOT, "examples", "data", "anomaly", "normal_id_01_00000000_hist_librosa.bin")


def dequantized_layers():
    it = Interpreter(model_path=TFLITE, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    details = {t["index"]: t for t in it.get_tensor_details()}
    layers = []
    for op in it._get_ops_details():
        if op["op_name"] != "FULLY_CONNECTED":
            continue
        _, w_i, b_i = op["inputs"]
        out = details[op["outputs"][0]]

        def real(i):
            t = details[i]
            q = t["quantization_parameters"]
            scales = q["scales"].astype(np.float64)
            v = it.get_tensor(i).astype(np.float64)
            if scales.size > 1:
                scales = scales.reshape([-1] + [1] * (v.ndim - 1))
            return (v * scales).astype(np.float32)

        relu = out["quantization_parameters"]["zero_points"][0] == -128
        layers.append((real(w_i), real(b_i), relu))
    return layers


def windows():
    frames = np.fromfile(CLIP, np.float32).reshape(200, 128)
    return np.stack([frames[t : t + 5].reshape(640) for t in range(196)])


def float_model(layers):
    nodes, inits, x = [], [], "x"
    for i, (w, b, relu) in enumerate(layers):
        inits += [nh.from_array(w, f"w{i}"), nh.from_array(b, f"b{i}")]
        y = f"g{i}" if relu else "y"
        nodes.append(h.make_node("Gemm", [x, f"w{i}", f"b{i}"], [y], transB=1))
        if relu:
            nodes.append(h.make_node("Relu", [y], [f"r{i}"]))
            y = f"r{i}"
        x = y
    g = h.make_graph(nodes, "ad01", [h.make_tensor_value_info("x", T.FLOAT, [1, 640])],
                     [h.make_tensor_value_info("y", T.FLOAT, [1, 640])], inits)
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


class Clip(CalibrationDataReader):
    def __init__(self, xs):
        self.items = iter([{"x": x[None]} for x in xs])

    def get_next(self):
        return next(self.items, None)


def main():
    xs = windows()
    f32 = os.path.join(HERE, "float.onnx")
    onnx.save(float_model(dequantized_layers()), f32)
    out = os.path.join(HERE, "model.onnx")
    quantize_static(f32, out, Clip(xs), quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8, per_channel=True, reduce_range=True)
    fsess = ort.InferenceSession(f32, providers=["CPUExecutionProvider"])
    os.remove(f32)
    sess = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    ys = np.concatenate([sess.run(None, {"x": x[None]})[0] for x in xs])
    yf = np.concatenate([fsess.run(None, {"x": x[None]})[0] for x in xs])
    xs[:16].astype(np.float32).tofile(os.path.join(HERE, "inputs.bin"))
    ys[:16].astype(np.float32).tofile(os.path.join(HERE, "outputs.bin"))
    with open(os.path.join(ROOT, "examples", "data", "anomaly", "expected.json")) as f:
        expected = json.load(f)
    score = lambda y: float(np.mean((y - xs) ** 2))
    scores = {
        "clip": os.path.basename(CLIP),
        "windows": int(len(xs)),
        "onnx_int8_score": score(ys),
        "onnx_float_score": score(yf),
        "tflite_int8_score": expected["reference_int8_score"],
        "tflite_float_score": expected["reference_fp32_model_score"],
        "made_with": {"onnx": onnx.__version__, "onnxruntime": ort.__version__},
    }
    with open(os.path.join(HERE, "scores.json"), "w") as f:
        json.dump(scores, f, indent=1)
    print(json.dumps(scores, indent=1))


main()
