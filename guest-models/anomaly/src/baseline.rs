//! What "normal" scores like on this machine, learned on site.
//!
//! A ToyCar score means little alone: every machine, microphone and room
//! shifts it. With the `state` capability the plugin learns the mean and
//! spread of its first `baseline-clips` scores (the machine as installed,
//! presumed healthy) and keeps them in `/state`, so the baseline survives
//! restarts and new versions of the plugin. From then on each clip gets a
//! label: `anomalous` when its score is more than `threshold-sigmas`
//! standard deviations above the baseline's mean, else `normal`.

use std::path::Path;

const FILE: &str = "/state/baseline";
const TEMP: &str = "/state/baseline.tmp";

/// Running mean and variance (Welford), and what makes a clip anomalous.
#[derive(Clone, Debug, PartialEq)]
pub struct Baseline {
    pub clips: u32,
    mean: f64,
    m2: f64,
    learn: u32,
    sigmas: f64,
}

/// How a clip compares with the baseline.
pub enum Verdict {
    /// Still learning: `clips` of the baseline's clips seen.
    Learning { clips: u32 },
    /// `z` standard deviations above (or below) the baseline's mean.
    Judged { z: f64, anomalous: bool },
}

impl Baseline {
    /// The baseline kept in `/state`, or a new one; `None` without the
    /// `state` capability.
    pub fn open(learn: u32, sigmas: f64) -> Option<Baseline> {
        if !Path::new("/state").is_dir() {
            return None;
        }
        let fresh = Baseline {
            clips: 0,
            mean: 0.0,
            m2: 0.0,
            learn,
            sigmas,
        };
        let kept = std::fs::read_to_string(FILE).ok().and_then(|t| {
            let mut f = t.split_whitespace();
            let clips = f.next()?.parse().ok()?;
            let mean = f.next()?.parse().ok()?;
            let m2 = f.next()?.parse().ok()?;
            Some(Baseline {
                clips,
                mean,
                m2,
                ..fresh.clone()
            })
        });
        Some(kept.unwrap_or(fresh))
    }

    /// Learn from `score` while learning, else judge it.
    pub fn observe(&mut self, score: f64) -> Result<Verdict, String> {
        if self.clips < self.learn {
            self.clips += 1;
            let d = score - self.mean;
            self.mean += d / f64::from(self.clips);
            self.m2 += d * (score - self.mean);
            self.save()?;
            return Ok(Verdict::Learning { clips: self.clips });
        }
        let var = if self.clips > 1 {
            self.m2 / f64::from(self.clips - 1)
        } else {
            0.0
        };
        // A machine that scored identically every time has no spread; any
        // rise over its mean is then news.
        let sd = var.sqrt().max(1e-9 * self.mean.abs().max(1.0));
        let z = (score - self.mean) / sd;
        Ok(Verdict::Judged {
            z,
            anomalous: z > self.sigmas,
        })
    }

    /// Write through a temporary file and a rename, so a power cut leaves
    /// the old baseline or the new one, never half of one.
    fn save(&self) -> Result<(), String> {
        let text = format!("{} {:?} {:?}\n", self.clips, self.mean, self.m2);
        std::fs::write(TEMP, text).map_err(|e| format!("writing {TEMP}: {e}"))?;
        std::fs::rename(TEMP, FILE).map_err(|e| format!("renaming {TEMP}: {e}"))
    }
}
