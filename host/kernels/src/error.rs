/// Why a kernel refused its parameters or operands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{op}: {reason}")]
pub struct KernelError {
    /// The operator that refused, e.g. `conv2d`.
    pub op: &'static str,
    /// What was wrong, in words an operator can act on.
    pub reason: String,
}

impl KernelError {
    pub fn new(op: &'static str, reason: impl Into<String>) -> Self {
        KernelError {
            op,
            reason: reason.into(),
        }
    }
}

/// Fail with a [`KernelError`] unless `cond` holds.
macro_rules! ensure {
    ($op:expr, $cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::KernelError::new($op, format!($($fmt)+)));
        }
    };
}
pub(crate) use ensure;

/// Check that an operand slice has the length its shape promises. Kernels run
/// this on entry, so a wrong buffer is an error and never an out-of-bounds panic.
pub(crate) fn check_len(
    op: &'static str,
    what: &str,
    got: usize,
    want: usize,
) -> Result<(), KernelError> {
    ensure!(
        op,
        got == want,
        "{what} holds {got} elements, expected {want}"
    );
    Ok(())
}
