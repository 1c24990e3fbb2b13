//! `gatehouse pack` and `gatehouse verify`: make and check signed bundles.

use std::path::PathBuf;

use anyhow::Context as _;

#[derive(clap::Args)]
pub struct PackArgs {
    /// The plugin component.
    #[arg(long)]
    component: PathBuf,
    /// The vendor's plugin.toml (only name and version are required).
    #[arg(long)]
    manifest: PathBuf,
    /// The vendor's private key (from `gatehouse key generate`).
    #[arg(long)]
    key: PathBuf,
    /// Where to write the bundle (.gpk).
    #[arg(long)]
    out: PathBuf,
}

pub fn pack(a: PackArgs) -> anyhow::Result<()> {
    let component = std::fs::read(&a.component)
        .with_context(|| format!("reading {}", a.component.display()))?;
    let key = gatehouse_ota::load_signing_key(&a.key)?;
    let bundle = gatehouse_ota::pack(&a.manifest, &component, &key)?;
    write_atomically(&a.out, &bundle)?;
    let b = gatehouse_ota::Bundle::parse(&bundle)?;
    let m = gatehouse_ota::Manifest::parse(std::str::from_utf8(b.manifest_bytes())?)?;
    println!(
        "{}: {} ({} bytes, sha256 {})",
        a.out.display(),
        m.id(),
        bundle.len(),
        gatehouse_ota::sha256_hex(&bundle)
    );
    Ok(())
}

/// A half-written bundle must never sit where a watcher or a push finds it.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("gpk.tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The bundle to check.
    bundle: PathBuf,
    /// Folder of trusted vendor keys (*.pub).
    #[arg(long)]
    trust: PathBuf,
}

/// Exits 0 only for a bundle that is valid and signed by a trusted key.
pub fn verify(a: VerifyArgs) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(&a.bundle).with_context(|| format!("reading {}", a.bundle.display()))?;
    let trust = gatehouse_ota::TrustStore::load(&a.trust)?;
    let v = trust
        .verify(&bytes)
        .with_context(|| format!("{} is not trusted", a.bundle.display()))?;
    let m = &v.manifest;
    println!(
        "{}: {} for {}, signed by {}; valid and trusted",
        a.bundle.display(),
        m.id(),
        m.world,
        v.signer.display()
    );
    Ok(())
}
