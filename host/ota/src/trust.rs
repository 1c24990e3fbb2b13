//! The trust folder: the vendor public keys (`*.pub`) whose bundles this
//! gateway accepts, and the checks that decide whether a bundle is believed.

use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;

use crate::bundle::{Bundle, COMPONENT};
use crate::keys::{key_id, load_verifying_key};
use crate::manifest::{Manifest, SELF_TEST_INPUT, SELF_TEST_OUTPUT, WORLD};
use crate::{Error, sha256_hex};

#[derive(Clone, Debug)]
pub struct TrustStore {
    dir: PathBuf,
    keys: Vec<(PathBuf, VerifyingKey)>,
}

/// A bundle whose signature, digests and world have been checked.
#[derive(Clone, Debug)]
pub struct Verified {
    pub manifest: Manifest,
    pub bundle: Bundle,
    /// The trust-folder file of the key that signed it.
    pub signer: PathBuf,
}

impl Verified {
    pub fn component(&self) -> &[u8] {
        self.bundle.component()
    }
    pub fn self_test_input(&self) -> Option<&[u8]> {
        self.bundle.entry(SELF_TEST_INPUT)
    }
    pub fn self_test_output(&self) -> Option<&[u8]> {
        self.bundle.entry(SELF_TEST_OUTPUT)
    }
}

impl TrustStore {
    /// Read every `*.pub` in `dir`. An unreadable key file is an error rather
    /// than skipped: the operator meant to trust it.
    pub fn load(dir: &Path) -> Result<TrustStore, Error> {
        let mut keys = Vec::new();
        let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
        for entry in rd {
            let path = entry.map_err(|e| Error::io(dir, e))?.path();
            if path.extension().is_some_and(|e| e == "pub") {
                let key = load_verifying_key(&path)?;
                keys.push((path, key));
            }
        }
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(TrustStore {
            dir: dir.to_path_buf(),
            keys,
        })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Decide whether to believe a bundle: signed, by a trusted key, over
    /// this manifest, whose digests match every entry, for our world.
    pub fn verify(&self, bytes: &[u8]) -> Result<Verified, Error> {
        let bundle = Bundle::parse(bytes)?;
        let sig = bundle.signature()?.ok_or(Error::Unsigned)?;
        if sig.algorithm != "ed25519" {
            return Err(Error::Malformed(format!(
                "signature algorithm {:?} is not ed25519",
                sig.algorithm
            )));
        }
        let (signer, key) = self
            .keys
            .iter()
            .find(|(_, k)| key_id(k) == sig.key.to_ascii_lowercase())
            .ok_or_else(|| Error::UnknownKey {
                key: sig.key.clone(),
                trust: self.dir.display().to_string(),
            })?;
        let raw: [u8; 64] = hex::decode(&sig.signature)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| Error::BadSignature {
                key: sig.key.clone(),
            })?;
        key.verify_strict(
            bundle.manifest_bytes(),
            &ed25519_dalek::Signature::from_bytes(&raw),
        )
        .map_err(|_| Error::BadSignature {
            key: sig.key.clone(),
        })?;

        // Believed from here on: the manifest is what the vendor signed.
        let text = std::str::from_utf8(bundle.manifest_bytes())
            .map_err(|_| Error::Manifest("not UTF-8".into()))?;
        let manifest = Manifest::parse(text)?;
        let component = manifest
            .component
            .as_ref()
            .ok_or_else(|| Error::Manifest("a bundle's manifest must name its component".into()))?;
        check_digest(COMPONENT, &component.sha256, Some(bundle.component()))?;
        if bundle.component().len() as u64 != component.size {
            return Err(Error::DigestMismatch {
                entry: COMPONENT.into(),
                expected: format!("{} bytes", component.size),
                actual: format!("{} bytes", bundle.component().len()),
            });
        }
        let test = manifest.self_test.as_ref();
        match test.and_then(|t| t.input_sha256.as_deref()) {
            Some(d) => check_digest(SELF_TEST_INPUT, d, bundle.entry(SELF_TEST_INPUT))?,
            None => refuse_unsigned(&bundle, SELF_TEST_INPUT)?,
        }
        match test.and_then(|t| t.output_sha256.as_deref()) {
            Some(d) => check_digest(SELF_TEST_OUTPUT, d, bundle.entry(SELF_TEST_OUTPUT))?,
            None => refuse_unsigned(&bundle, SELF_TEST_OUTPUT)?,
        }
        if test.is_some_and(|t| t.input_sha256.is_none()) {
            return Err(Error::Manifest("self-test input has no sha256".into()));
        }
        if test.is_some_and(|t| t.output.is_some() && t.output_sha256.is_none()) {
            return Err(Error::Manifest("self-test output has no sha256".into()));
        }
        if manifest.world != WORLD {
            return Err(Error::Manifest(format!(
                "world {} is not the {WORLD} this gateway runs",
                manifest.world
            )));
        }
        Ok(Verified {
            manifest,
            bundle,
            signer: signer.clone(),
        })
    }
}

fn check_digest(entry: &str, expected: &str, data: Option<&[u8]>) -> Result<(), Error> {
    let data = data
        .ok_or_else(|| Error::Malformed(format!("the manifest names {entry}, which is missing")))?;
    let actual = sha256_hex(data);
    if !actual.eq_ignore_ascii_case(expected) {
        return Err(Error::DigestMismatch {
            entry: entry.into(),
            expected: expected.into(),
            actual,
        });
    }
    Ok(())
}

fn refuse_unsigned(bundle: &Bundle, entry: &str) -> Result<(), Error> {
    match bundle.entry(entry) {
        Some(_) => Err(Error::Malformed(format!(
            "{entry} is not covered by the signed manifest"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::bundle::{SIGNATURE, pack_manifest};
    use crate::manifest::{ComponentRef, SelfTestSpec};

    const WASM: &[u8] = b"\0asm component bytes";

    fn trust_with(keys: &[&SigningKey]) -> (tempfile::TempDir, TrustStore) {
        use ed25519_dalek::pkcs8::EncodePublicKey as _;
        let dir = tempfile::tempdir().unwrap();
        for (i, k) in keys.iter().enumerate() {
            let pem = k
                .verifying_key()
                .to_public_key_pem(Default::default())
                .unwrap();
            std::fs::write(dir.path().join(format!("vendor{i}.pub")), pem).unwrap();
        }
        let t = TrustStore::load(dir.path()).unwrap();
        (dir, t)
    }

    fn manifest() -> Manifest {
        let mut m = Manifest::parse("name = \"kws\"\nversion = \"1.0.0\"\n").unwrap();
        m.component = Some(ComponentRef {
            sha256: sha256_hex(WASM),
            size: WASM.len() as u64,
        });
        m
    }

    fn signed(m: &Manifest, key: &SigningKey, extra: BTreeMap<String, Vec<u8>>) -> Bundle {
        pack_manifest(m, WASM, extra, key).unwrap()
    }

    fn refusal(t: &TrustStore, b: Bundle) -> String {
        t.verify(&b.to_bytes().unwrap()).unwrap_err().to_string()
    }

    #[test]
    fn the_trust_matrix() {
        let vendor = SigningKey::from_bytes(&[1; 32]);
        let stranger = SigningKey::from_bytes(&[2; 32]);
        let (_d, trust) = trust_with(&[&vendor]);
        let good = signed(&manifest(), &vendor, BTreeMap::new());
        let v = trust.verify(&good.to_bytes().unwrap()).unwrap();
        assert_eq!(v.manifest.id(), "kws@1.0.0");
        assert_eq!(v.component(), WASM);

        let unsigned = good.clone().without_entry(SIGNATURE);
        assert!(refusal(&trust, unsigned).contains("not signed"));

        let mut bumped = manifest();
        bumped.version = "9.0.0".parse().unwrap();
        let tampered_manifest = good
            .clone()
            .with_entry(MANIFEST_ENTRY, bumped.to_toml().into_bytes());
        assert!(refusal(&trust, tampered_manifest).contains("signature does not match"));

        let tampered_component = good.clone().with_entry(COMPONENT, b"\0asm evil".to_vec());
        assert!(refusal(&trust, tampered_component).contains("tampered"));

        let by_stranger = signed(&manifest(), &stranger, BTreeMap::new());
        let e = refusal(&trust, by_stranger);
        assert!(e.contains("not in the trust folder"), "{e}");

        // A second trusted vendor is accepted too.
        let (_d2, both) = trust_with(&[&vendor, &stranger]);
        both.verify(
            &signed(&manifest(), &stranger, BTreeMap::new())
                .to_bytes()
                .unwrap(),
        )
        .unwrap();
    }

    #[test]
    fn self_test_files_are_covered_by_the_signature() {
        let vendor = SigningKey::from_bytes(&[1; 32]);
        let (_d, trust) = trust_with(&[&vendor]);
        let mut m = manifest();
        m.self_test = Some(SelfTestSpec {
            input: SELF_TEST_INPUT.into(),
            input_sha256: Some(sha256_hex(b"input")),
            label: Some("yes".into()),
            output: None,
            output_sha256: None,
        });
        let extra = BTreeMap::from([(SELF_TEST_INPUT.to_string(), b"input".to_vec())]);
        let good = signed(&m, &vendor, extra);
        let v = trust.verify(&good.to_bytes().unwrap()).unwrap();
        assert_eq!(v.self_test_input(), Some(&b"input"[..]));
        let swapped = good.clone().with_entry(SELF_TEST_INPUT, b"other".to_vec());
        assert!(refusal(&trust, swapped).contains("tampered"));
        let smuggled = good.with_entry(SELF_TEST_OUTPUT, b"x".to_vec());
        assert!(refusal(&trust, smuggled).contains("not covered"));
    }

    #[test]
    fn a_bundle_for_another_world_is_refused() {
        let vendor = SigningKey::from_bytes(&[1; 32]);
        let (_d, trust) = trust_with(&[&vendor]);
        let mut m = manifest();
        m.world = "gatehouse:plugin/plugin@0.2.0".into();
        let e = refusal(&trust, signed(&m, &vendor, BTreeMap::new()));
        assert!(
            e.contains("is not the gatehouse:plugin/plugin@0.1.0"),
            "{e}"
        );
    }

    const MANIFEST_ENTRY: &str = crate::bundle::MANIFEST;
}
