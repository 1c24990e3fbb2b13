//! The bundle file (`.gpk`): a tar archive of
//!
//! | entry | what |
//! |---|---|
//! | `manifest.toml` | the manifest, byte for byte what was signed |
//! | `manifest.sig` | `{"algorithm":"ed25519","key":HEX,"signature":HEX}` |
//! | `component.wasm` | the plugin component |
//! | `self-test.input`, `self-test.output` | optional self-test files |
//!
//! tar so that `tar tf` shows an operator what arrived. Entries are read into
//! memory by name and never unpacked to disk, so entry paths cannot escape
//! anywhere. Only these entries may appear, each once: anything the
//! signature does not cover is refused.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;

use ed25519_dalek::{Signer as _, SigningKey};
use serde::{Deserialize, Serialize};

use crate::manifest::{ComponentRef, Manifest, SELF_TEST_INPUT, SELF_TEST_OUTPUT};
use crate::{Error, sha256_hex};

pub const MANIFEST: &str = "manifest.toml";
pub const SIGNATURE: &str = "manifest.sig";
pub const COMPONENT: &str = "component.wasm";
const ENTRIES: [&str; 5] = [
    MANIFEST,
    SIGNATURE,
    COMPONENT,
    SELF_TEST_INPUT,
    SELF_TEST_OUTPUT,
];

/// Largest bundle a gateway takes.
pub const MAX_BUNDLE_BYTES: usize = 256 << 20;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    pub algorithm: String,
    /// Hex of the signer's public key.
    pub key: String,
    /// Hex of the 64-byte signature over the manifest bytes.
    pub signature: String,
}

/// A bundle taken apart, not yet verified.
#[derive(Clone, Debug, Default)]
pub struct Bundle {
    entries: BTreeMap<String, Vec<u8>>,
}

impl Bundle {
    /// Take a bundle apart. Checks structure only; [`crate::TrustStore::verify`]
    /// decides whether to believe it.
    pub fn parse(bytes: &[u8]) -> Result<Bundle, Error> {
        if bytes.len() > MAX_BUNDLE_BYTES {
            return Err(Error::Malformed(format!(
                "{} bytes is over the {} byte limit",
                bytes.len(),
                MAX_BUNDLE_BYTES
            )));
        }
        let mut archive = tar::Archive::new(bytes);
        let mut entries = BTreeMap::new();
        let bad = |e: std::io::Error| Error::Malformed(format!("not a bundle archive: {e}"));
        for entry in archive.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            if !matches!(
                entry.header().entry_type(),
                tar::EntryType::Regular | tar::EntryType::Continuous
            ) {
                return Err(Error::Malformed(
                    "only regular files may be in a bundle".into(),
                ));
            }
            let name = entry
                .path()
                .map_err(bad)?
                .to_str()
                .map(str::to_owned)
                .ok_or_else(|| Error::Malformed("an entry name is not UTF-8".into()))?;
            if !ENTRIES.contains(&name.as_str()) {
                return Err(Error::Malformed(format!(
                    "unexpected entry {name:?}; a bundle holds only {ENTRIES:?}"
                )));
            }
            let mut data = Vec::new();
            entry
                .by_ref()
                .take(MAX_BUNDLE_BYTES as u64)
                .read_to_end(&mut data)
                .map_err(bad)?;
            if entries.insert(name.clone(), data).is_some() {
                return Err(Error::Malformed(format!("entry {name:?} appears twice")));
            }
        }
        for required in [MANIFEST, COMPONENT] {
            if !entries.contains_key(required) {
                return Err(Error::Malformed(format!("missing {required}")));
            }
        }
        Ok(Bundle { entries })
    }

    pub fn entry(&self, name: &str) -> Option<&[u8]> {
        self.entries.get(name).map(Vec::as_slice)
    }

    pub fn manifest_bytes(&self) -> &[u8] {
        self.entry(MANIFEST).unwrap_or_default()
    }

    pub fn component(&self) -> &[u8] {
        self.entry(COMPONENT).unwrap_or_default()
    }

    pub fn signature(&self) -> Result<Option<Signature>, Error> {
        self.entry(SIGNATURE)
            .map(|b| {
                serde_json::from_slice(b)
                    .map_err(|e| Error::Malformed(format!("{SIGNATURE} is not valid: {e}")))
            })
            .transpose()
    }

    /// Entries in a fixed order, for writing.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// Build from entries (as a registry pull hands them back); checked like a file.
    pub fn from_entries(
        entries: impl IntoIterator<Item = (String, Vec<u8>)>,
    ) -> Result<Bundle, Error> {
        let mut map = BTreeMap::new();
        for (name, data) in entries {
            if map.insert(name.clone(), data).is_some() {
                return Err(Error::Malformed(format!("entry {name:?} appears twice")));
            }
        }
        Bundle::parse(&write_tar(map)?)
    }

    /// The bundle file.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        write_tar(self.entries.clone())
    }
}

fn write_tar(entries: BTreeMap<String, Vec<u8>>) -> Result<Vec<u8>, Error> {
    let mut b = tar::Builder::new(Vec::new());
    let order = ENTRIES
        .iter()
        .filter_map(|n| entries.get(*n).map(|d| (*n, d)));
    for (name, data) in order {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, data.as_slice())
            .map_err(|e| Error::Malformed(format!("writing {name}: {e}")))?;
    }
    b.into_inner()
        .map_err(|e| Error::Malformed(format!("finishing the archive: {e}")))
}

/// Sign manifest bytes with `key`.
pub fn sign(manifest: &[u8], key: &SigningKey) -> Signature {
    Signature {
        algorithm: "ed25519".into(),
        key: crate::keys::key_id(&key.verifying_key()),
        signature: hex::encode(key.sign(manifest).to_bytes()),
    }
}

/// Build a signed bundle from a vendor's `plugin.toml` (self-test paths are
/// relative to it) and a component.
pub fn pack(manifest_path: &Path, component: &[u8], key: &SigningKey) -> Result<Vec<u8>, Error> {
    let text = std::fs::read_to_string(manifest_path).map_err(|e| Error::io(manifest_path, e))?;
    let mut m = Manifest::parse(&text)?;
    let base = manifest_path.parent().unwrap_or(Path::new("."));
    let mut entries = BTreeMap::new();
    if let Some(t) = &mut m.self_test {
        let read = |rel: &str| {
            let p = base.join(rel);
            std::fs::read(&p).map_err(|e| Error::io(&p, e))
        };
        let input = read(&t.input)?;
        t.input = SELF_TEST_INPUT.into();
        t.input_sha256 = Some(sha256_hex(&input));
        entries.insert(SELF_TEST_INPUT.to_string(), input);
        if let Some(out) = t.output.take() {
            let output = read(&out)?;
            t.output = Some(SELF_TEST_OUTPUT.into());
            t.output_sha256 = Some(sha256_hex(&output));
            entries.insert(SELF_TEST_OUTPUT.to_string(), output);
        }
    }
    m.component = Some(ComponentRef {
        sha256: sha256_hex(component),
        size: component.len() as u64,
    });
    pack_manifest(&m, component, entries, key)?.to_bytes()
}

/// Sign a complete manifest and put the bundle together.
pub fn pack_manifest(
    m: &Manifest,
    component: &[u8],
    mut extra: BTreeMap<String, Vec<u8>>,
    key: &SigningKey,
) -> Result<Bundle, Error> {
    let manifest = m.to_toml().into_bytes();
    let sig = sign(&manifest, key);
    extra.insert(
        SIGNATURE.into(),
        serde_json::to_vec(&sig).map_err(|e| Error::Malformed(e.to_string()))?,
    );
    extra.insert(MANIFEST.into(), manifest);
    extra.insert(COMPONENT.into(), component.to_vec());
    Ok(Bundle { entries: extra })
}

impl Bundle {
    /// Replace or add one entry (the tests build tampered bundles with it).
    pub fn with_entry(mut self, name: &str, data: Vec<u8>) -> Bundle {
        self.entries.insert(name.to_string(), data);
        self
    }

    pub fn without_entry(mut self, name: &str) -> Bundle {
        self.entries.remove(name);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_archives_that_are_not_bundles() {
        assert!(Bundle::parse(b"not a tar").is_err());
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(1);
        // The builder refuses `..`; a hostile sender writes the bytes itself.
        h.as_mut_bytes()[..10].copy_from_slice(b"../passwd\0");
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        let e = Bundle::parse(&b.into_inner().unwrap()).unwrap_err();
        assert!(e.to_string().contains("unexpected entry"), "{e}");
        let only_manifest = Bundle::default().with_entry(MANIFEST, b"name='a'".to_vec());
        let e = Bundle::parse(&only_manifest.to_bytes().unwrap()).unwrap_err();
        assert!(e.to_string().contains("missing component.wasm"), "{e}");
    }

    #[test]
    fn packing_is_deterministic_and_parses_back() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("plugin.toml"),
            "name = \"kws\"\nversion = \"1.0.0\"\n[self-test]\ninput = \"in.bin\"\nlabel = \"yes\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("in.bin"), b"input").unwrap();
        let key = SigningKey::from_bytes(&[7; 32]);
        let a = pack(&dir.path().join("plugin.toml"), b"\0asm", &key).unwrap();
        let b = pack(&dir.path().join("plugin.toml"), b"\0asm", &key).unwrap();
        assert_eq!(a, b);
        let bundle = Bundle::parse(&a).unwrap();
        assert_eq!(bundle.component(), b"\0asm");
        assert_eq!(bundle.entry(SELF_TEST_INPUT), Some(&b"input"[..]));
        let m = Manifest::parse(std::str::from_utf8(bundle.manifest_bytes()).unwrap()).unwrap();
        assert_eq!(m.component.unwrap().sha256, sha256_hex(b"\0asm"));
        assert_eq!(
            m.self_test.unwrap().input_sha256.unwrap(),
            sha256_hex(b"input")
        );
    }
}
