//! `gatehouse fleet`: steer gateways through desired state on the broker.
//!
//! - `fleet status`: what every gateway reports.
//! - `fleet desire --gateway ID | --group G --oci REF`: one plugin of one
//!   document.
//! - `fleet rollout --oci REF --gateways A,B,...`: a canary, then waves
//!   twice the size of the last; each wave must serve the version and stay
//!   healthy for a soak time, or the rollout halts there.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::json;

use crate::fleet::desired::{Want, gateway_topic, group_topic};
use crate::fleet::operator::{Operator, want_of};
use crate::fleet::report::Reported;

#[derive(clap::Args)]
pub struct Broker {
    /// The fleet's broker: mqtt://HOST:PORT or mqtts://HOST:PORT.
    #[arg(long)]
    mqtt: String,
    /// File with the broker's username on its first line and password on its second.
    #[arg(long)]
    mqtt_credentials: Option<PathBuf>,
    /// PEM certificates to trust for mqtts:// instead of the system's.
    #[arg(long)]
    mqtt_ca: Option<PathBuf>,
}

#[derive(clap::Subcommand)]
pub enum Command {
    /// Print each gateway's status and reported state, one JSON object per line.
    Status {
        #[command(flatten)]
        broker: Broker,
    },
    /// Set one plugin in one gateway's or group's desired state.
    Desire {
        #[command(flatten)]
        broker: Broker,
        #[arg(long, conflicts_with = "group", required_unless_present = "group")]
        gateway: Option<String>,
        #[arg(long)]
        group: Option<String>,
        /// The signed bundle: its name, version and sha256 are read from it.
        #[arg(long)]
        oci: String,
    },
    /// Roll a bundle out to gateways: a canary first, then waves.
    Rollout {
        #[command(flatten)]
        broker: Broker,
        #[arg(long)]
        oci: String,
        /// The gateways, in rollout order (comma-separated).
        #[arg(long, value_delimiter = ',', required = true)]
        gateways: Vec<String>,
        /// Gateways in the first wave.
        #[arg(long, default_value_t = 1)]
        canary: usize,
        /// How long a wave must stay healthy before the next.
        #[arg(long, default_value_t = 30.0)]
        soak_s: f64,
        /// The largest share of failed requests a wave may have while it soaks.
        #[arg(long, default_value_t = 0.05)]
        max_error_rate: f64,
        /// How long a wave may take to serve the version.
        #[arg(long, default_value_t = 300.0)]
        timeout_s: f64,
    },
}

pub fn run(c: Command) -> anyhow::Result<()> {
    gatehouse_ota::oci::install_tls_provider();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match c {
            Command::Status { broker } => status(&broker).await,
            Command::Desire {
                broker,
                gateway,
                group,
                oci,
            } => {
                let topic = match (&gateway, &group) {
                    (Some(id), _) => gateway_topic(id, "desired"),
                    (None, Some(g)) => group_topic(g),
                    (None, None) => bail!("give --gateway or --group"),
                };
                let (name, want) = want_of(&oci).await?;
                let op = connect(&broker).await?;
                let (_, doc) = op.set(&topic, &name, Some(&want)).await?;
                println!(
                    "{}",
                    json!({"topic": topic, "sequence": doc.sequence, "plugin": name, "version": want.version.to_string(), "sha256": want.sha256})
                );
                Ok(())
            }
            Command::Rollout {
                broker,
                oci,
                gateways,
                canary,
                soak_s,
                max_error_rate,
                timeout_s,
            } => {
                let plan = Plan {
                    canary: canary.max(1),
                    soak: secs(soak_s, "--soak-s")?,
                    timeout: secs(timeout_s, "--timeout-s")?,
                    max_error_rate,
                };
                rollout(&broker, &oci, &gateways, &plan).await
            }
        }
    })
}

fn secs(s: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s).with_context(|| format!("{flag}: a number of seconds"))
}

async fn connect(b: &Broker) -> anyhow::Result<Operator> {
    Operator::connect(&b.mqtt, b.mqtt_credentials.as_ref(), b.mqtt_ca.as_ref()).await
}

async fn status(b: &Broker) -> anyhow::Result<()> {
    let op = connect(b).await?;
    for (id, (reported, status)) in op.gateways() {
        println!(
            "{}",
            json!({"gateway": id, "online": status.map(|s| s.online), "reported": reported})
        );
    }
    Ok(())
}

struct Plan {
    canary: usize,
    soak: Duration,
    timeout: Duration,
    max_error_rate: f64,
}

/// The waves: the canary, then each twice the one before.
fn waves(gateways: &[String], canary: usize) -> Vec<&[String]> {
    let mut out = Vec::new();
    let (mut at, mut size) = (0, canary);
    while at < gateways.len() {
        let end = (at + size).min(gateways.len());
        out.push(&gateways[at..end]);
        at = end;
        size *= 2;
    }
    out
}

/// Where one gateway stands with the version being rolled out.
#[derive(Debug, PartialEq)]
enum Stand {
    Waiting,
    Serving,
    Failed(String),
}

fn stand(r: Option<&Reported>, topic: &str, sequence: u64, plugin: &str, want: &Want) -> Stand {
    let Some(r) = r else {
        return Stand::Waiting;
    };
    if let Some(x) = r.rejected.iter().find(|x| x.sha256 == want.sha256) {
        return Stand::Failed(format!(
            "rolled {}@{} back after failed requests",
            x.plugin, x.version
        ));
    }
    if let Some(f) = &r.last_refusal
        && f.topic == topic
        && f.sequence == Some(sequence)
    {
        return Stand::Failed(format!("refused: {}", f.reason));
    }
    let applied = r.applied.get(topic).is_some_and(|s| *s >= sequence);
    let serving = r
        .plugins
        .get(plugin)
        .is_some_and(|p| p.sha256.as_deref() == Some(want.sha256.as_str()));
    if applied && serving {
        Stand::Serving
    } else {
        Stand::Waiting
    }
}

async fn rollout(b: &Broker, oci: &str, gateways: &[String], plan: &Plan) -> anyhow::Result<()> {
    let (plugin, want) = want_of(oci).await?;
    let op = connect(b).await?;
    let started = std::time::Instant::now();
    for (n, wave) in waves(gateways, plan.canary).into_iter().enumerate() {
        let mut before = BTreeMap::new();
        let mut sequence = BTreeMap::new();
        for id in wave {
            let topic = gateway_topic(id, "desired");
            let (old, doc) = op.set(&topic, &plugin, Some(&want)).await?;
            before.insert(id.clone(), old);
            sequence.insert(id.clone(), doc.sequence);
        }
        let standing = |op: &Operator| -> BTreeMap<String, Stand> {
            wave.iter()
                .map(|id| {
                    let r = op.reported(id).map(|(_, r)| r);
                    let topic = gateway_topic(id, "desired");
                    (
                        id.clone(),
                        stand(r.as_ref(), &topic, sequence[id], &plugin, &want),
                    )
                })
                .collect()
        };
        op.wait(plan.timeout, |op| {
            standing(op).values().all(|s| *s != Stand::Waiting)
        })
        .await;
        let mut failed: Vec<String> = standing(&op)
            .into_iter()
            .filter_map(|(id, s)| match s {
                Stand::Serving => None,
                Stand::Waiting => Some(format!(
                    "{id}: not serving {plugin}@{} within {:?}",
                    want.version, plan.timeout
                )),
                Stand::Failed(why) => Some(format!("{id}: {why}")),
            })
            .collect();
        let mut health = BTreeMap::new();
        if failed.is_empty() {
            health = soak(&op, wave, &plugin, plan.soak).await;
            for id in wave {
                let (requests, errors) = health.get(id).copied().unwrap_or((0, 0));
                let topic = gateway_topic(id, "desired");
                let r = op.reported(id).map(|(_, r)| r);
                match stand(r.as_ref(), &topic, sequence[id], &plugin, &want) {
                    Stand::Serving => {}
                    Stand::Failed(why) => failed.push(format!("{id}: {why}")),
                    Stand::Waiting => {
                        failed.push(format!("{id}: no longer serves {plugin}@{}", want.version))
                    }
                }
                if requests > 0 && errors as f64 > plan.max_error_rate * requests as f64 {
                    failed.push(format!(
                        "{id}: {errors} of {requests} requests failed while soaking"
                    ));
                }
            }
        }
        let took = started.elapsed().as_secs_f64();
        let health_json: BTreeMap<&String, serde_json::Value> = health
            .iter()
            .map(|(id, (r, e))| (id, json!({"requests": r, "errors": e})))
            .collect();
        if failed.is_empty() {
            println!(
                "{}",
                json!({"wave": n, "gateways": wave, "serving": format!("{plugin}@{}", want.version), "soak": health_json, "elapsed_s": took})
            );
            continue;
        }
        // Halt: the wave's documents go back to what they named before.
        for id in wave {
            let topic = gateway_topic(id, "desired");
            let restored = match &before[id] {
                Some(old) => op.put(&topic, old.clone()).await,
                None => op.set(&topic, &plugin, None).await.map(|(_, d)| d),
            };
            if let Err(e) = restored {
                failed.push(format!("{id}: restoring its desired state: {e:#}"));
            }
        }
        println!(
            "{}",
            json!({"wave": n, "gateways": wave, "halted": failed, "soak": health_json, "elapsed_s": took})
        );
        bail!(
            "rollout of {plugin}@{} halted at wave {n}: {}",
            want.version,
            failed.join("; ")
        );
    }
    Ok(())
}

/// Requests and errors of `plugin` on each gateway of `wave`, summed over
/// the reports that arrive within `soak`.
async fn soak(
    op: &Operator,
    wave: &[String],
    plugin: &str,
    soak: Duration,
) -> BTreeMap<String, (u64, u64)> {
    let from = op.reports_seen();
    tokio::time::sleep(soak).await;
    let mut sums: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for r in op.reports_since(from) {
        if wave.contains(&r.gateway)
            && let Some(p) = r.plugins.get(plugin)
        {
            let s = sums.entry(r.gateway.clone()).or_default();
            s.0 += p.health.requests;
            s.1 += p.health.errors;
        }
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waves_double_after_the_canary() {
        let g: Vec<String> = (1..=8).map(|i| format!("gw{i}")).collect();
        let sizes: Vec<usize> = waves(&g, 1).iter().map(|w| w.len()).collect();
        assert_eq!(sizes, [1, 2, 4, 1]);
        let sizes: Vec<usize> = waves(&g, 3).iter().map(|w| w.len()).collect();
        assert_eq!(sizes, [3, 5]);
        assert_eq!(waves(&g[..1], 1).len(), 1);
    }
}
