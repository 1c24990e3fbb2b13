#!/usr/bin/env python3
"""The model matrix: what each bundled model is and costs, and its latency per
inference at several batch sizes, in the sandboxed plugin and in LiteRT
(XNNPACK, one thread) measured one after the other in the same run.

Sizes come from `gatehouse describe --model`; latencies from
`gatehouse bench --model M --batch ...` and from LiteRT's interpreter with its
input resized to the batch. A model whose graph fixes its batch (a RESHAPE to
[1, N]) cannot be resized in LiteRT; there LiteRT runs the batch as that many
single invocations, and the table says so with a `*`.

Needs: `pip install ai-edge-litert numpy` and a release build with plugins
(`cargo xtask build`). From the repository root:
    taskset -c 1 python3 benches/matrix.py [--iters 200] [--batches 1,4,16,32] [--json]
A benchmark, not a test: nothing here asserts a time.
"""
import argparse
import json
import pathlib
import subprocess
import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter

ROOT = pathlib.Path(__file__).resolve().parents[1]
MLPERF = "models/mlperf-tiny"
# name: (file, task). The first five are MLPerf Tiny's; the rest are the
# field's own plugins' models, trained here (their train/ READMEs).
MODELS = {
    "kws_ref_model": (f"{MLPERF}/kws_ref_model.tflite", "keyword spotting (DS-CNN)"),
    "vww_96_int8": (f"{MLPERF}/vww_96_int8.tflite", "visual wake words (MobileNetV1 0.25)"),
    "pretrainedResnet_quant": (f"{MLPERF}/pretrainedResnet_quant.tflite", "image classification (ResNet-8)"),
    "ad01_int8": (f"{MLPERF}/ad01_int8.tflite", "anomaly detection (FC autoencoder)"),
    "str_ww_ref_model": (f"{MLPERF}/str_ww_ref_model.tflite", "streaming wake word (1D DS-CNN)"),
    "maintenance lstm": ("guest-models/maintenance/model/lstm_attention.tflite",
                         "motor health, 32 min x 12 ch (LSTM + attention)"),
    "maintenance tcn": ("guest-models/maintenance/model/tcn.tflite", "motor health, 32 min x 12 ch (TCN)"),
    "smart-home": ("guest-models/smart-home/model/comfort.tflite",
                   "occupancy and AC action, 16 min x 6 sensors (dilated Conv1D)"),
    "ecg": ("guest-models/ecg/model/beats.tflite", "ECG beat class, 256 samples (multi-scale 1D CNN)"),
}
GATEHOUSE = ROOT / "target/release/gatehouse"


def describe(model):
    out = subprocess.run([str(GATEHOUSE), "describe", "--model", str(model)],
                         check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(out)


def gatehouse_us(model, batches, iters):
    out = subprocess.run(
        [str(GATEHOUSE), "bench", "--model", str(model), "--iters", str(iters), "--json",
         "--batch", ",".join(map(str, batches))],
        check=True, capture_output=True, text=True, cwd=ROOT).stdout
    rows = [json.loads(line) for line in out.strip().splitlines()]
    return {r["batch"]: r["median_us"] for r in rows}, rows[0]["kernels"]


def litert_us(model, batch, iters):
    """Median µs per inference, and whether the batch ran as one invocation."""
    it = Interpreter(model_path=str(model), num_threads=1)
    inp = it.get_input_details()[0]
    shape = list(inp["shape"])
    whole = True
    if batch > 1:
        try:
            it.resize_tensor_input(inp["index"], [batch] + shape[1:])
            it.allocate_tensors()
        except (ValueError, RuntimeError):
            it = Interpreter(model_path=str(model), num_threads=1)
            whole = False
    if whole and batch > 1:
        runs, size = 1, [batch] + shape[1:]
    else:
        it.allocate_tensors()
        runs, size = batch, shape
    rng = np.random.default_rng(0)
    if inp["dtype"] == np.float32:  # the trained models quantize their own float input
        x = rng.normal(size=size).astype(np.float32)
    else:
        x = rng.integers(-128, 128, size=size, dtype=np.int8)
    it.set_tensor(it.get_input_details()[0]["index"], x)
    for _ in range(max(5, iters // 10)):
        it.invoke()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        for _ in range(runs):
            it.invoke()
        times.append((time.perf_counter() - t) * 1e6 / batch)
    return float(np.median(times)), whole


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--batches", default="1,4,16,32")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    rows = []
    for name, (path, task) in MODELS.items():
        model = ROOT / path
        d = describe(model)
        gh, kernels = gatehouse_us(model, batches, args.iters)
        lite = {b: litert_us(model, b, args.iters) for b in batches}
        rows.append({
            "model": name, "task": task, "kernels": kernels,
            "parameters": d["parameters"], "model_bytes": d["model_bytes"],
            "macs": d["macs"], "arena_bytes": d["arena_bytes"],
            "gatehouse_us": gh,
            "litert_us": {b: v for b, (v, _) in lite.items()},
            "litert_whole_batch": {b: w for b, (_, w) in lite.items()},
        })
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return
    head = " | ".join(f"batch {b}: gatehouse / LiteRT µs" for b in batches)
    print(f"| model | task | params | size | MACs | arena | {head} |")
    print("|---" * (6 + len(batches)) + "|")
    for r in rows:
        cells = []
        for b in batches:
            star = "" if r["litert_whole_batch"][b] else "*"
            cells.append(f"{r['gatehouse_us'][b]:.0f} / {r['litert_us'][b]:.0f}{star}")
        print(f"| {r['model']} | {r['task']} | {r['parameters']:,} | {r['model_bytes'] / 1024:.0f} KiB "
              f"| {r['macs'] / 1e6:.2f} M | {r['arena_bytes'] / 1024:.1f} KiB | " + " | ".join(cells) + " |")
    print(f"\nkernel set: {rows[0]['kernels']}; LiteRT: XNNPACK, one thread; µs per inference (median).")


if __name__ == "__main__":
    main()
