//! `gatehouse serve`: the gateway daemon.
//!
//! - `--store DIR --trust DIR --admin ADDR --token-file F`: serves the last
//!   known-good set of signed bundles from the store and takes new ones over
//!   the admin API (see `gateway`).
//! - `--plugins DIR`: deploys every plugin in DIR, then watches it: a new or
//!   changed `.wasm` replaces the running version of that plugin in place.
//!   The unsigned path for development.
//!
//! - `--config gateway.toml`: MQTT routes (see `mqtt::routes`): sensor
//!   messages from a broker (`--mqtt`, or an embedded one) to plugins, and
//!   their results back.
//!
//! With `--replay`, requests come from a replay of the sample data (the
//! default with `--plugins` and no routes).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use gatehouse_runtime::{DeploySpec, Expect, InputKind, Policy, Registry, SelfTest};
use notify::Watcher as _;
use serde::Deserialize;

use super::Context;
use crate::gateway::metrics::Metrics;
use crate::gateway::{Gateway, admin, auth::TokenFile, listener};
use crate::output::inference_json;
use gatehouse_ota::{Faults, GatewayPolicy, Store, TrustStore};

#[derive(clap::Args)]
pub struct Args {
    /// Folder of plugin components (`*.wasm`), watched for new versions (unsigned; for development).
    #[arg(long, required_unless_present = "store")]
    plugins: Option<PathBuf>,
    /// The plugin store: signed bundles and which version of each plugin is active.
    #[arg(long, requires = "trust")]
    store: Option<PathBuf>,
    /// Folder of trusted vendor keys (`*.pub`); only bundles they signed are deployed.
    #[arg(long, requires = "store")]
    trust: Option<PathBuf>,
    /// Serve the admin API on this address (loopback unless you say otherwise).
    #[arg(long, num_args = 0..=1, default_missing_value = "127.0.0.1:7878", requires_all = ["store", "token_file"])]
    admin: Option<std::net::SocketAddr>,
    /// File holding the admin API's bearer token (at least 16 characters).
    /// Replacing the file replaces the token, without a restart.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Serve the admin API over TLS with this PEM certificate chain...
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// ...and this PEM private key.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Admin connections served at once; more wait until one ends.
    #[arg(long, default_value_t = 64)]
    admin_max_connections: usize,
    /// Time a client has to send a request's headers (or finish TLS).
    #[arg(long, default_value_t = 10_000)]
    admin_header_timeout_ms: u64,
    /// Time within which every admin request, body included, is answered.
    #[arg(long, default_value_t = 120)]
    admin_request_timeout_s: u64,
    /// The most memory a bundle may ask for.
    #[arg(long, default_value_t = 256)]
    max_memory_mib: u32,
    /// The most tensor memory a bundle may ask for.
    #[arg(long, default_value_t = 256)]
    max_tensor_memory_mib: u32,
    /// The longest per-call deadline a bundle may ask for.
    #[arg(long, default_value_t = 10_000)]
    max_deadline_ms: u32,
    /// Capabilities granted to bundles that ask for them (comma-separated:
    /// `state`). None by default: a bundle asking for one is refused.
    #[arg(long, value_delimiter = ',', value_parser = capability)]
    allow_capabilities: Vec<String>,
    /// The largest `state` directory a bundle may ask for, in KiB.
    #[arg(long, default_value_t = 64 << 10)]
    max_state_kib: u32,
    /// Sample data to replay as requests (kws/ WAVs, images/ PNGs, anomaly/ .bin);
    /// default examples/data with --plugins, none with --store.
    #[arg(long)]
    replay: Option<PathBuf>,
    /// Pause between replay rounds.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// A file must stay unchanged this long before it is deployed.
    #[arg(long, default_value_t = 300)]
    settle_ms: u64,
    /// Stop after this long (default: run until interrupted).
    #[arg(long)]
    duration_s: Option<f64>,
    /// Pin the daemon's threads, round robin, to these cores (`1`, `0,2`,
    /// `2-3`). Inference runs on them, so other services keep the rest.
    #[arg(long, value_parser = crate::pinning::parse_cores)]
    pin_cores: Option<crate::pinning::Cores>,
    #[command(flatten)]
    batching: super::BatchArgs,
    /// Streams (devices of a route with `stream = N`) that hold an instance
    /// of their own, per plugin; a new stream beyond takes the instance of
    /// the one idle longest, whose state is lost (and counted).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    max_streams: u32,
    /// The gateway config: MQTT routes from topics to plugins (`[[route]]`).
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    mqtt: crate::mqtt::MqttArgs,
}

/// `<stem>.selftest.json` beside a plugin: `{"input": "path", "label": "yes"}`.
#[derive(Deserialize)]
struct SelfTestFile {
    input: PathBuf,
    label: Option<String>,
}

fn is_plugin_file(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "wasm")
        && !p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

fn spec_for(wasm: &Path) -> anyhow::Result<DeploySpec> {
    let sidecar = wasm.with_extension("selftest.json");
    let self_test = if sidecar.is_file() {
        let t: SelfTestFile = serde_json::from_slice(&std::fs::read(&sidecar)?)
            .with_context(|| format!("reading {}", sidecar.display()))?;
        let input_path = if t.input.is_relative() {
            wasm.parent().unwrap_or(Path::new(".")).join(&t.input)
        } else {
            t.input
        };
        let input = std::fs::read(&input_path)
            .with_context(|| format!("reading {}", input_path.display()))?;
        Some(SelfTest {
            input,
            expect: t.label.map(Expect::Label).unwrap_or(Expect::Success),
        })
    } else {
        None
    };
    Ok(DeploySpec {
        self_test,
        ..DeploySpec::default()
    })
}

async fn deploy_file(reg: Arc<Registry>, path: PathBuf) {
    let shown = path.display().to_string();
    let result =
        tokio::task::spawn_blocking(move || -> anyhow::Result<gatehouse_runtime::Deployed> {
            let wasm =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            Ok(reg.deploy(&wasm, &path.display().to_string(), spec_for(&path)?)?)
        })
        .await;
    match result {
        Ok(Ok(d)) => match d.replaced {
            Some(old) => tracing::info!("{shown}: {old} replaced by {} in {:?}", d.id, d.took),
            None => tracing::info!("{shown}: {} deployed in {:?}", d.id, d.took),
        },
        Ok(Err(e)) => tracing::error!("{shown}: not deployed, the running version stays: {e:#}"),
        Err(e) => tracing::error!("{shown}: deploy task failed: {e}"),
    }
}

fn size_and_mtime(p: &Path) -> Option<(u64, SystemTime)> {
    let m = std::fs::metadata(p).ok()?;
    Some((m.len(), m.modified().ok()?))
}

/// Sample inputs per input kind.
fn replay_inputs(dir: &Path) -> HashMap<&'static str, Vec<PathBuf>> {
    let list = |sub: &str, ext: &str| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join(sub))
            .map(|r| {
                r.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == ext))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    HashMap::from([
        (InputKind::Wav.as_str(), list("kws", "wav")),
        (InputKind::Image.as_str(), list("images", "png")),
        (InputKind::LogMel.as_str(), list("anomaly", "bin")),
    ])
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<()> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(cores) = &a.pin_cores {
        builder.on_thread_start(crate::pinning::pinner(cores.clone())?);
        tracing::info!(cores = ?cores.0, "threads pinned");
    }
    let rt = builder.build().context("starting tokio")?;
    rt.block_on(serve(ctx, a))
}

async fn serve(ctx: &Context, a: Args) -> anyhow::Result<()> {
    let config = match &a.config {
        Some(path) => Some(crate::mqtt::routes::GatewayConfig::load(path)?),
        None => None,
    };
    let threads = config.as_ref().and_then(|c| c.threads);
    let reg = Arc::new(Registry::new(
        ctx.runtime_with((a.max_memory_mib as usize) << 20, threads)?,
        Policy {
            pool_size: 2,
            batching: a.batching.policy()?,
            streams: a.max_streams as usize,
            ..Policy::default()
        },
    ));
    tracing::info!(
        "{} kernels, {} thread(s) per inference",
        reg.runtime().kernels().name,
        reg.runtime().threads()
    );
    let metrics = Arc::new(Metrics::new());
    let routes = match (&config, &a.config) {
        (Some(c), Some(path)) => c
            .routes()
            .with_context(|| format!("in {}", path.display()))?,
        _ => Vec::new(),
    };
    let gateway = match (&a.store, &a.trust) {
        (Some(store), Some(trust)) => {
            Some(start_gateway(&a, store, trust, reg.clone(), metrics.clone()).await?)
        }
        _ => None,
    };
    if let (Some(addr), Some(gw)) = (a.admin, &gateway) {
        let token_file = a
            .token_file
            .as_deref()
            .context("--admin needs --token-file")?;
        let tokens = TokenFile::open(token_file).map_err(anyhow::Error::msg)?;
        let tls = match (&a.tls_cert, &a.tls_key) {
            (Some(cert), Some(key)) => Some(listener::tls_config(cert, key)?),
            _ => None,
        };
        if !addr.ip().is_loopback() {
            tracing::warn!("the admin API listens on {addr}, beyond this machine");
            if tls.is_none() {
                tracing::warn!("the admin API is not encrypted: give --tls-cert and --tls-key");
            }
        }
        let bound_listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the admin API to {addr}"))?;
        let bound = bound_listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!("admin API listening on {scheme}://{bound}");
        let app = admin::router(
            gw.clone(),
            tokens,
            Duration::from_secs(a.admin_request_timeout_s),
        );
        let limits = listener::ConnectionLimits {
            max_connections: a.admin_max_connections,
            header_timeout: Duration::from_millis(a.admin_header_timeout_ms),
        };
        tokio::spawn(async move {
            if let Err(e) = listener::serve(bound_listener, app, tls, limits).await {
                tracing::error!("admin API stopped: {e}");
            }
        });
    }
    let watcher = match &a.plugins {
        Some(dir) => Some(watch_folder(reg.clone(), dir, a.settle_ms).await?),
        None => None,
    };
    // A gateway with a store on a broker is steered by the fleet's desired state.
    let fleet = match &gateway {
        Some(gw) if a.mqtt.mqtt.is_some() || !routes.is_empty() => {
            let kernels = gatehouse_kernels::dispatch::from_env()?.name.to_string();
            Some(crate::fleet::agent::Agent::new(
                a.mqtt.gateway_id(),
                a.mqtt.groups.clone(),
                gw.clone(),
                kernels,
            )?)
        }
        _ => None,
    };
    if !routes.is_empty() || fleet.is_some() {
        let (reg, gw) = (reg.clone(), gateway.clone());
        // A stream's pieces go to its own instance; other messages are
        // requests like any other (batched, pooled, counted by the gateway).
        let infer: crate::mqtt::Infer =
            Arc::new(move |plugin, stream, input| match (stream, &gw) {
                (Some(s), Some(gw)) => gw.infer_stream(plugin, s, input),
                (Some(s), None) => reg.infer_stream(plugin, s, input),
                (None, Some(gw)) => gw.infer(plugin, input),
                (None, None) => reg.infer(plugin, input),
            });
        let control = fleet
            .as_ref()
            .map(|(agent, _)| agent.clone() as Arc<dyn crate::mqtt::Control>);
        let client =
            crate::mqtt::start(&a.mqtt, routes.clone(), infer, metrics.clone(), control).await?;
        if let Some((agent, rx)) = fleet {
            let every = Duration::try_from_secs_f64(a.mqtt.report_interval_s)
                .ok()
                .filter(|d| !d.is_zero())
                .context("--report-interval-s: a positive number of seconds")?;
            tokio::spawn(agent.run(client, rx, every));
        }
    }
    let replay = a.replay.clone().or_else(|| {
        (a.plugins.is_some() && routes.is_empty()).then(|| PathBuf::from("examples/data"))
    });
    let deadline = a
        .duration_s
        .map(|s| tokio::time::Instant::now() + Duration::from_secs_f64(s));
    match replay {
        Some(dir) => replay_loop(&reg, gateway.as_ref(), &dir, a.interval_ms, deadline).await,
        None => wait(deadline).await,
    }
    drop(watcher);
    Ok(())
}

async fn start_gateway(
    a: &Args,
    store: &Path,
    trust: &Path,
    reg: Arc<Registry>,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Arc<Gateway>> {
    let faults = Faults::from_env().map_err(anyhow::Error::msg)?;
    let store = Store::open(store, faults)
        .with_context(|| format!("opening the store {}", store.display()))?;
    let trust = TrustStore::load(trust)
        .with_context(|| format!("reading the trust folder {}", trust.display()))?;
    if trust.is_empty() {
        tracing::warn!("the trust folder has no keys (*.pub): no bundle will be accepted");
    }
    let policy = GatewayPolicy {
        max_memory_mib: a.max_memory_mib,
        max_tensor_memory_mib: a.max_tensor_memory_mib,
        max_deadline_ms: a.max_deadline_ms,
        max_state_kib: a.max_state_kib,
        capabilities: a.allow_capabilities.clone(),
    };
    let gw = Gateway::new(reg, store, trust, policy, metrics);
    let restoring = gw.clone();
    tokio::task::spawn_blocking(move || restoring.restore())
        .await
        .context("restoring the store")?;
    Ok(gw)
}

/// A capability the runtime knows, or the list of those it does.
fn capability(s: &str) -> Result<String, String> {
    if gatehouse_ota::CAPABILITIES.contains(&s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "unknown capability {s:?}; known: {}",
            gatehouse_ota::CAPABILITIES.join(", ")
        ))
    }
}

/// Until the deadline or Ctrl-C.
async fn wait(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::select! {
            _ = tokio::time::sleep_until(d) => {}
            _ = tokio::signal::ctrl_c() => {}
        },
        None => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn watch_folder(
    reg: Arc<Registry>,
    dir: &Path,
    settle_ms: u64,
) -> anyhow::Result<notify::RecommendedWatcher> {
    let mut initial: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_plugin_file(p))
        .collect();
    initial.sort();
    for p in initial {
        deploy_file(reg.clone(), p).await;
    }

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res
            && matches!(
                ev.kind,
                notify::EventKind::Create(_) | notify::EventKind::Modify(_)
            )
        {
            for p in ev.paths {
                let _ = tx.send(p);
            }
        }
    })
    .context("starting the folder watcher")?;
    watcher
        .watch(dir, notify::RecursiveMode::NonRecursive)
        .with_context(|| format!("watching {}", dir.display()))?;

    // A changed file is deployed once it has stopped changing for `settle`.
    let settle = Duration::from_millis(settle_ms);
    let reg_w = reg.clone();
    tokio::spawn(async move {
        let mut pending: HashMap<PathBuf, (Option<(u64, SystemTime)>, tokio::time::Instant)> =
            HashMap::new();
        let mut tick = tokio::time::interval(settle / 3 + Duration::from_millis(1));
        loop {
            tokio::select! {
                Some(p) = rx.recv() => {
                    if is_plugin_file(&p) {
                        pending.insert(p.clone(), (size_and_mtime(&p), tokio::time::Instant::now()));
                    }
                }
                _ = tick.tick() => {
                    let now = tokio::time::Instant::now();
                    let ready: Vec<PathBuf> = pending.iter().filter(|(_, (_, at))| now.duration_since(*at) >= settle).map(|(p, _)| p.clone()).collect();
                    for p in ready {
                        let (seen, _) = pending.remove(&p).unwrap_or((None, now));
                        let current = size_and_mtime(&p);
                        if current.is_none() {
                            continue; // removed or renamed away
                        }
                        if current != seen {
                            pending.insert(p, (current, now)); // still being written
                            continue;
                        }
                        deploy_file(reg_w.clone(), p).await;
                    }
                }
            }
        }
    });

    Ok(watcher)
}

async fn replay_loop(
    reg: &Arc<Registry>,
    gateway: Option<&Arc<Gateway>>,
    dir: &Path,
    interval_ms: u64,
    deadline: Option<tokio::time::Instant>,
) {
    let inputs = replay_inputs(dir);
    let mut round = 0usize;
    loop {
        for st in reg.list() {
            let Some(d) = reg.active(&st.name) else {
                continue;
            };
            let Some(files) = d
                .plugin()
                .descriptor()
                .input_kinds
                .iter()
                .find_map(|k| inputs.get(k.as_str()).filter(|v| !v.is_empty()))
            else {
                continue;
            };
            let file = files[round % files.len()].clone();
            let (reg, gw, name) = (reg.clone(), gateway.cloned(), st.name.clone());
            let shown = file.file_name().map(|n| n.to_string_lossy().into_owned());
            let res = tokio::task::spawn_blocking(move || {
                let b = std::fs::read(&file)?;
                Ok::<_, anyhow::Error>(match gw {
                    Some(gw) => gw.infer(&name, &b)?,
                    None => reg.infer(&name, &b)?,
                })
            })
            .await;
            match res {
                Ok(Ok(s)) => println!("{}", inference_json(&s.id, shown.as_deref(), &s.inference)),
                Ok(Err(e)) => tracing::error!("{e:#}"),
                Err(e) => tracing::error!("request task failed: {e}"),
            }
        }
        round += 1;
        let pause = tokio::time::sleep(Duration::from_millis(interval_ms));
        tokio::select! {
            _ = pause => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            break;
        }
    }
}
