//! Logging to the host, which tags every line with the plugin's name and version.

use crate::bindings::gatehouse::plugin0_1_0::log::{Level, log};

pub fn error(msg: &str) {
    log(Level::Error, msg);
}

pub fn warn(msg: &str) {
    log(Level::Warn, msg);
}

pub fn info(msg: &str) {
    log(Level::Info, msg);
}

pub fn debug(msg: &str) {
    log(Level::Debug, msg);
}

/// Report panics to the host log before the guest traps, so the operator
/// sees the message and location instead of a bare `unreachable` trap.
/// Idempotent; call it first thing in `init`.
pub fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(|info| error(&format!("panic: {info}")))));
}
