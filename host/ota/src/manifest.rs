//! `plugin.toml`: what a vendor declares, and (completed by `pack`) what the
//! signature covers.
//!
//! A vendor's file needs only `name` and `version`:
//!
//! ```toml
//! name = "kws"
//! version = "1.2.0"
//! # world = "gatehouse:plugin/plugin@0.1.0"
//! # capabilities = []    # or ["state"]: a private directory, /state
//! # [limits]
//! # memory-mib = 64
//! # tensor-memory-mib = 64
//! # deadline-ms = 1000
//! # state-kib = 1024      # the /state quota, with the "state" capability
//! # [config]              # settings for the plugin's init
//! # threshold = "0.9"
//! # [self-test]
//! # input = "yes.wav"       # relative to plugin.toml
//! # label = "yes"           # or: output = "expected.bin" (raw output bytes)
//! ```
//!
//! In a bundle, `pack` has added `[component]` (sha256 and size) and replaced
//! the self-test paths with bundle entries and their sha256, so the signature
//! over the manifest covers every byte of the bundle.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Error;

/// The plugin world this gateway runs.
pub const WORLD: &str = "gatehouse:plugin/plugin@0.1.0";

/// Capabilities a manifest may ask for, each granted by the operator's
/// policy. New ones are added here one at a time.
pub const CAPABILITIES: &[&str] = &[
    // A private directory preopened as `/state`, kept across versions and
    // restarts, within `limits.state-kib`.
    "state",
];

/// Bundle entry of the self-test input.
pub const SELF_TEST_INPUT: &str = "self-test.input";
/// Bundle entry of the self-test's expected output.
pub const SELF_TEST_OUTPUT: &str = "self-test.output";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Manifest {
    pub name: String,
    pub version: semver::Version,
    #[serde(default = "default_world")]
    pub world: String,
    #[serde(default)]
    pub limits: RequestedLimits,
    /// Host capabilities beyond the plugin world, from [`CAPABILITIES`].
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Settings handed to the plugin's `init`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_test: Option<SelfTestSpec>,
    /// Filled in by `pack`; required in a bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<ComponentRef>,
}

fn default_world() -> String {
    WORLD.to_string()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct RequestedLimits {
    pub memory_mib: u32,
    pub tensor_memory_mib: u32,
    pub deadline_ms: u32,
    /// Bytes the `state` directory may hold, in KiB (files plus 4 KiB per entry).
    pub state_kib: u32,
}

impl Default for RequestedLimits {
    /// The runtime's defaults.
    fn default() -> Self {
        RequestedLimits {
            memory_mib: 64,
            tensor_memory_mib: 64,
            deadline_ms: 1000,
            state_kib: 1024,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SelfTestSpec {
    /// A path beside `plugin.toml`; in a bundle, the entry name.
    pub input: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_sha256: Option<String>,
    /// The top-1 label the input must give.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// A file of the exact output bytes the input must give.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_sha256: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ComponentRef {
    pub sha256: String,
    pub size: u64,
}

impl Manifest {
    /// Parse and check a manifest (a vendor's or a bundle's).
    pub fn parse(text: &str) -> Result<Manifest, Error> {
        let m: Manifest = toml::from_str(text).map_err(|e| Error::Manifest(e.to_string()))?;
        m.check()?;
        Ok(m)
    }

    pub fn to_toml(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        toml::to_string(self).unwrap_or_default()
    }

    fn check(&self) -> Result<(), Error> {
        let n = &self.name;
        if n.is_empty()
            || n.len() > 64
            || !n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Error::Manifest(format!(
                "name {n:?} must be 1-64 of [A-Za-z0-9_-]"
            )));
        }
        if let Some(t) = &self.self_test
            && t.label.is_some() == t.output.is_some()
            && t.label.is_some()
        {
            return Err(Error::Manifest(
                "self-test takes a label or an output, not both".into(),
            ));
        }
        if let Some(c) = self
            .capabilities
            .iter()
            .find(|c| !CAPABILITIES.contains(&c.as_str()))
        {
            return Err(Error::Manifest(format!(
                "unknown capability {c:?}; known: {}",
                CAPABILITIES.join(", ")
            )));
        }
        if self.limits.memory_mib == 0 || self.limits.deadline_ms == 0 {
            return Err(Error::Manifest(
                "limits.memory-mib and limits.deadline-ms must be above 0".into(),
            ));
        }
        Ok(())
    }

    /// `name@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_and_version_are_enough() {
        let m = Manifest::parse("name = \"kws\"\nversion = \"1.2.0\"\n").unwrap();
        assert_eq!(m.world, WORLD);
        assert_eq!(m.limits, RequestedLimits::default());
        assert!(m.capabilities.is_empty() && m.self_test.is_none() && m.component.is_none());
    }

    #[test]
    fn refuses_what_it_cannot_mean() {
        for (text, why) in [
            ("name = \"kws\"\n", "version"),
            ("name = \"kws\"\nversion = \"1.2\"\n", "semver"),
            ("name = \"../etc\"\nversion = \"1.0.0\"\n", "name"),
            (
                "name = \"kws\"\nversion = \"1.0.0\"\nmemroy = 3\n",
                "unknown field",
            ),
            (
                "name = \"kws\"\nversion = \"1.0.0\"\ncapabilities = [\"network\"]\n",
                "unknown capability",
            ),
            (
                "name = \"kws\"\nversion = \"1.0.0\"\n[self-test]\ninput = \"a\"\nlabel = \"x\"\noutput = \"b\"\n",
                "not both",
            ),
        ] {
            let e = Manifest::parse(text).unwrap_err().to_string();
            assert!(e.contains("manifest"), "{why}: {e}");
        }
    }

    #[test]
    fn round_trips_through_toml() {
        let mut m = Manifest::parse("name = \"kws\"\nversion = \"1.2.0-rc.1\"\n").unwrap();
        m.component = Some(ComponentRef {
            sha256: "ab".repeat(32),
            size: 7,
        });
        m.config.insert("mode".into(), "ok".into());
        m.self_test = Some(SelfTestSpec {
            input: SELF_TEST_INPUT.into(),
            input_sha256: Some("cd".repeat(32)),
            label: Some("yes".into()),
            output: None,
            output_sha256: None,
        });
        assert_eq!(Manifest::parse(&m.to_toml()).unwrap(), m);
    }
}
