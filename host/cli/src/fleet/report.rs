//! The reported state a gateway publishes, retained, on
//! `gatehouse/v1/gateways/<id>/reported`, and its online status.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ledger::Rejected;
use crate::gateway::health::Health;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Reported {
    pub gateway: String,
    #[serde(default)]
    pub groups: Vec<String>,
    /// Unix time of the report, in seconds.
    pub at: f64,
    /// The kernel set this gateway computes with (`gatehouse kernels`).
    pub kernels: String,
    /// The time the plugins' health covers, in seconds.
    pub interval_s: f64,
    /// The sequence number applied, by desired-state topic.
    #[serde(default)]
    pub applied: BTreeMap<String, u64>,
    #[serde(default)]
    pub plugins: BTreeMap<String, PluginReport>,
    /// The last desired state (or version) refused, and why.
    pub last_refusal: Option<Refusal>,
    /// Versions this gateway rolled back after they failed requests; a
    /// desired state naming one is refused.
    #[serde(default)]
    pub rejected: Vec<Rejected>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PluginReport {
    /// The version serving requests.
    pub active: Option<String>,
    /// The sha256 of the active bundle, when it came from the store.
    pub sha256: Option<String>,
    pub previous: Option<String>,
    /// The version desired state asks for, if it names the plugin.
    pub desired: Option<String>,
    #[serde(default)]
    pub health: Health,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Refusal {
    /// The desired-state topic, or `runtime` for a version rolled back.
    pub topic: String,
    pub sequence: Option<u64>,
    pub reason: String,
    pub at: f64,
}

/// `{"gateway": ID, "online": BOOL}`, retained on `.../status`; the
/// offline one is the connection's last will.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Status {
    pub gateway: String,
    pub online: bool,
}

pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
