//! Fault points, so tests can kill the daemon or fill its disk at each step
//! of a deploy and check what a restart finds.
//!
//! Set by the environment: `GATEHOUSE_FAULT=kill@blob-synced` or
//! `GATEHOUSE_FAULT=enospc@pointer-write`. Unset, every point is a no-op.

use std::str::FromStr;

/// The steps of a deploy, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultPoint {
    /// Half of the bundle blob's temp file written.
    BlobWrite,
    /// The blob's temp file written and fsynced, not yet renamed.
    BlobSynced,
    /// The blob renamed into place; the pointers not yet touched.
    BlobRenamed,
    /// Half of the new pointer file written.
    PointerWrite,
    /// The pointer's temp file written and fsynced, not yet renamed.
    PointerSynced,
    /// The new pointer renamed into place; the version not yet serving.
    PointerRenamed,
    /// The version serving; the deploy call not yet answered.
    Activated,
}

impl FaultPoint {
    pub const ALL: [FaultPoint; 7] = [
        FaultPoint::BlobWrite,
        FaultPoint::BlobSynced,
        FaultPoint::BlobRenamed,
        FaultPoint::PointerWrite,
        FaultPoint::PointerSynced,
        FaultPoint::PointerRenamed,
        FaultPoint::Activated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FaultPoint::BlobWrite => "blob-write",
            FaultPoint::BlobSynced => "blob-synced",
            FaultPoint::BlobRenamed => "blob-renamed",
            FaultPoint::PointerWrite => "pointer-write",
            FaultPoint::PointerSynced => "pointer-synced",
            FaultPoint::PointerRenamed => "pointer-renamed",
            FaultPoint::Activated => "activated",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// SIGKILL the process: no destructor, no flush, like a power cut.
    Kill,
    /// Fail the write with ENOSPC, as a full disk does.
    NoSpace,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults(Option<(FaultAction, FaultPoint)>);

impl FromStr for Faults {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (action, point) = s
            .split_once('@')
            .ok_or_else(|| format!("{s:?}: expected ACTION@POINT"))?;
        let action = match action {
            "kill" => FaultAction::Kill,
            "enospc" => FaultAction::NoSpace,
            a => return Err(format!("unknown fault action {a:?} (kill, enospc)")),
        };
        let point = FaultPoint::ALL
            .into_iter()
            .find(|p| p.as_str() == point)
            .ok_or_else(|| format!("unknown fault point {point:?}"))?;
        Ok(Faults(Some((action, point))))
    }
}

impl Faults {
    pub const NONE: Faults = Faults(None);

    pub fn new(action: FaultAction, point: FaultPoint) -> Faults {
        Faults(Some((action, point)))
    }

    /// `GATEHOUSE_FAULT`, if set.
    pub fn from_env() -> Result<Faults, String> {
        match std::env::var("GATEHOUSE_FAULT") {
            Ok(s) if !s.is_empty() => s.parse(),
            _ => Ok(Faults::NONE),
        }
    }

    /// Called at each point: kills the process, or returns the injected error.
    pub fn hit(&self, at: FaultPoint) -> std::io::Result<()> {
        match self.0 {
            Some((action, point)) if point == at => match action {
                FaultAction::Kill => {
                    tracing::warn!("fault point {}: killing the process", at.as_str());
                    // SAFETY: raising a signal on our own process has no
                    // memory-safety preconditions.
                    unsafe {
                        libc::kill(libc::getpid(), libc::SIGKILL);
                    }
                    // SIGKILL cannot be caught; this line is not reached.
                    std::process::abort()
                }
                FaultAction::NoSpace => Err(std::io::Error::from_raw_os_error(libc::ENOSPC)),
            },
            _ => Ok(()),
        }
    }
}
