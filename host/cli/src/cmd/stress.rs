//! `gatehouse stress`: an operator's qualification run. Requests flow
//! continuously while the plugin is swapped between two builds N times; the
//! report says whether anything failed, was answered wrong or was lost, and
//! how long swaps took.
//!
//! Every answer is compared with the answer to the same input before the
//! load began, and answers are counted twice: by the threads that receive
//! them, and by the registry where the versions make them (`Status::answered`).
//! A request is lost when one count falls short of the requests sent.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use std::collections::BTreeMap;

use gatehouse_runtime::{BatchStats, DeploySpec, Deployment, InitConfig, Policy, Registry, Served};
use serde_json::json;

use super::Context;

#[derive(clap::Args)]
pub struct Args {
    /// The version deployed first.
    #[arg(long)]
    plugin: PathBuf,
    /// The version swapped to (may be the same file; each swap still deploys).
    #[arg(long)]
    swap_to: PathBuf,
    /// Swaps to perform, alternating B, A, B...
    #[arg(long, default_value_t = 100)]
    swaps: u32,
    /// Request threads.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Requests each thread keeps in flight, as a dispatcher of sensor
    /// messages would. A plugin that takes batches needs more than one in
    /// flight overall to get batches; others run each request on its thread.
    #[arg(long, default_value_t = 1)]
    in_flight: usize,
    /// Least time to keep the load on.
    #[arg(long, default_value_t = 10.0)]
    duration_s: f64,
    /// The request body.
    #[arg(long)]
    input: PathBuf,
    /// Model bytes for `init` (the tflite plugin).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Plugin settings, KEY=VALUE.
    #[arg(long = "set", value_parser = super::run::parse_kv)]
    settings: Vec<(String, String)>,
    #[command(flatten)]
    batching: super::BatchArgs,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<()> {
    let read = |p: &PathBuf| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let (wasm_a, wasm_b, input) = (read(&a.plugin)?, read(&a.swap_to)?, read(&a.input)?);
    let model = a.model.as_ref().map(read).transpose()?;
    let spec = DeploySpec {
        config: InitConfig {
            model,
            settings: a.settings.clone(),
        },
        ..DeploySpec::default()
    };
    let reg = Arc::new(Registry::new(
        ctx.runtime()?,
        Policy {
            pool_size: a.concurrency.max(1),
            batching: a.batching.policy()?,
            ..Policy::default()
        },
    ));
    let first = reg.deploy(&wasm_a, &a.plugin.display().to_string(), spec.clone())?;
    let name = first.id.name.clone();
    // What every answer must be: both builds answer alike.
    let reference = Arc::new(
        reg.infer(&name, &input)
            .context("the plugin fails on the input before any load")?
            .inference,
    );
    let answered_by_versions = |reg: &Registry| {
        reg.list()
            .into_iter()
            .find(|s| s.name == name)
            .map_or(0, |s| s.answered)
    };
    let before_load = answered_by_versions(&reg);
    // Both builds compiled once up front, so swaps measure the cached path.
    reg.runtime().load(
        &wasm_b,
        &a.swap_to.display().to_string(),
        spec.limits.clone(),
    )?;

    let stop = Arc::new(AtomicBool::new(false));
    let (sent, ok, failed, wrong) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let input = Arc::new(input);
    let depth = a.in_flight.max(1);
    let workers: Vec<_> = (0..a.concurrency.max(1))
        .map(|_| {
            let (reg, stop, sent, ok, failed, wrong, input, name, reference) = (
                reg.clone(),
                stop.clone(),
                sent.clone(),
                ok.clone(),
                failed.clone(),
                wrong.clone(),
                input.clone(),
                name.clone(),
                reference.clone(),
            );
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let mut versions = BTreeMap::<String, u64>::new();
                let mut answered = 0u64;
                let mut tally = |t: Instant, r: Result<Served, gatehouse_runtime::Error>| {
                    answered += 1;
                    match r {
                        Ok(served) => {
                            *versions.entry(served.id.version.clone()).or_default() += 1;
                            if served.inference != *reference {
                                wrong.fetch_add(1, Ordering::Relaxed);
                                tracing::warn!(
                                    "{} answered {:?}, not {:?}",
                                    served.id,
                                    served.inference,
                                    reference
                                );
                            }
                            ok.fetch_add(1, Ordering::Relaxed);
                            lat.push(t.elapsed().as_secs_f64() * 1e6);
                        }
                        Err(e) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!("request failed: {e}");
                        }
                    }
                };
                let mut flying = std::collections::VecDeque::with_capacity(depth);
                loop {
                    let stopping = stop.load(Ordering::Relaxed);
                    if depth == 1 && !stopping {
                        // One at a time: the plain call, as a handler would.
                        sent.fetch_add(1, Ordering::Relaxed);
                        let t = Instant::now();
                        tally(t, reg.infer(&name, &input));
                        continue;
                    }
                    while !stopping && flying.len() < depth {
                        sent.fetch_add(1, Ordering::Relaxed);
                        flying.push_back((Instant::now(), reg.submit(&name, &input)));
                    }
                    // Once stopping, what is in flight is still received.
                    let Some((t, pending)) = flying.pop_front() else {
                        break;
                    };
                    tally(t, pending.wait());
                }
                drop(tally);
                (lat, versions, answered)
            })
        })
        .collect();

    let start = Instant::now();
    let duration = Duration::from_secs_f64(a.duration_s.max(0.0));
    let gap = duration / (a.swaps + 1);
    let mut swap_ms = Vec::new();
    let mut batched = BatchStats::default();
    let mut count = |d: &Deployment| {
        if let Some(s) = d.batching() {
            batched.batches += s.batches;
            batched.requests += s.requests;
        }
    };
    for i in 0..a.swaps {
        let due = gap * (i + 1);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        let (wasm, origin) = if i % 2 == 0 {
            (&wasm_b, &a.swap_to)
        } else {
            (&wasm_a, &a.plugin)
        };
        let old = reg.active(&name).context("the plugin vanished")?;
        let t = Instant::now();
        reg.deploy(wasm, &origin.display().to_string(), spec.clone())?;
        // From the deploy call to the new version serving its first request.
        let new = reg.active(&name).context("the plugin vanished")?;
        let served = loop {
            if let Some(at) = new.first_served() {
                break at;
            }
            if t.elapsed() > Duration::from_secs(30) {
                anyhow::bail!("swap {i}: the new version served nothing within 30 s");
            }
            std::thread::sleep(Duration::from_micros(50));
        };
        swap_ms.push(served.duration_since(t).as_secs_f64() * 1e3);
        // Requests still finishing on the old version are not counted.
        count(&old);
    }
    if let Some(rest) = duration.checked_sub(start.elapsed()) {
        std::thread::sleep(rest);
    }
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut versions = BTreeMap::<String, u64>::new();
    let mut answered = 0u64;
    let mut lost_workers = 0;
    for w in workers {
        match w.join() {
            Ok((l, v, n)) => {
                latencies.extend(l);
                answered += n;
                for (version, n) in v {
                    *versions.entry(version).or_default() += n;
                }
            }
            Err(_) => lost_workers += 1,
        }
    }
    if let Some(last) = reg.active(&name) {
        count(&last);
    }
    let made = answered_by_versions(&reg) - before_load;
    let elapsed = start.elapsed().as_secs_f64();
    let (sent, ok, failed, wrong) = (
        sent.load(Ordering::Relaxed),
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        wrong.load(Ordering::Relaxed),
    );
    // Requests either count missed: never received, or never made.
    let dropped = sent.saturating_sub(answered.min(made));
    let report = json!({
        "requests": sent,
        "answered": answered,
        "answered_by_versions": made,
        "ok": ok,
        "failed": failed,
        "wrong": wrong,
        "dropped": dropped,
        "versions": versions,
        "swaps": swap_ms.len(),
        "swap_ms_p50": (percentile(&mut swap_ms, 0.5) * 1000.0).round() / 1000.0,
        "swap_ms_p99": (percentile(&mut swap_ms, 0.99) * 1000.0).round() / 1000.0,
        "latency_us_p50": percentile(&mut latencies, 0.5).round(),
        "latency_us_p99": percentile(&mut latencies, 0.99).round(),
        "per_s": (ok as f64 / elapsed * 10.0).round() / 10.0,
        "mean_batch": (batched.batches > 0)
            .then(|| (batched.requests as f64 / batched.batches as f64 * 100.0).round() / 100.0),
    });
    if a.json {
        println!("{report}");
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    anyhow::ensure!(lost_workers == 0, "{lost_workers} request threads died");
    Ok(())
}
