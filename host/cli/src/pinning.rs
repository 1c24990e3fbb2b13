//! `serve --pin-cores`: keeping the daemon's threads on chosen cores, as a
//! gateway's deployment checklist asks, so the sensor drivers and the
//! operator's other services keep theirs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Core numbers, as `--pin-cores` takes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cores(pub Vec<usize>);

/// Parses `2`, `0,2` or `1-3` (and mixes: `0,2-3`) into core numbers.
pub fn parse_cores(s: &str) -> Result<Cores, String> {
    let mut cores = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |t: &str| {
            t.trim()
                .parse::<usize>()
                .map_err(|_| format!("{t:?} is not a core number"))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(format!("{part:?}: the range runs backwards"));
                }
                cores.extend(a..=b);
            }
            None => cores.push(num(part)?),
        }
    }
    if cores.is_empty() {
        return Err("no cores given".into());
    }
    cores.sort_unstable();
    cores.dedup();
    Ok(Cores(cores))
}

/// A thread-start hook that pins each new thread to the next of `cores` in
/// turn. Fails at once if a core is not one this process may run on.
pub fn pinner(Cores(cores): Cores) -> anyhow::Result<impl Fn() + Send + Sync + 'static> {
    let available: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    if let Some(missing) = cores.iter().find(|c| !available.contains(c)) {
        anyhow::bail!("core {missing} is not available to this process (it may use {available:?})");
    }
    let next = Arc::new(AtomicUsize::new(0));
    Ok(move || {
        let core = cores[next.fetch_add(1, Ordering::Relaxed) % cores.len()];
        if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
            tracing::warn!(core, "could not pin a thread to its core");
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_lists_parse() {
        assert_eq!(parse_cores("2").unwrap().0, vec![2]);
        assert_eq!(parse_cores("0,2-3").unwrap().0, vec![0, 2, 3]);
        assert_eq!(parse_cores(" 3 , 1 ,1").unwrap().0, vec![1, 3]);
        assert!(parse_cores("").is_err());
        assert!(parse_cores("3-1").unwrap_err().contains("backwards"));
        assert!(parse_cores("a").unwrap_err().contains("not a core"));
    }

    #[test]
    fn threads_started_with_the_hook_run_only_on_their_core() {
        let hook = pinner(Cores(vec![0])).unwrap();
        let allowed = std::thread::spawn(move || {
            hook();
            std::fs::read_to_string("/proc/thread-self/status")
                .unwrap()
                .lines()
                .find_map(|l| {
                    l.strip_prefix("Cpus_allowed_list:")
                        .map(|v| v.trim().to_string())
                })
        })
        .join()
        .unwrap();
        assert_eq!(allowed.as_deref(), Some("0"));
    }

    #[test]
    fn a_core_the_machine_lacks_is_refused() {
        let err = pinner(Cores(vec![100_000])).err().unwrap().to_string();
        assert!(err.contains("core 100000 is not available"), "{err}");
    }
}
