#!/usr/bin/env python3
"""Gatehouse against onnxruntime on int8 ONNX models, measured in the same run.

For each model: onnxruntime's CPU session with every graph optimization on, as a user runs it
(on x86 it turns int8 Q/DQ pairs into uint8 and may leave some groups in float), and with
`session.qdqisint8allowed=1` (ARM's fusion, all int8: the fused kernels Gatehouse reproduces byte
for byte, as the fixtures are made), each on `--threads` intra-op threads; then `gatehouse bench`
(the model in the sandboxed tflite plugin, batch 1, float32 in and out as onnxruntime takes them),
one after the other. Prints median microseconds per inference and the ratio gatehouse /
onnxruntime's default session. A benchmark, not a test: nothing here asserts a time.

onnxruntime is timed from Python with its inputs and outputs bound once (`run_with_iobinding`), so
each timed call is one call into its C++ session; the few microseconds that call costs are in its
figure, as the plugin boundary is in Gatehouse's. On models that run in microseconds that overhead
is most of both figures: the anomaly autoencoder is the one where the kernels dominate.

Needs: `pip install onnxruntime==1.32.0 numpy` and a release build with plugins (`cargo xtask build`).
Run from the repository root:
    python3 benches/compare_onnx.py [--iters 2000] [--rounds 3] [--threads 1] [--json]
Pin to one core for steadier numbers: taskset -c 1 python3 benches/compare_onnx.py
"""
import argparse
import json
import pathlib
import subprocess
import time

import numpy as np
import onnxruntime as ort

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODELS = [
    "examples/onnx/anomaly/model.onnx",
    "tests/fixtures/onnx/residual_int8/model.onnx",
    "tests/fixtures/onnx/squeeze_excite_int8/model.onnx",
    "tests/fixtures/onnx/squeeze_excite_uint8/model.onnx",
    "tests/fixtures/onnx/leaky_transpose_uint8/model.onnx",
]


def onnxruntime_us(model, iters, threads, int8):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if int8:
        so.add_session_config_entry("session.qdqisint8allowed", "1")
    s = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    inp = s.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    binding = s.io_binding()
    binding.bind_cpu_input(inp.name, x)
    binding.bind_output(s.get_outputs()[0].name, "cpu")
    for _ in range(max(20, iters // 10)):
        s.run_with_iobinding(binding)
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        s.run_with_iobinding(binding)
        times.append((time.perf_counter() - t) * 1e6)
    return float(np.median(times))


def gatehouse_us(model, iters, threads):
    """Median µs in the sandboxed plugin, and the kernel set."""
    out = subprocess.run(
        [str(ROOT / "target/release/gatehouse"), "bench", "--model", str(model), "--iters", str(iters),
         "--json", "--threads", str(threads)],
        check=True, capture_output=True, text=True, cwd=ROOT,
    ).stdout
    rows = {r["mode"]: r for r in map(json.loads, out.strip().splitlines())}
    return rows["plugin"]["median_us"], rows["plugin"]["kernels"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    rows = []
    for m in MODELS:
        path = ROOT / m
        rounds = []
        for _ in range(max(1, a.rounds)):
            peer = onnxruntime_us(path, a.iters, a.threads, False)
            peer_int8 = onnxruntime_us(path, a.iters, a.threads, True)
            gh, kernels = gatehouse_us(path, a.iters, a.threads)
            rounds.append((peer, gh, peer_int8))
        peer, gh, peer_int8 = (float(np.median([r[i] for r in rounds])) for i in range(3))
        ratios = [r[1] / r[0] for r in rounds]
        rows.append({"model": path.parent.name, "kernels": kernels, "threads": a.threads,
                     "gatehouse_us": round(gh, 1), "onnxruntime_us": round(peer, 1),
                     "onnxruntime_int8_us": round(peer_int8, 1),
                     "ratio_vs_onnxruntime": round(gh / peer, 2),
                     "ratio_range": [round(min(ratios), 2), round(max(ratios), 2)],
                     "rounds": len(rounds), "onnxruntime": ort.__version__})
    if a.json:
        for r in rows:
            print(json.dumps(r))
        return
    print(f"# {a.threads} thread(s) per inference; onnxruntime {ort.__version__}")
    print(f"{'model':<24} {'kernels':<8} {'gatehouse':>10} {'onnxruntime':>12} {'ort int8':>9} {'gh/ort':>7} {'range':>11}")
    for r in rows:
        lo, hi = r["ratio_range"]
        print(f"{r['model']:<24} {r['kernels']:<8} {r['gatehouse_us']:>10.1f} {r['onnxruntime_us']:>12.1f} "
              f"{r['onnxruntime_int8_us']:>9.1f} {r['ratio_vs_onnxruntime']:>7.2f} {f'{lo:.2f}-{hi:.2f}':>11}")


if __name__ == "__main__":
    main()
