//! `cargo xtask`: the project's build, demo and test entry points.
//!
//! - `cargo xtask build`          host (release) and every plugin into target/plugins/
//! - `cargo xtask build-plugins`  just the plugins
//! - `cargo xtask demo`           the bundled plugins on the sample data
//! - `cargo xtask test`           every test, installing what the tests need first
//! - `cargo xtask hostile --seconds N`  the hostile-neighbour matrix, in release, longer
//! - `cargo xtask fuzz --minutes N`     every fuzz target for N minutes (`--seconds N` too)
//! - `cargo xtask codegen`        regenerate the TFLite schema reader (needs planus-cli)
//! - `cargo xtask wit-docs`       the WIT reference, docs/wit.md, from the WIT's doc comments

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

mod compose;
mod mqtt_demo;
mod wit_docs;

/// Plugin crates, each built into `target/plugins/<name>.wasm`.
const PLUGINS: &[&str] = &[
    "kws",
    "vww",
    "ic",
    "anomaly",
    "wakeword",
    "tflite",
    "hostile",
    "maintenance",
    "smart-home",
    "ecg",
    "wasi-nn-plugin",
];
/// Components that are not plugins, built into `target/components/`: the
/// TFLite loader that plugs into plugins of other languages, and the wasi-nn
/// command `gatehouse exec` is tested with.
const COMPONENTS: &[&str] = &["tflite-loader", "wasi-nn-guest"];
/// A Python plugin: a folder under guest-models/ with an `app.py`, built
/// by componentize-py into `target/plugins/<name>.wasm`.
struct PythonPlugin {
    name: &'static str,
    /// Targets `gatehouse:plugin/toolkit@0.2.0` and gets the TFLite loader
    /// plugged in.
    toolkit: bool,
    /// Files embedded as Python modules (`MODULE=FILE`, the bytes as `DATA`).
    embed: &'static [&'static str],
}
const PYTHON_PLUGINS: &[PythonPlugin] = &[
    PythonPlugin {
        name: "py-level",
        toolkit: false,
        embed: &[],
    },
    PythonPlugin {
        name: "py-kws",
        toolkit: true,
        embed: &["kws_model=models/mlperf-tiny/kws_ref_model.tflite"],
    },
];
/// JavaScript plugins, each a folder under guest-models/ with an `app.js`
/// and a `build.mjs` that runs componentize-js (pinned in its package.json).
const JS_PLUGINS: &[&str] = &["js-bright"];
/// The componentize-py that builds them, from PyPI.
const COMPONENTIZE_PY: &str = "0.25.1";
const WASM_TARGET: &str = "wasm32-wasip2";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

fn run(mut cmd: Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd.status().with_context(|| format!("starting {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

fn ensure_wasm_target() -> Result<()> {
    ensure_target(WASM_TARGET)
}

fn ensure_target(target: &str) -> Result<()> {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("running rustup")?;
    if !String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == target)
    {
        eprintln!("xtask: adding the {target} target");
        let mut c = Command::new("rustup");
        c.args(["target", "add", target]);
        run(c)?;
    }
    Ok(())
}

const ARM_TARGET: &str = "aarch64-unknown-linux-gnu";

/// The kernels crate's tests (every NEON path against the scalar reference)
/// for aarch64, run under qemu-user; the linker and runner are in
/// `.cargo/config.toml`.
fn test_neon() -> Result<()> {
    ensure_target(ARM_TARGET)?;
    let mut c = cargo();
    c.args([
        "test",
        "--package",
        "gatehouse-kernels",
        "--target",
        ARM_TARGET,
    ]);
    run(c)
}

fn build_plugins() -> Result<()> {
    ensure_wasm_target()?;
    let mut c = cargo();
    c.args(["build", "--target", WASM_TARGET, "--profile", "plugin"]);
    for p in PLUGINS.iter().chain(COMPONENTS) {
        c.args(["-p", p]);
    }
    run(c)?;
    let out = root().join("target/plugins");
    std::fs::create_dir_all(&out)?;
    for p in PLUGINS {
        publish(p, &out.join(format!("{p}.wasm")))?;
    }
    let components = root().join("target/components");
    std::fs::create_dir_all(&components)?;
    for p in COMPONENTS {
        publish(p, &components.join(format!("{p}.wasm")))?;
    }
    // kws again as version 0.1.1, a second real build for swap tests.
    let mut c = cargo();
    c.args(["build", "--target", WASM_TARGET, "--profile", "plugin"])
        .args(["-p", "kws", "--features", "kws/second-build"]);
    run(c)?;
    publish("kws", &out.join("kws-0.1.1.wasm"))?;
    build_python_plugins(&out)?;
    build_js_plugins(&out)
}

fn build_js_plugins(out: &Path) -> Result<()> {
    if !on_path("npm") || !on_path("node") {
        bail!(
            "Node.js with npm is needed to build the JavaScript plugins ({})",
            JS_PLUGINS.join(", ")
        );
    }
    for p in JS_PLUGINS {
        let dir = root().join("guest-models").join(p);
        if !dir.join("node_modules").is_dir() {
            eprintln!("xtask: installing {p}'s componentize-js from npm");
            let mut c = Command::new("npm");
            c.current_dir(&dir)
                .args(["ci", "--no-audit", "--no-fund", "--quiet"]);
            run(c)?;
        }
        let to = out.join(format!("{p}.wasm"));
        let tmp = to.with_extension("wasm.tmp");
        let mut c = Command::new("node");
        c.current_dir(&dir).arg("build.mjs").arg(&tmp);
        run(c)?;
        std::fs::rename(&tmp, &to)?;
    }
    Ok(())
}

/// The Python that has (or gets) componentize-py.
fn python() -> &'static str {
    if on_path("python3") {
        "python3"
    } else {
        "python"
    }
}

/// componentize-py at the pinned version, installed from PyPI if missing.
fn ensure_componentize_py() -> Result<()> {
    let have = Command::new(python())
        .args(["-m", "pip", "show", "componentize-py"])
        .output()
        .context("running pip: Python 3 with pip is needed for the Python plugins")?;
    let pinned = format!("Version: {COMPONENTIZE_PY}");
    if String::from_utf8_lossy(&have.stdout)
        .lines()
        .any(|l| l.trim() == pinned)
    {
        return Ok(());
    }
    eprintln!("xtask: installing componentize-py {COMPONENTIZE_PY} from PyPI");
    let mut c = Command::new(python());
    c.args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
        .arg(format!("componentize-py=={COMPONENTIZE_PY}"));
    run(c).context("installing componentize-py")
}

fn build_python_plugins(out: &Path) -> Result<()> {
    ensure_componentize_py()?;
    for p in PYTHON_PLUGINS {
        let name = p.name;
        let built = root().join("target/python").join(format!("{name}.wasm"));
        std::fs::create_dir_all(root().join("target/python"))?;
        let mut c = Command::new(python());
        c.current_dir(root())
            .arg("guest-models/sdk-python/gatehouse_build.py")
            .arg(format!("guest-models/{name}"))
            .arg("-o")
            .arg(&built);
        if p.toolkit {
            c.arg("--toolkit");
        }
        for e in p.embed {
            c.args(["--embed", e]);
        }
        run(c)?;
        let to = out.join(format!("{name}.wasm"));
        let tmp = to.with_extension("wasm.tmp");
        if p.toolkit {
            let loader = root().join("target/components/tflite-loader.wasm");
            compose::plug(&built, &[&loader], &tmp)?;
        } else {
            std::fs::copy(&built, &tmp)?;
        }
        std::fs::rename(&tmp, &to)?;
        eprintln!(
            "xtask: {} ({} bytes)",
            to.display(),
            std::fs::metadata(&to)?.len()
        );
    }
    Ok(())
}

/// Copy plugin `p` as last built to `to`: through a temporary name and a
/// rename, so a reader never sees a half-written plugin.
fn publish(p: &str, to: &Path) -> Result<()> {
    // Cargo names a library's artifact after the crate, with underscores.
    let from = root().join(format!(
        "target/{WASM_TARGET}/plugin/{}.wasm",
        p.replace('-', "_")
    ));
    let tmp = to.with_extension("wasm.tmp");
    std::fs::copy(&from, &tmp).with_context(|| format!("copying {}", from.display()))?;
    std::fs::rename(&tmp, to)?;
    eprintln!(
        "xtask: {} ({} bytes)",
        to.display(),
        std::fs::metadata(to)?.len()
    );
    Ok(())
}

fn build_host_release() -> Result<()> {
    let mut c = cargo();
    c.args(["build", "--release", "-p", "gatehouse-cli"]);
    run(c)
}

fn gatehouse() -> Command {
    let mut c = Command::new(root().join("target/release/gatehouse"));
    c.current_dir(root());
    c
}

fn demo() -> Result<()> {
    build_plugins()?;
    build_host_release()?;
    println!("\n== Gatehouse demo: bundled plugins on the sample data ==\n");
    println!("-- keyword spotting (kws plugin: MFCC in the sandbox, DS-CNN on host int8 kernels)");
    let mut c = gatehouse();
    c.args(["run", "target/plugins/kws.wasm", "--stats", "--input"]);
    let mut clips: Vec<PathBuf> = std::fs::read_dir(root().join("examples/data/kws"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                n.to_string_lossy().starts_with("synth_")
                    || n.to_string_lossy().starts_with("marvin")
            })
        })
        .collect();
    clips.sort();
    c.args(&clips);
    run(c)?;
    println!(
        "\n-- person detection (vww) and CIFAR-10 (ic): PNG decoded, cropped and resized in the sandbox"
    );
    for plugin in ["vww", "ic"] {
        let mut c = gatehouse();
        c.args(["run", &format!("target/plugins/{plugin}.wasm"), "--input"]);
        for img in ["astronaut.png", "chelsea.png", "coffee.png"] {
            c.arg(root().join("examples/data/images").join(img));
        }
        run(c)?;
    }
    println!("\n-- ToyCar anomaly score of a log-mel file (reference 10.2652)");
    let mut c = gatehouse();
    c.args([
        "run",
        "target/plugins/anomaly.wasm",
        "--input",
        "examples/data/anomaly/normal_id_01_00000000_hist_librosa.bin",
    ]);
    run(c)?;
    println!(
        "\n-- the same, with the state capability: a baseline learned from 2 clips, kept in /state"
    );
    let state = root().join("target/demo-state/anomaly");
    let _ = std::fs::remove_dir_all(&state);
    let clip = "examples/data/anomaly/normal_id_01_00000000_hist_librosa.bin";
    let mut c = gatehouse();
    c.args(["run", "target/plugins/anomaly.wasm", "--state"])
        .arg(&state)
        .args(["--set", "baseline-clips=2", "--input", clip, clip, clip]);
    run(c)?;
    println!(
        "\n-- a Python plugin (componentize-py, the Python SDK) beside the Rust ones: loudness of the clips"
    );
    let mut c = gatehouse();
    c.args(["run", "target/plugins/py-level.wasm", "--input"]);
    for clip in ["synth_yes_en-us.wav", "marvin_617de221_0.wav"] {
        c.arg(root().join("examples/data/kws").join(clip));
    }
    run(c)?;
    println!(
        "\n-- keyword spotting ported to Python (py-kws): host MFCCs (gatehouse:dsp), the model through the TFLite loader component"
    );
    let mut c = gatehouse();
    c.args(["run", "target/plugins/py-kws.wasm", "--input"]);
    c.args(&clips);
    run(c)?;
    println!("\n-- a JavaScript plugin (componentize-js): mean brightness of a byte file");
    let bytes = root().join("target/demo-bright.bin");
    std::fs::write(&bytes, [200u8; 64])?;
    let mut c = gatehouse();
    c.args(["run", "target/plugins/js-bright.wasm", "--input"])
        .arg(&bytes);
    run(c)?;
    println!("\n-- streaming wake word over a 10 s recording fed in 4 KiB pieces");
    let mut c = gatehouse();
    c.args([
        "run",
        "target/plugins/wakeword.wasm",
        "--chunk",
        "4096",
        "--input",
        "examples/data/kws/short_wav_easy10s.wav",
    ]);
    run(c)?;
    println!(
        "\n-- predictive maintenance: a motor's last 30 h before its bearing fails, one row of 12 channels a minute, LSTM + attention (then the TCN)"
    );
    let motor_run = "examples/data/maintenance/motor_run.f32";
    for model in ["lstm-attention", "tcn"] {
        let mut c = gatehouse();
        c.args(["run", "target/plugins/maintenance.wasm", "--set"])
            .arg(format!("model={model}"))
            .args(["--chunk", "48", "--input", motor_run]);
        let out = c.output()?;
        if !out.status.success() {
            bail!(
                "maintenance ({model}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        summarize_maintenance(model, &String::from_utf8_lossy(&out.stdout))?;
    }
    println!(
        "\n-- smart home: a room's day, one row of 6 sensors a minute; occupancy and the air conditioner's action as events"
    );
    let mut c = gatehouse();
    c.args([
        "run",
        "target/plugins/smart-home.wasm",
        "--stats",
        "--chunk",
        "24",
        "--input",
        "examples/data/smart-home/room_day.f32",
    ]);
    let out = c.output()?;
    if !out.status.success() {
        bail!("smart-home: {}", String::from_utf8_lossy(&out.stderr));
    }
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        for e in v["events"].as_array().into_iter().flatten() {
            let minute = e["t_s"].as_f64().unwrap_or(0.0) / 60.0;
            println!(
                "  {:02}:{:02}  {}",
                (minute as u64 / 60) % 24,
                minute as u64 % 60,
                e["label"].as_str().unwrap_or("?")
            );
        }
    }
    let stats = String::from_utf8_lossy(&out.stderr);
    if let Some(line) = stats.lines().find(|l| l.starts_with("instance-bytes")) {
        println!("  {line} (guest linear memory plus host tensors)");
    }
    demo_ecg()?;
    println!(
        "\n-- the gateway on MQTT: an embedded broker, routes from examples/gateway.toml, a stream per device"
    );
    mqtt_demo::run(&root(), gatehouse())?;
    println!(
        "\n-- the five MLPerf Tiny models in the sandboxed tflite plugin, against TFLite's reference kernels"
    );
    let vectors = root().join("tests/fixtures/vectors");
    let mut models: Vec<String> = std::fs::read_dir(&vectors)?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    models.sort();
    for m in models {
        let out = root().join(format!("target/demo-{m}.bin"));
        let mut c = gatehouse();
        c.args(["infer", "--model"])
            .arg(root().join(format!("models/mlperf-tiny/{m}.tflite")));
        c.arg("--input")
            .arg(vectors.join(&m).join("inputs.bin"))
            .arg("--output")
            .arg(&out);
        run(c)?;
        let (got, want) = (
            std::fs::read(&out)?,
            std::fs::read(vectors.join(&m).join("outputs.bin"))?,
        );
        let same = got == want;
        println!(
            "{m:<24} {} bytes out, {}",
            got.len(),
            if same { "bit-exact" } else { "DIFFERS" }
        );
        if !same {
            bail!("{m} differs from the reference");
        }
    }
    println!(
        "\n-- hot swap under load, one ToyCar frame per request: one at a time, then batched (tflite plugin)"
    );
    let frame = root().join("target/demo-toycar-frame.bin");
    let inputs = std::fs::read(vectors.join("ad01_int8/inputs.bin"))?;
    std::fs::write(
        &frame,
        inputs.get(..640).context("ToyCar vectors too short")?,
    )?;
    for max_batch in ["1", "32"] {
        let mut c = gatehouse();
        c.args([
            "stress",
            "--plugin",
            "target/plugins/tflite.wasm",
            "--swap-to",
            "target/plugins/tflite.wasm",
            "--model",
            "models/mlperf-tiny/ad01_int8.tflite",
            "--swaps",
            "10",
            "--concurrency",
            "2",
            "--in-flight",
            "16",
            "--duration-s",
            "3",
            "--max-batch",
            max_batch,
            "--json",
            "--input",
        ])
        .arg(&frame);
        run(c)?;
    }
    println!("\n-- the sandbox: a plugin that loops forever is stopped at its deadline");
    let mut c = gatehouse();
    c.args([
        "run",
        "target/plugins/hostile.wasm",
        "--set",
        "mode=loop",
        "--input",
        "README.md",
    ]);
    let out = c.output()?;
    println!("{}", String::from_utf8_lossy(&out.stderr).trim());
    println!(
        "\n-- the host's work is bounded too: a plugin asking for 256 results of 16 MiB (4 GiB) gets quota-exceeded"
    );
    let mut c = gatehouse();
    c.args([
        "run",
        "target/plugins/hostile.wasm",
        "--set",
        "mode=amplify",
        "--input",
        "README.md",
    ]);
    let out = c.output()?;
    println!("{}", String::from_utf8_lossy(&out.stderr).trim());
    Ok(())
}

/// The ECG strip a second a message; its beats, the premature ones listed
/// beside the cardiologists' annotation (from the sample's expected.json).
fn demo_ecg() -> Result<()> {
    println!(
        "\n-- ECG: 3.5 held-out minutes of MIT-BIH record 100 at 360 Hz, a second a message; the plugin filters, finds each beat and classifies it"
    );
    let mut c = gatehouse();
    c.args([
        "run",
        "target/plugins/ecg.wasm",
        "--stats",
        "--chunk",
        "1440",
        "--input",
        "examples/data/ecg/mlii_21m.f32",
    ]);
    let out = c.output()?;
    if !out.status.success() {
        bail!("ecg: {}", String::from_utf8_lossy(&out.stderr));
    }
    let expected: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        root().join("examples/data/ecg/expected.json"),
    )?)?;
    let annotation = |r: u64| {
        expected["beats"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|b| b["r"].as_u64() == Some(r))
            .and_then(|b| b["annotation"].as_str())
            .unwrap_or("none")
            .to_string()
    };
    let mut counts = std::collections::BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        for e in v["events"].as_array().into_iter().flatten() {
            let t = e["t_s"].as_f64().unwrap_or(0.0);
            let label = e["label"].as_str().unwrap_or("?");
            let truth = annotation((t * 360.0).round() as u64);
            *counts
                .entry((label.to_string(), truth.clone()))
                .or_insert(0) += 1;
            if label != "N" || truth != "N" {
                println!(
                    "  {:>2}:{:05.2}  {label}  p={:.3}  (annotated {truth})",
                    t as u64 / 60,
                    t % 60.0,
                    e["score"].as_f64().unwrap_or(0.0)
                );
            }
        }
    }
    for ((label, truth), n) in counts {
        println!("  reported {label}, annotated {truth}: {n} beats");
    }
    let stats = String::from_utf8_lossy(&out.stderr);
    for key in ["heart-rate-bpm", "instance-bytes"] {
        if let Some(line) = stats.lines().find(|l| l.starts_with(key)) {
            println!("  {line}");
        }
    }
    Ok(())
}

/// One line every three hours of the maintenance plugin's stream, and its
/// alarms: 1769 results are too many to print.
fn summarize_maintenance(model: &str, stdout: &str) -> Result<()> {
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    // The sample ends at the failure: row r is (rows - r) minutes before it.
    let rows = lines.len() + 31;
    println!("{model}: {} windows", lines.len());
    for (i, v) in lines.iter().enumerate() {
        let minute = i + 32;
        let alarms: Vec<String> = v["events"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                format!(
                    "{} at {:.0} min",
                    e["label"].as_str().unwrap_or("?"),
                    e["t_s"].as_f64().unwrap_or(0.0) / 60.0
                )
            })
            .collect();
        if minute % 180 == 0 || !alarms.is_empty() {
            println!(
                "  minute {minute:>4}: {:<9} hours to failure {:>5.1} (true {:>4.1})  {}",
                v["label"].as_str().unwrap_or("?"),
                v["score"].as_f64().unwrap_or(f64::NAN),
                (rows - minute) as f64 / 60.0,
                alarms.join(", ")
            );
        }
    }
    Ok(())
}

/// Debian packages the tests use, by a program each provides: a real OCI
/// registry for the over-the-air tests; mosquitto, a real MQTT broker, for
/// the gateway's MQTT tests; qemu-user and an aarch64 linker and libc for
/// the NEON kernel tests.
const PACKAGES: &[(&str, &[&str])] = &[
    ("docker-registry", &["docker-registry"]),
    ("mosquitto", &["mosquitto", "mosquitto-clients"]),
    ("qemu-aarch64-static", &["qemu-user-static"]),
    (
        "aarch64-linux-gnu-gcc",
        &["gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross"],
    ),
];

/// Install the Debian packages the tests need that are missing, with
/// apt-get (through sudo unless this is root).
fn install_packages() -> Result<()> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(program, _)| !on_path(program))
        .flat_map(|(_, packages)| packages.iter().copied())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let apt = |args: &[&str]| {
        let mut c = if root {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        };
        c.env("DEBIAN_FRONTEND", "noninteractive").args(args);
        c
    };
    run(apt(&["update", "-q"]))?;
    let mut install = apt(&["install", "-y", "-q", "--no-install-recommends"]);
    install.args(&missing);
    run(install).context("installing the Debian packages the tests need")
}

/// Whether `program` is on the PATH.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Tests that exercise one kernel set's instructions directly, by set: on
/// a CPU without the set they are left out, and said to be.
fn set_tests(set: &str) -> Option<&'static str> {
    match set {
        "avx512" => Some("test(/x86::requant512::/)"),
        "avx2" => Some("test(/x86::requant::tests/)"),
        _ => None,
    }
}

/// The kernel sets this build has that this CPU cannot run. No emulator in
/// the package registries runs AVX-512 (qemu-user's TCG stops at AVX2), so
/// these are named in the summary instead of passing silently.
fn untested_sets() -> Vec<&'static str> {
    gatehouse_kernels::dispatch::all()
        .iter()
        .filter(|k| !(k.supported)())
        .map(|k| k.name)
        .collect()
}

fn say_untested(untested: &[&str]) {
    if untested.is_empty() {
        eprintln!("xtask: every kernel set in this build ran its tests on this CPU");
    } else {
        eprintln!(
            "xtask: NOT TESTED on this machine: kernel set(s) {} (the CPU lacks them; their \
             own tests were left out and the property tests compare only the sets it runs)",
            untested.join(", ")
        );
    }
}

/// Runs `f`, then says how long it took: CI's budget is spent in phases,
/// and its log should show which.
fn phase<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let start = std::time::Instant::now();
    let out = f();
    eprintln!("xtask: {name} took {:.0} s", start.elapsed().as_secs_f64());
    out
}

fn test() -> Result<()> {
    phase("installing packages", install_packages)?;
    phase("the NEON kernels under qemu", test_neon)?;
    phase("building the plugins", build_plugins)?;
    let nextest = Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let untested = untested_sets();
    say_untested(&untested);
    let mut c = cargo();
    if nextest {
        c.args(["nextest", "run", "--no-fail-fast"]);
    } else {
        eprintln!("xtask: cargo-nextest not found; using cargo test");
        c.args(["test", "--no-fail-fast"]);
    }
    // The SDK's image decoding is a feature only vision plugins enable.
    c.args(["--features", "gatehouse-sdk/vision"]);
    let excluded: Vec<&str> = untested.iter().filter_map(|s| set_tests(s)).collect();
    if nextest && !excluded.is_empty() {
        c.arg("-E").arg(format!("not ({})", excluded.join(" | ")));
    }
    let outcome = phase("building and running the tests", || run(c));
    // A smoke run of every fuzz target; `cargo xtask fuzz --minutes N` runs them long.
    let fuzzed = phase("the fuzz smoke run", || fuzz(8, Some(1)));
    say_untested(&untested);
    outcome.and(fuzzed)
}

/// Fuzz targets (`fuzz/fuzz_targets/`) and where their seeds are: folders
/// of the repository and the file extension taken from each.
const FUZZ_TARGETS: &[(&str, &[(&str, &str)])] = &[
    ("bundle", &[("fuzz/seeds/bundle", "gpk")]),
    ("manifest", &[("fuzz/seeds/manifest", "toml")]),
    ("oci_layers", &[]),
    ("tflite", &[("models/mlperf-tiny", "tflite")]),
    ("onnx", &[("fuzz/seeds/onnx", "onnx")]),
    (
        "wav",
        &[("fuzz/seeds/wav", "wav"), ("examples/data/kws", "wav")],
    ),
    ("image", &[("fuzz/seeds/image", "")]),
    ("nn_ops", &[]),
];

/// The cargo-fuzz this project's targets are run with.
const CARGO_FUZZ: &str = "0.13.2";

/// Run every fuzz target for `seconds`, each from its corpus in
/// `target/fuzz/corpus/` (seeded from the repository, kept between runs),
/// with debug assertions on and without a sanitizer, so it builds with the
/// stable toolchain. A unit that runs 10 s is a finding (a timeout), as a
/// crash or running out of memory is. Prints executions and findings per
/// target; fails on any finding, which libFuzzer leaves in
/// `target/fuzz/artifacts/`. `seed` fixes libFuzzer's random choices, so a
/// smoke run from the seed corpora finds the same things every time.
fn fuzz(seconds: u64, seed: Option<u64>) -> Result<()> {
    let installed = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(CARGO_FUZZ));
    if !installed {
        let mut c = Command::new("cargo");
        c.args(["install", "cargo-fuzz", "--locked", "--version", CARGO_FUZZ]);
        run(c)?;
    }
    let mut build = cargo();
    build.args(["fuzz", "build", "--sanitizer", "none", "--debug-assertions"]);
    run(build)?;
    let mut report = Vec::new();
    for (target, seeds) in FUZZ_TARGETS {
        let corpus = root().join("target/fuzz/corpus").join(target);
        let artifacts = root().join("target/fuzz/artifacts").join(target);
        std::fs::create_dir_all(&corpus)?;
        std::fs::create_dir_all(&artifacts)?;
        for (dir, ext) in *seeds {
            for entry in std::fs::read_dir(root().join(dir))? {
                let path = entry?.path();
                let wanted = ext.is_empty() || path.extension().is_some_and(|e| e == *ext);
                if let (true, Some(name)) = (wanted && path.is_file(), path.file_name()) {
                    std::fs::copy(&path, corpus.join(name))?;
                }
            }
        }
        let findings_in = |dir: &Path| -> Result<usize> {
            Ok(std::fs::read_dir(dir)?
                .filter_map(|e| e.ok())
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    ["crash-", "leak-", "timeout-", "oom-"]
                        .iter()
                        .any(|p| name.starts_with(p))
                })
                .count())
        };
        let before = findings_in(&artifacts)?;
        let mut c = cargo();
        c.args([
            "fuzz",
            "run",
            "--sanitizer",
            "none",
            "--debug-assertions",
            target,
        ])
        .arg(&corpus)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .args([
            "-rss_limit_mb=2048",
            "-timeout=10",
            "-print_final_stats=1",
            "-close_fd_mask=1",
        ]);
        if let Some(seed) = seed {
            c.arg(format!("-seed={seed}"));
        }
        let out = c
            .output()
            .with_context(|| format!("running fuzz target {target}"))?;
        let log = String::from_utf8_lossy(&out.stderr);
        let stat = |name: &str| {
            log.lines()
                .find_map(|l| l.strip_prefix(&format!("stat::{name}:")))
                .map(|v| v.trim().to_string())
                .unwrap_or_else(|| "?".into())
        };
        let findings = findings_in(&artifacts)? - before;
        let corpus_size = std::fs::read_dir(&corpus)?.count();
        if !out.status.success() {
            eprintln!("{log}");
        }
        report.push((
            *target,
            stat("number_of_executed_units"),
            corpus_size,
            findings,
            out.status.success(),
        ));
    }
    eprintln!(
        "\nxtask: fuzzing, {seconds} s per target\n{:<12} {:>12} {:>8} {:>9}",
        "target", "executions", "corpus", "findings"
    );
    for (target, execs, corpus, findings, _) in &report {
        eprintln!("{target:<12} {execs:>12} {corpus:>8} {findings:>9}");
    }
    let failed: Vec<&str> = report
        .iter()
        .filter(|r| !r.4 || r.3 > 0)
        .map(|r| r.0)
        .collect();
    if !failed.is_empty() {
        bail!(
            "fuzz targets with findings: {} (inputs in target/fuzz/artifacts/)",
            failed.join(", ")
        );
    }
    Ok(())
}

/// The hostile-neighbour matrix of `tests/hostile.rs`, built in release and
/// run for `seconds` per mode: the figures an operator compares.
fn hostile(seconds: &str) -> Result<()> {
    build_plugins()?;
    let mut c = cargo();
    c.args([
        "nextest",
        "run",
        "--release",
        "-p",
        "gatehouse-scenarios",
        "--test",
        "scenarios",
        "--no-capture",
        "-E",
        "test(/^hostile::neighbours/)",
    ])
    .env("GATEHOUSE_HOSTILE_SECONDS", seconds);
    run(c)
}

fn codegen() -> Result<()> {
    let schema = root().join("guest-models/sdk/schema/tflite.fbs");
    let tmp = std::env::temp_dir().join("gatehouse-tflite-schema.rs");
    let mut c = Command::new("planus");
    c.arg("rust").arg("-o").arg(&tmp).arg(&schema);
    run(c)
        .context("planus-cli 1.3.0 is needed: cargo install planus-cli --version 1.3.0 --locked")?;
    let text = std::fs::read_to_string(&tmp)?;
    // Drop the serde derives planus adds, whether rustfmt put them on their own
    // lines or inline.
    let stripped: String = text
        .lines()
        .filter(|l| !matches!(l.trim(), "::serde::Serialize," | "::serde::Deserialize,"))
        .map(|l| {
            format!(
                "{}\n",
                l.replace(", ::serde::Serialize, ::serde::Deserialize", "")
            )
        })
        .collect();
    let header = "// @generated by planus-cli 1.3.0 from schema/tflite.fbs; serde derives removed (see schema/README.md).\n";
    std::fs::write(
        root().join("guest-models/sdk/src/tflite/schema.rs"),
        format!("{header}{stripped}"),
    )?;
    Ok(())
}

fn main() -> std::process::ExitCode {
    match task(&std::env::args().nth(1).unwrap_or_default()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn task(task: &str) -> Result<()> {
    match task {
        "build" => {
            build_plugins()?;
            build_host_release()
        }
        "build-plugins" => build_plugins(),
        "wit-docs" => {
            let md = wit_docs::generate(&root().join("wit"))?;
            std::fs::create_dir_all(root().join("docs"))?;
            std::fs::write(root().join("docs/wit.md"), md)?;
            eprintln!("xtask: docs/wit.md");
            Ok(())
        }
        "demo" => demo(),
        "test" => test(),
        "fuzz" => {
            let args: Vec<String> = std::env::args().skip(2).collect();
            let seconds = match args.as_slice() {
                [] => 60,
                [flag, n] if flag == "--minutes" => n.parse::<u64>()? * 60,
                [flag, n] if flag == "--seconds" => n.parse()?,
                _ => bail!("usage: cargo xtask fuzz [--minutes N | --seconds N]"),
            };
            fuzz(seconds, None)
        }
        "hostile" => {
            let args: Vec<String> = std::env::args().skip(2).collect();
            let seconds = match args.as_slice() {
                [] => "3".to_string(),
                [flag, n] if flag == "--seconds" => n.clone(),
                _ => bail!("usage: cargo xtask hostile [--seconds N]"),
            };
            hostile(&seconds)
        }
        "test-neon" => test_neon(),
        // The demo's MQTT step alone, on the release build `demo` makes.
        "demo-mqtt" => mqtt_demo::run(&root(), gatehouse()),
        "codegen" => codegen(),
        _ => {
            eprintln!(
                "usage: cargo xtask <build|build-plugins|demo|test|test-neon|fuzz|hostile|codegen>"
            );
            std::process::exit(2);
        }
    }
}
