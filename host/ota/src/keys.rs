//! Vendor signing keys: ed25519, stored as PKCS#8 / SPKI PEM so standard
//! tools (openssl) read them too.

use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::Error;

/// A key's name in messages and signatures: the hex of its 32 public bytes.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(key.as_bytes())
}

/// Write `DIR/signing.key` (mode 0600) and `DIR/signing.pub`. Refuses to
/// overwrite an existing key: losing a vendor key strands every gateway
/// that trusts it.
pub fn generate_key_pair(dir: &Path) -> Result<(PathBuf, PathBuf), Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let secret_path = dir.join("signing.key");
    let public_path = dir.join("signing.pub");
    if secret_path.exists() {
        return Err(Error::Key {
            path: secret_path,
            reason: "already exists; refusing to overwrite a signing key".into(),
        });
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| Error::Key {
        path: secret_path.clone(),
        reason: format!("no system randomness: {e}"),
    })?;
    let key = SigningKey::from_bytes(&seed);
    let key_err = |path: &Path, e: &dyn std::fmt::Display| Error::Key {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let secret = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| key_err(&secret_path, &e))?;
    let public = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| key_err(&public_path, &e))?;
    write_private(&secret_path, secret.as_bytes())?;
    std::fs::write(&public_path, public).map_err(|e| Error::io(&public_path, e))?;
    Ok((secret_path, public_path))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io(path, e))
}

pub fn load_signing_key(path: &Path) -> Result<SigningKey, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    SigningKey::from_pkcs8_pem(&text).map_err(|e| Error::Key {
        path: path.to_path_buf(),
        reason: format!("not an ed25519 PKCS#8 PEM private key: {e}"),
    })
}

pub fn load_verifying_key(path: &Path) -> Result<VerifyingKey, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    VerifyingKey::from_public_key_pem(&text).map_err(|e| Error::Key {
        path: path.to_path_buf(),
        reason: format!("not an ed25519 SPKI PEM public key: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_load_back_and_are_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let (s, p) = generate_key_pair(dir.path()).unwrap();
        let sk = load_signing_key(&s).unwrap();
        let vk = load_verifying_key(&p).unwrap();
        assert_eq!(sk.verifying_key(), vk);
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&s).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let again = generate_key_pair(dir.path()).unwrap_err().to_string();
        assert!(again.contains("refusing to overwrite"), "{again}");
        assert_eq!(load_signing_key(&s).unwrap().to_bytes(), sk.to_bytes());
        // A public key is not a private key.
        assert!(load_signing_key(&p).is_err());
    }
}
