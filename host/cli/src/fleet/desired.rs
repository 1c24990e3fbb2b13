//! The desired-state document an operator leaves, retained, on the broker,
//! and how a gateway's own document and its groups' combine.
//!
//! ```json
//! {"sequence": 7,
//!  "plugins": {"kws": {"oci": "oci://registry:5000/gatehouse/kws:1.2.0",
//!                      "sha256": "<64 hex of the bundle>", "version": "1.2.0"}}}
//! ```
//!
//! Plugins a document does not name are left as they are: a gateway may
//! also serve plugins deployed through its admin API.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The topics of one gateway.
pub fn gateway_topic(id: &str, leaf: &str) -> String {
    format!("gatehouse/v1/gateways/{id}/{leaf}")
}

pub fn group_topic(group: &str) -> String {
    format!("gatehouse/v1/groups/{group}/desired")
}

/// One document, as published on a `.../desired` topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Desired {
    /// Grows with every change an operator makes to this topic's document.
    pub sequence: u64,
    #[serde(default)]
    pub plugins: BTreeMap<String, Want>,
}

/// What one plugin should run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Want {
    /// Where the signed bundle is: `oci://HOST/REPO:TAG`.
    pub oci: String,
    /// The bundle's sha256, lowercase hex: what the registry serves must be it.
    pub sha256: String,
    /// The version the bundle's signed manifest must carry.
    pub version: semver::Version,
}

impl Desired {
    /// Parse and check a document: names a manifest would accept, an
    /// `oci://` reference and a digest of the right form.
    pub fn parse(payload: &[u8]) -> Result<Desired, String> {
        let d: Desired = serde_json::from_slice(payload).map_err(|e| {
            format!("not a desired state ({{\"sequence\": N, \"plugins\": {{...}}}}): {e}")
        })?;
        for (name, w) in &d.plugins {
            let name_ok = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !name_ok {
                return Err(format!(
                    "plugin name {name:?}: use [A-Za-z0-9_-], at most 64"
                ));
            }
            if !w.oci.starts_with("oci://") {
                return Err(format!(
                    "{name}: oci {:?} is not an oci:// reference",
                    w.oci
                ));
            }
            let hex = w.sha256.len() == 64
                && w.sha256
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !hex {
                return Err(format!(
                    "{name}: sha256 {:?} is not 64 lowercase hex digits",
                    w.sha256
                ));
            }
        }
        Ok(d)
    }
}

/// What the gateway should run, from its documents by topic: its own
/// document wins over its groups', and an earlier group in `groups` over a
/// later one. Each plugin comes with the topic that decided it.
pub fn effective<'a>(
    docs: &'a BTreeMap<String, Desired>,
    own: &str,
    groups: &[String],
) -> BTreeMap<&'a str, (&'a Want, &'a str)> {
    let mut out = BTreeMap::new();
    let order = std::iter::once(own.to_string()).chain(groups.iter().map(|g| group_topic(g)));
    for topic in order {
        if let Some((topic, doc)) = docs.get_key_value(&topic) {
            for (name, want) in &doc.plugins {
                out.entry(name.as_str()).or_insert((want, topic.as_str()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(seq: u64, plugins: &[(&str, &str)]) -> Desired {
        Desired {
            sequence: seq,
            plugins: plugins
                .iter()
                .map(|(n, v)| {
                    (
                        n.to_string(),
                        Want {
                            oci: format!("oci://r/{n}:{v}"),
                            sha256: "0".repeat(64),
                            version: v.parse().unwrap(),
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn the_gateways_own_document_wins_then_the_first_group() {
        let own = gateway_topic("gw1", "desired");
        let docs = BTreeMap::from([
            (own.clone(), doc(3, &[("kws", "1.2.0")])),
            (
                group_topic("line-a"),
                doc(9, &[("kws", "1.3.0"), ("ad", "2.0.0")]),
            ),
            (
                group_topic("all"),
                doc(1, &[("ad", "1.0.0"), ("vww", "1.0.0")]),
            ),
        ]);
        let groups = ["line-a".to_string(), "all".to_string()];
        let e = effective(&docs, &own, &groups);
        let v = |n: &str| (e[n].0.version.to_string(), e[n].1.to_string());
        assert_eq!(v("kws"), ("1.2.0".into(), own));
        assert_eq!(v("ad"), ("2.0.0".into(), group_topic("line-a")));
        assert_eq!(v("vww"), ("1.0.0".into(), group_topic("all")));
        // A group the gateway is not in counts for nothing.
        assert_eq!(
            effective(&docs, &gateway_topic("gw2", "desired"), &[]).len(),
            0
        );
    }

    #[test]
    fn malformed_documents_say_what_is_wrong() {
        let ok = br#"{"sequence":1,"plugins":{"kws":{"oci":"oci://r/kws:1","sha256":"0000000000000000000000000000000000000000000000000000000000000000","version":"1.0.0"}}}"#;
        assert_eq!(Desired::parse(ok).unwrap().plugins.len(), 1);
        for (bad, says) in [
            (&b"{\"plugins\":{}}"[..], "sequence"),
            (b"not json", "not a desired state"),
            (b"{\"sequence\":1,\"extra\":2}", "unknown field"),
            (
                br#"{"sequence":1,"plugins":{"../x":{"oci":"oci://r/x:1","sha256":"00","version":"1.0.0"}}}"#,
                "plugin name",
            ),
            (
                br#"{"sequence":1,"plugins":{"x":{"oci":"http://r/x:1","sha256":"00","version":"1.0.0"}}}"#,
                "oci://",
            ),
            (
                br#"{"sequence":1,"plugins":{"x":{"oci":"oci://r/x:1","sha256":"ABC","version":"1.0.0"}}}"#,
                "sha256",
            ),
            (
                br#"{"sequence":1,"plugins":{"x":{"oci":"oci://r/x:1","sha256":"00","version":"one"}}}"#,
                "not a desired state",
            ),
        ] {
            let e = Desired::parse(bad).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }
}
