//! Over-the-air delivery of plugins to a gateway.
//!
//! ```text
//! plugin.toml + component.wasm ── pack (vendor key) ──> bundle.gpk
//! bundle.gpk ── push ──> OCI registry ── pull ──> bundle bytes
//! bundle bytes ── verify (trust folder, policy) ──> Verified
//! Verified ── Store::commit (blob, then pointer; each tmp+fsync+rename) ──> active
//! ```
//!
//! Nothing here knows about wasm execution: the daemon puts a verified
//! bundle in the store and hands its component to the runtime's registry.

// Outside tests, nothing here unwraps: a panic on data from a plugin, a
// file or the network would take down the gateway. Clippy holds every
// change to that (`cargo clippy`).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod bundle;
mod disk;
mod error;
pub mod fault;
pub mod keys;
pub mod manifest;
pub mod oci;
pub mod policy;
pub mod store;
pub mod trust;

pub use bundle::{Bundle, pack};
pub use error::Error;
pub use fault::{FaultPoint, Faults};
pub use keys::{generate_key_pair, load_signing_key};
pub use manifest::{CAPABILITIES, Manifest, SelfTestSpec, WORLD};
pub use policy::GatewayPolicy;
pub use store::{PluginRecord, Pointer, Store};
pub use trust::{TrustStore, Verified};

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}
