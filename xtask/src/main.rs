//! `cargo xtask`: the project's build, demo and test entry points.
//!
//! - `cargo xtask build`          host (release) and every plugin into target/plugins/
//! - `cargo xtask build-plugins`  just the plugins
//! - `cargo xtask demo`           the bundled plugins on the sample data
//! - `cargo xtask test`           every test (adds the wasm32-wasip2 target if missing)
//! - `cargo xtask codegen`        regenerate the TFLite schema reader (needs planus-cli)

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Plugin crates, each built into `target/plugins/<name>.wasm`.
const PLUGINS: &[&str] = &[
    "kws", "vww", "ic", "anomaly", "wakeword", "tflite", "hostile",
];
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

/// Whether `program --version` runs.
fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

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
    for p in PLUGINS {
        c.args(["-p", p]);
    }
    run(c)?;
    let out = root().join("target/plugins");
    std::fs::create_dir_all(&out)?;
    for p in PLUGINS {
        let from = root().join(format!("target/{WASM_TARGET}/plugin/{p}.wasm"));
        let to = out.join(format!("{p}.wasm"));
        // Copy then rename, so a reader never sees a half-written plugin.
        let tmp = out.join(format!(".{p}.wasm.tmp"));
        std::fs::copy(&from, &tmp).with_context(|| format!("copying {}", from.display()))?;
        std::fs::rename(&tmp, &to)?;
        eprintln!(
            "xtask: {} ({} bytes)",
            to.display(),
            std::fs::metadata(&to)?.len()
        );
    }
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
    Ok(())
}

fn test() -> Result<()> {
    // Fail in a second, not after the build, when a tool the tests use is missing.
    let missing: Vec<&str> = [
        ("docker-registry", "docker-registry"),
        ("qemu-aarch64-static", "qemu-user-static"),
        ("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu"),
    ]
    .into_iter()
    .filter(|(program, _)| !have(program))
    .map(|(_, package)| package)
    .collect();
    if !missing.is_empty() {
        bail!(
            "the tests need Debian's {}: sudo apt-get install {} (as .ci/run does)",
            missing.join(", "),
            missing.join(" ")
        );
    }
    test_neon()?;
    build_plugins()?;
    let nextest = Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let mut c = cargo();
    if nextest {
        c.args(["nextest", "run", "--no-fail-fast"]);
    } else {
        eprintln!("xtask: cargo-nextest not found; using cargo test");
        c.args(["test", "--no-fail-fast"]);
    }
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
        "demo" => demo(),
        "test" => test(),
        "test-neon" => test_neon(),
        "codegen" => codegen(),
        _ => {
            eprintln!("usage: cargo xtask <build|build-plugins|demo|test|test-neon|codegen>");
            std::process::exit(2);
        }
    }
}
