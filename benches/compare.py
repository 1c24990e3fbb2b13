#!/usr/bin/env python3
"""Gatehouse against LiteRT on the five MLPerf Tiny models, measured in the same run.

For each model: LiteRT with XNNPACK (on `--threads`, one by default) and with its reference kernels
(BUILTIN_REF), then `gatehouse bench --native` (the model in the sandboxed tflite plugin, batch 1, and the
plugin's recorded plan replayed from the host without the sandbox),
all on the same machine, one after the other. Prints median microseconds per inference
and the ratios gatehouse / peer. A benchmark, not a test: nothing here asserts a time.

Needs: `pip install ai-edge-litert==2.3.0 numpy` and a release build with plugins
(`cargo xtask build`). Run from the repository root:
    python3 benches/compare.py [--iters 300] [--rounds 1] [--threads 1] [--json]
Pin to one core for steadier numbers: taskset -c 1 python3 benches/compare.py
On a machine with noisy neighbours, `--rounds R` measures XNNPACK and gatehouse
alternately R times per model and reports the median of the rounds' medians,
with the lowest and highest round ratio (`gh/xnnpack range`).
`--threads N` gives both XNNPACK and gatehouse N threads per inference (the
reference kernels always run on one); pin to N cores then (taskset -c 0,1).
`--hide-avx512` measures an AVX2-only CPU on one that has AVX-512: both
LiteRT and gatehouse run with AVX-512, AVX-VNNI and AMX hidden from CPUID
(benches/hide_avx512.c, built here with gcc; needs Linux's CPUID faulting,
the `cpuid_fault` flag in /proc/cpuinfo). XNNPACK then runs its AVX2 kernels
and gatehouse its `avx2` set, as on a Zen 2 or Zen 3 gateway.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODELS = ["kws_ref_model", "vww_96_int8", "pretrainedResnet_quant", "ad01_int8", "str_ww_ref_model"]


def litert_us(model, resolver, iters, threads=1):
    kw = {"num_threads": threads}
    if resolver is not None:
        kw["experimental_op_resolver_type"] = resolver
    it = Interpreter(model_path=str(model), **kw)
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    x = np.random.default_rng(0).integers(-128, 128, size=inp["shape"], dtype=np.int8)
    it.set_tensor(inp["index"], x)
    for _ in range(max(10, iters // 10)):
        it.invoke()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        it.invoke()
        times.append((time.perf_counter() - t) * 1e6)
    return float(np.median(times))


def gatehouse_us(model, iters, threads=1):
    """Median µs in the sandboxed plugin and in the native replay of its plan, and the kernel set."""
    out = subprocess.run(
        [str(ROOT / "target/release/gatehouse"), "bench", "--model", str(model), "--iters", str(iters), "--json", "--native",
         "--threads", str(threads)],
        check=True, capture_output=True, text=True, cwd=ROOT,
    ).stdout
    rows = {r["mode"]: r for r in map(json.loads, out.strip().splitlines())}
    return rows["plugin"]["median_us"], rows["native"]["median_us"], rows["plugin"]["kernels"]


def hide_avx512():
    """Re-runs this script under the CPUID mask, unless it already runs under it."""
    lib = ROOT / "target/bench/hide_avx512.so"
    if os.environ.get("LD_PRELOAD") == str(lib):
        return
    if "cpuid_fault" not in pathlib.Path("/proc/cpuinfo").read_text():
        sys.exit("--hide-avx512 needs CPUID faulting (the cpuid_fault flag), which this machine lacks")
    lib.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(lib), str(ROOT / "benches/hide_avx512.c")], check=True)
    os.execve(sys.executable, [sys.executable] + sys.argv, {**os.environ, "LD_PRELOAD": str(lib)})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--hide-avx512", action="store_true", help="measure as on an AVX2-only CPU (see above)")
    a = ap.parse_args()
    if a.hide_avx512:
        hide_avx512()
    rows = []
    for m in MODELS:
        path = ROOT / "models/mlperf-tiny" / f"{m}.tflite"
        ref = litert_us(path, OpResolverType.BUILTIN_REF, a.iters)
        rounds = []
        for _ in range(max(1, a.rounds)):
            xnn = litert_us(path, None, a.iters, a.threads)
            gh, native, kernels = gatehouse_us(path, a.iters, a.threads)
            rounds.append((xnn, gh, native))
        xnn, gh, native = (float(np.median([r[i] for r in rounds])) for i in range(3))
        ratios = [r[1] / r[0] for r in rounds]
        rows.append({"model": m, "kernels": kernels, "threads": a.threads, "gatehouse_us": round(gh, 1), "native_us": round(native, 1),
                     "litert_xnnpack_us": round(xnn, 1), "litert_ref_us": round(ref, 1), "ratio_vs_xnnpack": round(gh / xnn, 2),
                     "ratio_range": [round(min(ratios), 2), round(max(ratios), 2)], "ratio_vs_ref": round(gh / ref, 2),
                     "plugin_vs_native": round(gh / native, 3), "rounds": len(rounds)})
    if a.json:
        for r in rows:
            print(json.dumps(r))
        return
    print(f"# {a.threads} thread(s) per inference, gatehouse and XNNPACK alike"
          + (", AVX-512 hidden from both" if a.hide_avx512 else ""))
    print(f"{'model':<24} {'kernels':<8} {'gatehouse':>10} {'native':>8} {'xnnpack':>10} {'ref':>10} {'gh/xnnpack':>11} {'range':>11} {'gh/ref':>8} {'gh/native':>10}")
    for r in rows:
        lo, hi = r["ratio_range"]
        print(f"{r['model']:<24} {r['kernels']:<8} {r['gatehouse_us']:>10.1f} {r['native_us']:>8.1f} {r['litert_xnnpack_us']:>10.1f} {r['litert_ref_us']:>10.1f} "
              f"{r['ratio_vs_xnnpack']:>11.2f} {f'{lo:.2f}-{hi:.2f}':>11} {r['ratio_vs_ref']:>8.2f} {r['plugin_vs_native']:>10.3f}")


if __name__ == "__main__":
    main()
