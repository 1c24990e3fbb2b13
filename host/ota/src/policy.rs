//! What a gateway lets a bundle ask for.

use crate::Error;
use crate::manifest::Manifest;

/// The most a bundle may request. A bundle that asks for more is refused
/// rather than clamped: a plugin tuned for 256 MiB that silently gets 64 fails
/// later, on a sensor reading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayPolicy {
    pub max_memory_mib: u32,
    pub max_tensor_memory_mib: u32,
    pub max_deadline_ms: u32,
    /// The largest `state` directory a bundle may ask for.
    pub max_state_kib: u32,
    /// Capabilities this gateway grants; none by default.
    pub capabilities: Vec<String>,
}

impl Default for GatewayPolicy {
    fn default() -> Self {
        GatewayPolicy {
            max_memory_mib: 256,
            max_tensor_memory_mib: 256,
            max_deadline_ms: 10_000,
            max_state_kib: 64 << 10,
            capabilities: Vec::new(),
        }
    }
}

impl GatewayPolicy {
    pub fn check(&self, m: &Manifest) -> Result<(), Error> {
        let refuse = |reason: String| Error::Policy {
            name: m.name.clone(),
            version: m.version.clone(),
            reason,
        };
        let l = &m.limits;
        for (what, asked, max, unit) in [
            ("memory", l.memory_mib, self.max_memory_mib, "MiB"),
            (
                "tensor memory",
                l.tensor_memory_mib,
                self.max_tensor_memory_mib,
                "MiB",
            ),
            ("deadline", l.deadline_ms, self.max_deadline_ms, "ms"),
        ]
        .into_iter()
        .chain(m.capabilities.iter().any(|c| c == "state").then_some((
            "state",
            l.state_kib,
            self.max_state_kib,
            "KiB",
        ))) {
            if asked > max {
                return Err(refuse(format!(
                    "asks for {asked} {unit} of {what}; the gateway allows {max}"
                )));
            }
        }
        if let Some(c) = m
            .capabilities
            .iter()
            .find(|c| !self.capabilities.contains(c))
        {
            return Err(refuse(format!(
                "asks for capability {c:?}, which this gateway does not grant"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_exceeds_it() {
        let p = GatewayPolicy::default();
        let mut m = Manifest::parse("name = \"a\"\nversion = \"1.0.0\"\n").unwrap();
        p.check(&m).unwrap();
        m.limits.memory_mib = 257;
        assert!(
            p.check(&m)
                .unwrap_err()
                .to_string()
                .contains("257 MiB of memory")
        );
        m.limits.memory_mib = 1;
        m.limits.deadline_ms = 10_001;
        assert!(p.check(&m).unwrap_err().to_string().contains("deadline"));
        m.limits.deadline_ms = 5;
        m.capabilities = vec!["state".into()];
        let e = p.check(&m).unwrap_err().to_string();
        assert!(
            e.contains("capability \"state\"") && e.contains("does not grant"),
            "{e}"
        );
        let p = GatewayPolicy {
            capabilities: vec!["state".into()],
            ..GatewayPolicy::default()
        };
        p.check(&m).unwrap();
        m.limits.state_kib = p.max_state_kib + 1;
        let e = p.check(&m).unwrap_err().to_string();
        assert!(e.contains("KiB of state"), "{e}");
    }
}
