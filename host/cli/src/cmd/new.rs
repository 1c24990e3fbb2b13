//! `gatehouse new NAME --lang rust|python`: a plugin project that builds
//! and runs as it is, carrying the SDK and WIT this binary was built with,
//! so it needs nothing from the Gatehouse repository.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use include_dir::{Dir, include_dir};

static RUST_TEMPLATE: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/templates/rust");
static PYTHON_TEMPLATE: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/templates/python");
static WIT: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../wit");
static RUST_SDK: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../guest-models/sdk/src");
static RUST_DSP: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../host/dsp/src");
static PYTHON_SDK: Dir<'_> =
    include_dir!("$CARGO_MANIFEST_DIR/../../guest-models/sdk-python/gatehouse_sdk");
static PYTHON_BUILD: &str = include_str!("../../../../guest-models/sdk-python/gatehouse_build.py");

/// The SDK's manifest outside the workspace: the workspace's pinned versions.
const RUST_SDK_MANIFEST: &str = r#"[package]
name = "gatehouse-sdk"
version = "0.1.0"
edition = "2024"
description = "What a Gatehouse plugin depends on: bindings, tensors, plans, TFLite and ONNX loaders and audio features."
license = "Apache-2.0"

[dependencies]
wit-bindgen = { version = "=0.63.0", default-features = false, features = ["macros", "realloc"] }
planus = "1.3"
prost = { version = "0.14", default-features = false, features = ["derive", "std"] }
gatehouse-dsp = { path = "../gatehouse-dsp" }
image = { version = "0.25", default-features = false, features = ["png", "jpeg"], optional = true }

[features]
vision = ["dep:image"]
"#;

/// The audio front ends the SDK re-exports as `dsp`, outside the workspace.
const RUST_DSP_MANIFEST: &str = r#"[package]
name = "gatehouse-dsp"
version = "0.1.0"
edition = "2024"
description = "Audio front ends: the same code plugins compile in and the host serves as gatehouse:dsp."
license = "Apache-2.0"

[dependencies]
rustfft = { version = "6", default-features = false }
libm = "0.2"
"#;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
}

#[derive(clap::Args)]
pub struct Args {
    /// The plugin's name: 1-64 of [A-Za-z0-9_-], starting with a letter.
    name: String,
    /// The language of the plugin.
    #[arg(long, value_enum)]
    lang: Lang,
    /// Where to write the project (default: a new folder NAME).
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let n = &a.name;
    if n.is_empty()
        || n.len() > 64
        || !n.starts_with(|c: char| c.is_ascii_alphabetic())
        || !n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!("plugin name {n:?} must be 1-64 of [A-Za-z0-9_-], starting with a letter");
    }
    let dir = a.dir.clone().unwrap_or_else(|| PathBuf::from(n));
    if dir.exists() {
        bail!("{} exists already", dir.display());
    }
    let fill = |text: &str| {
        text.replace("{{name}}", n)
            .replace("{{crate}}", &n.replace('-', "_"))
    };
    match a.lang {
        Lang::Rust => {
            write_tree(&RUST_TEMPLATE, &dir, &fill)?;
            let sdk = dir.join("gatehouse-sdk");
            write(&sdk.join("Cargo.toml"), RUST_SDK_MANIFEST)?;
            // The bindings name the WIT by its place in the Gatehouse
            // repository; here it sits inside the SDK.
            write_tree(&RUST_SDK, &sdk.join("src"), &|t: &str| {
                t.replace("\"../../wit\"", "\"wit\"")
            })?;
            write_tree(&WIT, &sdk.join("wit"), &|t: &str| t.to_string())?;
            let dsp = dir.join("gatehouse-dsp");
            write(&dsp.join("Cargo.toml"), RUST_DSP_MANIFEST)?;
            write_tree(&RUST_DSP, &dsp.join("src"), &|t: &str| t.to_string())?;
        }
        Lang::Python => {
            write_tree(&PYTHON_TEMPLATE, &dir, &fill)?;
            let sdk = dir.join("gatehouse_sdk");
            write_tree(&PYTHON_SDK, &sdk, &|t: &str| t.to_string())?;
            write_tree(&WIT, &sdk.join("wit"), &|t: &str| t.to_string())?;
            write(&dir.join("gatehouse_build.py"), PYTHON_BUILD)?;
        }
    }
    std::fs::write(dir.join("test-input.bin"), [200u8; 64])
        .with_context(|| format!("writing {}", dir.display()))?;
    println!(
        "{}: a {} plugin; see its README.md",
        dir.display(),
        match a.lang {
            Lang::Rust => "Rust",
            Lang::Python => "Python",
        }
    );
    Ok(())
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Every file of `tree` under `to`, text passed through `fill`. Python's
/// byte-code caches are left out.
fn write_tree(tree: &Dir<'_>, to: &Path, fill: &dyn Fn(&str) -> String) -> anyhow::Result<()> {
    for f in tree.files() {
        if f.path()
            .components()
            .any(|c| c.as_os_str() == "__pycache__")
        {
            continue;
        }
        let text = f
            .contents_utf8()
            .with_context(|| format!("{} is not text", f.path().display()))?;
        write(&to.join(f.path()), &fill(text))?;
    }
    for d in tree.dirs() {
        write_tree(d, to, fill)?;
    }
    Ok(())
}
