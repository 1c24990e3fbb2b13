//! A panic on the host's side of a plugin call, kept to that call.
//!
//! Kernels and host functions check what a plugin asks before they act, so
//! a panic while serving one is a host bug. Wasmtime carries a host
//! function's panic out through the guest's frames to whoever called into
//! the guest; uncaught there, it would take down the gateway thread and
//! every plugin it serves. Caught, it fails the call as a trap does: the
//! instance, whose state the panic may have left half-written, is replaced,
//! and the operator sees the panic's message with the plugin's name.

use std::panic::{AssertUnwindSafe, catch_unwind};

/// `call`, with a panic inside it turned into an error, as a trap is.
pub(super) fn contained<T>(call: impl FnOnce() -> wasmtime::Result<T>) -> wasmtime::Result<T> {
    // Unwind safety: after a panic the caller discards the instance the
    // call was touching, so no half-written state is seen again.
    catch_unwind(AssertUnwindSafe(call)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        Err(wasmtime::Error::msg(format!(
            "the host panicked while serving this call (a host bug): {message}"
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_with_its_message() {
        let r: wasmtime::Result<()> = contained(|| panic!("shape {} of {}", 3, 4));
        let e = format!("{:#}", r.expect_err("the panic is an error"));
        assert!(
            e.contains("host panicked") && e.contains("shape 3 of 4"),
            "{e}"
        );
        let r: wasmtime::Result<()> = contained(|| std::panic::panic_any(7u8));
        assert!(format!("{:#}", r.expect_err("an error")).contains("no message"));
        assert_eq!(contained(|| Ok(5)).expect("passes through"), 5);
    }
}
