//! What the runtime does with each import a plugin may have: the table
//! behind `gatehouse check`, and the stubs for what it does not provide.
//!
//! Imports the host does not provide (`wasi:http`, a vendor's own
//! interface) trap when called, rather than refuse the whole component: a
//! guest may import what it never calls (componentize-js imports `wasi:http`).
//!
//! wasmtime's `define_unknown_imports_as_traps` would do it, but it matches
//! names exactly, so it also stubs the WASI a guest imports at another
//! 0.2.x version than the host's (Rust std's 0.2.6, componentize-py's
//! 0.2.9) and hides the real one. Here the interfaces the host provides are
//! left to the linker's semver matching, and only the rest is stubbed.

use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, ResourceType};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable, IoError};

use super::state::InstanceState;

/// Packages the runtime links, at any version of these majors.
const PROVIDED: &[&str] = &[
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:cli/",
    "wasi:filesystem/",
    "wasi:sockets/",
    "wasi:nn/",
];

/// How the runtime answers an import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// Served in full.
    Granted(&'static str),
    /// Linked, but every call that would reach something fails with a
    /// WASI error the guest can handle.
    Denied(&'static str),
    /// Linked; reaches something only with this capability granted.
    NeedsGrant {
        capability: &'static str,
        what: &'static str,
    },
    /// Not linked: a call traps.
    Missing,
}

/// What the runtime does with the import named `name` (with its version).
pub fn access(name: &str) -> Access {
    if !provided(name) {
        return Access::Missing;
    }
    let iface = name.split('@').next().unwrap_or(name);
    match iface {
        "wasi:cli/stdout" | "wasi:cli/stderr" => {
            Access::Granted("to the operator's log, tagged with the plugin, rate-limited")
        }
        "wasi:cli/stdin" => Access::Granted("empty"),
        "wasi:cli/exit" => Access::Granted("ends the call as a trap"),
        "wasi:cli/environment" => Access::Denied("no environment variables, no arguments"),
        i if i.starts_with("wasi:cli/terminal") => Access::Granted("never a terminal"),
        "wasi:clocks/monotonic-clock" => Access::Granted("waits end at the call's deadline"),
        i if i.starts_with("wasi:clocks/") => Access::Granted("the host's clock"),
        i if i.starts_with("wasi:random/") => Access::Granted("the host's random"),
        i if i.starts_with("wasi:io/") => Access::Granted("streams and polling"),
        i if i.starts_with("wasi:filesystem/") => Access::NeedsGrant {
            capability: "state",
            what: "a private directory at /state; without it, no directory at all",
        },
        i if i.starts_with("wasi:sockets/") => Access::Denied("no network, no name lookup"),
        i if i.starts_with("wasi:nn/") => Access::Granted(
            "TFLite and ONNX models, parsed and run by the sandboxed loader within the plugin's limits",
        ),
        i if i.starts_with("gatehouse:nn/") || i.starts_with("gatehouse:dsp/") => {
            Access::Granted("native kernels, within the tensor quota and deadline")
        }
        _ => Access::Granted("the Gatehouse host"),
    }
}

/// Whether the runtime links this import (an interface name with its
/// version, `wasi:cli/stdout@0.2.9`).
pub(crate) fn provided(name: &str) -> bool {
    if ["gatehouse:nn/", "gatehouse:dsp/", "gatehouse:plugin/"]
        .iter()
        .any(|p| name.starts_with(p))
    {
        return true;
    }
    PROVIDED.iter().any(|p| name.starts_with(p)) && name.contains("@0.2.")
}

/// A trapping definition for every function of every import the runtime
/// does not provide.
pub(crate) fn stub(
    linker: &mut Linker<InstanceState>,
    component: &Component,
    engine: &Engine,
) -> wasmtime::Result<()> {
    for (name, import) in component.component_type().imports(engine) {
        if provided(name) {
            continue;
        }
        match import.ty {
            ComponentItem::ComponentInstance(instance) => {
                let mut linked = linker.instance(name)?;
                for (item, export) in instance.exports(engine) {
                    match export.ty {
                        ComponentItem::ComponentFunc(_) => {
                            let full = format!("{name}#{item}");
                            linked.func_new(item, move |_, _, _, _| {
                                wasmtime::bail!(
                                    "unknown import: `{full}` is not provided by this host"
                                )
                            })?;
                        }
                        ComponentItem::Resource(_) => {
                            linked.resource(item, resource_type(item), |_, _| Ok(()))?
                        }
                        _ => {}
                    }
                }
            }
            ComponentItem::ComponentFunc(_) => {
                let full = name.to_string();
                linker.root().func_new(name, move |_, _, _, _| {
                    wasmtime::bail!("unknown import: `{full}` is not provided by this host")
                })?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// A stubbed interface's resources: `wasi:io`'s, which such interfaces
/// (`wasi:http/types`) `use`, must be the host's own types to link; any
/// other is a type of its own that no call can produce.
fn resource_type(name: &str) -> ResourceType {
    struct Unprovided;
    match name {
        "input-stream" => ResourceType::host::<DynInputStream>(),
        "output-stream" => ResourceType::host::<DynOutputStream>(),
        "pollable" => ResourceType::host::<DynPollable>(),
        "error" => ResourceType::host::<IoError>(),
        _ => ResourceType::host::<Unprovided>(),
    }
}

#[cfg(test)]
mod tests {
    use super::provided;

    #[test]
    fn every_kind_of_import_has_its_answer() {
        use super::{Access, access};
        assert!(matches!(
            access("wasi:cli/stdout@0.2.9"),
            Access::Granted(_)
        ));
        assert!(matches!(
            access("wasi:cli/environment@0.2.6"),
            Access::Denied(_)
        ));
        assert!(matches!(
            access("wasi:sockets/tcp@0.2.12"),
            Access::Denied(_)
        ));
        assert!(matches!(
            access("wasi:filesystem/preopens@0.2.0"),
            Access::NeedsGrant {
                capability: "state",
                ..
            }
        ));
        assert_eq!(access("wasi:http/types@0.2.12"), Access::Missing);
        assert!(matches!(
            access("gatehouse:nn/plan@0.1.0"),
            Access::Granted(_)
        ));
    }

    #[test]
    fn wasi_02_and_gatehouse_are_provided_the_rest_is_not() {
        for yes in [
            "wasi:cli/stdout@0.2.6",
            "wasi:cli/environment@0.2.9",
            "wasi:io/streams@0.2.12",
            "wasi:sockets/tcp@0.2.0",
            "gatehouse:nn/tensors@0.1.0",
            "gatehouse:dsp/audio@0.1.0",
            "wasi:nn/graph@0.2.0-rc-2024-10-28",
        ] {
            assert!(provided(yes), "{yes}");
        }
        for no in [
            "wasi:http/types@0.2.12",
            "wasi:cli/stdout@0.3.0",
            "vendor:thing/x@1.0.0",
            // Models are parsed in the sandbox: a loader component composed
            // into the plugin provides this, never the host.
            "gatehouse:tflite/model@0.1.0",
        ] {
            assert!(!provided(no), "{no}");
        }
    }
}
