//! `gatehouse bench`: the JSON lines the comparison script reads (each says
//! its kernel set and thread count), and the plot.
//! (Figures are not checked here: a benchmark is not a test.)

use crate::common::{gatehouse, stderr, tmp};

#[test]
fn bench_prints_one_json_object_per_batch_size_and_draws_the_plot() {
    let svg = tmp("bench.svg");
    let o = gatehouse(&[
        "bench",
        "--model",
        "models/mlperf-tiny/ad01_int8.tflite",
        "--batch",
        "1,4",
        "--iters",
        "5",
        "--json",
        "--native",
        "--threads",
        "2",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect();
    // Per batch size the plugin row, then the native replay of its plan.
    assert_eq!(rows.len(), 4);
    let expected = [(1, "plugin"), (1, "native"), (4, "plugin"), (4, "native")];
    for (row, (batch, mode)) in rows.iter().zip(expected) {
        assert_eq!(row["model"], "ad01_int8");
        assert_eq!(row["mode"], mode);
        assert_eq!(row["batch"], batch);
        assert!(row["kernels"].is_string());
        assert_eq!(row["threads"], 2, "{row}");
        for k in ["median_us", "p99_us", "per_s"] {
            assert!(row[k].as_f64().is_some_and(|v| v > 0.0), "{k}: {row}");
        }
        assert!(row["p99_us"].as_f64() >= row["median_us"].as_f64(), "{row}");
    }
    let plot = std::fs::read_to_string(&svg).expect("the plot");
    assert!(
        plot.starts_with("<svg") && plot.contains("throughput") && plot.contains("native p99"),
        "{plot}"
    );
    let o = gatehouse(&[
        "bench",
        "--model",
        "models/mlperf-tiny/ad01_int8.tflite",
        "--batch",
        "0",
    ]);
    assert!(!o.status.success() && stderr(&o).contains("positive"));
}
