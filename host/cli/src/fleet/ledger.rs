//! What a gateway remembers of its fleet across restarts, in its store
//! (`fleet.json`): the documents it applied, by topic, so that an older
//! sequence number stays refused after a restart; and the versions it
//! took out of service itself, so that a desired state naming one again
//! does not bring it back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::desired::Desired;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    /// The last document applied, by topic.
    #[serde(default)]
    pub applied: BTreeMap<String, Desired>,
    /// Versions rolled back here after they failed requests.
    #[serde(default)]
    pub rejected: Vec<Rejected>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    pub plugin: String,
    pub version: String,
    pub sha256: String,
}

/// Why a document from `topic` is not to be applied, before any work.
pub fn check_sequence(ledger: &Ledger, topic: &str, doc: &Desired) -> Result<(), String> {
    match ledger.applied.get(topic) {
        Some(prev) if doc.sequence < prev.sequence => Err(format!(
            "sequence {} is older than {} already applied",
            doc.sequence, prev.sequence
        )),
        Some(prev) if doc.sequence == prev.sequence && doc != prev => Err(format!(
            "sequence {} was applied with other contents; a change needs a new sequence number",
            doc.sequence
        )),
        _ => Ok(()),
    }
}

impl Ledger {
    pub fn load(store: &gatehouse_ota::Store) -> Result<Ledger, String> {
        match store.ledger() {
            Ok(None) => Ok(Ledger::default()),
            Ok(Some(bytes)) => serde_json::from_slice(&bytes)
                .map_err(|e| format!("{}/fleet.json is unreadable: {e}", store.root().display())),
            Err(e) => Err(e.to_string()),
        }
    }

    pub fn save(&self, store: &gatehouse_ota::Store) -> Result<(), String> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| e.to_string())?;
        store.commit_ledger(&bytes).map_err(|e| e.to_string())
    }

    pub fn is_rejected(&self, plugin: &str, sha256: &str) -> Option<&Rejected> {
        self.rejected
            .iter()
            .find(|r| r.plugin == plugin && r.sha256 == sha256)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_or_rewritten_sequences_are_refused() {
        let topic = "gatehouse/v1/gateways/gw1/desired";
        let doc = |seq| Desired {
            sequence: seq,
            plugins: Default::default(),
        };
        let mut l = Ledger::default();
        assert!(check_sequence(&l, topic, &doc(5)).is_ok());
        l.applied.insert(topic.into(), doc(5));
        assert!(
            check_sequence(&l, topic, &doc(4))
                .unwrap_err()
                .contains("older")
        );
        // The same document again (a retained message after a reconnect) is fine.
        assert!(check_sequence(&l, topic, &doc(5)).is_ok());
        let mut changed = doc(5);
        changed.plugins.insert(
            "kws".into(),
            super::super::desired::Want {
                oci: "oci://r/kws:1".into(),
                sha256: "0".repeat(64),
                version: "1.0.0".parse().unwrap(),
            },
        );
        assert!(
            check_sequence(&l, topic, &changed)
                .unwrap_err()
                .contains("new sequence")
        );
        assert!(check_sequence(&l, topic, &doc(6)).is_ok());
        // Another topic has its own numbering.
        assert!(check_sequence(&l, "gatehouse/v1/groups/a/desired", &doc(1)).is_ok());
    }

    #[test]
    fn the_ledger_survives_a_restart() {
        let dir = std::env::temp_dir().join(format!("gatehouse-ledger-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = gatehouse_ota::Store::open(&dir, gatehouse_ota::Faults::NONE).unwrap();
        assert_eq!(Ledger::load(&store).unwrap(), Ledger::default());
        let mut l = Ledger::default();
        l.rejected.push(Rejected {
            plugin: "kws".into(),
            version: "1.1.0".into(),
            sha256: "ab".repeat(32),
        });
        l.save(&store).unwrap();
        let back = Ledger::load(&store).unwrap();
        assert_eq!(back, l);
        assert!(back.is_rejected("kws", &"ab".repeat(32)).is_some());
        std::fs::write(dir.join("fleet.json"), b"{").unwrap();
        assert!(Ledger::load(&store).unwrap_err().contains("unreadable"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
