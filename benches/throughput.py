#!/usr/bin/env python3
"""Threads against batching against streams side by side, on two cores.

For each MLPerf Tiny model, `gatehouse bench` (the model in the sandboxed tflite
plugin) is run five ways, one after the other:

- `1 thread`: one inference at a time on one core (core 1), batch 1;
- `2 threads`: one inference at a time split over both cores (`--threads 2`);
- `2 streams`: two benches at once, one per core, each batch 1 on one thread;
- `batch B`: batches of B on one core, one thread;
- `2 x batch B`: two such benches at once, one per core.

Prints, for each way, the median latency of one answer (for a batch, the whole
batch's call: the last input waits for it) and the inferences per second over
both cores. A benchmark, not a test: nothing here asserts a time.

Needs a release build with plugins (`cargo xtask build`). From the repository root:
    python3 benches/throughput.py [--iters 2000] [--batch 16] [--json]
"""
import argparse
import json
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODELS = ["kws_ref_model", "vww_96_int8", "pretrainedResnet_quant", "ad01_int8", "str_ww_ref_model"]


def bench_cmd(model, iters, cores, threads=1, batch=1):
    return ["taskset", "-c", cores, str(ROOT / "target/release/gatehouse"), "bench", "--model",
            str(ROOT / "models/mlperf-tiny" / f"{model}.tflite"), "--iters", str(iters), "--json",
            "--threads", str(threads), "--batch", str(batch)]


def parse(out):
    rows = [json.loads(line) for line in out.strip().splitlines()]
    (row,) = [r for r in rows if r["mode"] == "plugin"]
    return row


def run(cmds):
    """Runs the benches at once; each one's plugin row."""
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, text=True, cwd=ROOT) for c in cmds]
    rows = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(p.args)} failed with {p.returncode}")
        rows.append(parse(out))
    return rows


def way(name, rows, batch):
    # median_us is per inference; one answer waits for its whole call.
    return {"way": name, "answer_us": max(r["median_us"] for r in rows) * batch,
            "per_s": sum(r["per_s"] for r in rows), "kernels": rows[0]["kernels"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    b = a.batch
    results = []
    for m in MODELS:
        ways = [
            way("1 thread", run([bench_cmd(m, a.iters, "1")]), 1),
            way("2 threads", run([bench_cmd(m, a.iters, "0,1", threads=2)]), 1),
            way("2 streams", run([bench_cmd(m, a.iters, "0"), bench_cmd(m, a.iters, "1")]), 1),
            way(f"batch {b}", run([bench_cmd(m, a.iters // b + 1, "1", batch=b)]), b),
            way(f"2 x batch {b}", run([bench_cmd(m, a.iters // b + 1, c, batch=b) for c in "01"]), b),
        ]
        for w in ways:
            w["model"] = m
        results += ways
    if a.json:
        for r in results:
            print(json.dumps(r))
        return
    names = [w["way"] for w in results[:5]]
    print(f"# kernels: {results[0]['kernels']}; per way: one answer's latency in µs / inferences per second")
    print(f"{'model':<24}" + "".join(f"{n:>22}" for n in names))
    for m in MODELS:
        cells = [f"{r['answer_us']:.0f} / {r['per_s']:.0f}" for r in results if r["model"] == m]
        print(f"{m:<24}" + "".join(f"{c:>22}" for c in cells))


if __name__ == "__main__":
    main()
