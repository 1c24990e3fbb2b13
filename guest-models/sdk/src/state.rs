//! A plugin's state between calls. A component instance runs one call at a
//! time on one thread, so a `thread_local!` `RefCell` is the natural home;
//! these helpers take away the boilerplate.
//!
//! ```ignore
//! thread_local! { static STATE: RefCell<Option<MyState>> = const { RefCell::new(None) }; }
//! gatehouse_sdk::state::set(&STATE, my_state);                 // in init
//! gatehouse_sdk::state::with(&STATE, |s| s.model.invoke(...))  // in process
//! ```

use std::cell::RefCell;
use std::thread::LocalKey;

use crate::PluginError;

/// Store the state (in `init`).
pub fn set<T: 'static>(key: &'static LocalKey<RefCell<Option<T>>>, value: T) {
    key.with(|s| *s.borrow_mut() = Some(value));
}

/// Use the state, or fail with `not-initialized` before `init` succeeded.
pub fn with<T: 'static, R>(
    key: &'static LocalKey<RefCell<Option<T>>>,
    f: impl FnOnce(&mut T) -> Result<R, PluginError>,
) -> Result<R, PluginError> {
    key.with(|s| match s.borrow_mut().as_mut() {
        Some(v) => f(v),
        None => Err(PluginError::NotInitialized),
    })
}

/// Read from the state if there is one (for `stats`).
pub fn peek<T: 'static, R: Default>(
    key: &'static LocalKey<RefCell<Option<T>>>,
    f: impl FnOnce(&T) -> R,
) -> R {
    key.with(|s| s.borrow().as_ref().map(f).unwrap_or_default())
}
