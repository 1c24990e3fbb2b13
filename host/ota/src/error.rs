use std::path::PathBuf;

/// Why a bundle, key or store operation was refused. Every variant names
/// what the operator has to look at.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed bundle: {0}")]
    Malformed(String),
    #[error("invalid manifest: {0}")]
    Manifest(String),
    #[error("the bundle is not signed")]
    Unsigned,
    #[error(
        "the signature does not match the manifest (signed by key {key}): the manifest was changed after signing, or the signature is forged"
    )]
    BadSignature { key: String },
    #[error(
        "{entry} does not match the signed manifest (sha256 {actual}, manifest says {expected}): the bundle was tampered with"
    )]
    DigestMismatch {
        entry: String,
        expected: String,
        actual: String,
    },
    #[error("signed by key {key}, which is not in the trust folder {trust}")]
    UnknownKey { key: String, trust: String },
    #[error("key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error(
        "{name} {offered} is older than the active {active}: refused as a rollback attack (deploy with force to override)"
    )]
    Downgrade {
        name: String,
        offered: semver::Version,
        active: semver::Version,
    },
    #[error("{name} {version} is already active with different content: bump the version")]
    VersionReused {
        name: String,
        version: semver::Version,
    },
    #[error("{name} {version} exceeds the gateway's policy: {reason}")]
    Policy {
        name: String,
        version: semver::Version,
        reason: String,
    },
    #[error("store {path}: {reason}")]
    Store { path: PathBuf, reason: String },
    #[error("OCI {reference}: {reason}")]
    Oci { reference: String, reason: String },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// True when the error is the disk running out of space.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.raw_os_error() == Some(libc::ENOSPC))
    }
}
