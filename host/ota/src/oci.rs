//! Bundles in an OCI registry, in the CNCF wasm artifact layout: config
//! `application/vnd.wasm.config.v0+json`, the component as an
//! `application/wasm` layer, and the signed manifest, its signature and the
//! self-test files as extra layers of their own media types. Pulling puts
//! the bundle back together; it is verified like any other bundle, so the
//! registry is a transport and never trusted.

use std::collections::BTreeMap;

use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::bundle::{Bundle, COMPONENT, MANIFEST, MAX_BUNDLE_BYTES, SIGNATURE};
use crate::manifest::{SELF_TEST_INPUT, SELF_TEST_OUTPUT};
use crate::{Error, sha256_hex};

pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
pub const WASM_MEDIA_TYPE: &str = "application/wasm";

/// Bundle entry ↔ layer media type.
const LAYERS: [(&str, &str); 5] = [
    (COMPONENT, WASM_MEDIA_TYPE),
    (MANIFEST, "application/vnd.gatehouse.manifest.v1+toml"),
    (SIGNATURE, "application/vnd.gatehouse.signature.v1+json"),
    (
        SELF_TEST_INPUT,
        "application/vnd.gatehouse.self-test.input.v1",
    ),
    (
        SELF_TEST_OUTPUT,
        "application/vnd.gatehouse.self-test.output.v1",
    ),
];

/// Parse `oci://HOST[:PORT]/REPO[:TAG|@DIGEST]`.
pub fn parse_reference(s: &str) -> Result<Reference, Error> {
    let bare = s.strip_prefix("oci://").ok_or_else(|| Error::Oci {
        reference: s.into(),
        reason: "must start with oci://".into(),
    })?;
    bare.parse().map_err(|e| Error::Oci {
        reference: s.into(),
        reason: format!("not an image reference: {e}"),
    })
}

/// reqwest takes the process-wide rustls provider; the first caller
/// installs ring. Call before making any HTTPS client.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Loopback registries are spoken to over plain HTTP (a registry on the
/// gateway itself or a test registry); everything else over HTTPS.
fn client_for(reference: &Reference) -> Client {
    install_tls_provider();
    let host = reference.resolve_registry();
    let loopback =
        host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]");
    Client::new(ClientConfig {
        protocol: if loopback {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        ..ClientConfig::default()
    })
}

/// `GATEHOUSE_REGISTRY_USER` / `GATEHOUSE_REGISTRY_PASSWORD`, else anonymous.
fn auth() -> RegistryAuth {
    match (
        std::env::var("GATEHOUSE_REGISTRY_USER"),
        std::env::var("GATEHOUSE_REGISTRY_PASSWORD"),
    ) {
        (Ok(u), Ok(p)) => RegistryAuth::Basic(u, p),
        _ => RegistryAuth::Anonymous,
    }
}

fn oci_err(reference: &str) -> impl Fn(oci_client::errors::OciDistributionError) -> Error + '_ {
    move |e| Error::Oci {
        reference: reference.into(),
        reason: e.to_string(),
    }
}

/// Push a bundle; returns the manifest URL the registry gave.
pub async fn push(bundle: &Bundle, reference: &str) -> Result<String, Error> {
    let r = parse_reference(reference)?;
    let mut layers = Vec::new();
    for (name, data) in bundle.entries() {
        let media = LAYERS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, m)| m.to_string())
            .ok_or_else(|| Error::Malformed(format!("unexpected entry {name}")))?;
        let title = BTreeMap::from([(
            "org.opencontainers.image.title".to_string(),
            name.to_string(),
        )]);
        layers.push(ImageLayer::new(data.to_vec(), media, Some(title)));
    }
    let config = serde_json::json!({
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [format!("sha256:{}", sha256_hex(bundle.component()))],
    });
    let config = Config::new(
        serde_json::to_vec(&config).map_err(|e| Error::Malformed(e.to_string()))?,
        CONFIG_MEDIA_TYPE.to_string(),
        None,
    );
    let resp = client_for(&r)
        .push(&r, &layers, config, &auth(), None)
        .await
        .map_err(oci_err(reference))?;
    Ok(resp.manifest_url)
}

/// Pull a bundle back together. Refuses artifacts over the bundle limit
/// before downloading them.
pub async fn pull(reference: &str) -> Result<Vec<u8>, Error> {
    let r = parse_reference(reference)?;
    let client = client_for(&r);
    let auth = auth();
    let (manifest, _) = client
        .pull_image_manifest(&r, &auth)
        .await
        .map_err(oci_err(reference))?;
    check_layer_sizes(reference, manifest.layers.iter().map(|l| l.size))?;
    let accepted: Vec<&str> = LAYERS.iter().map(|(_, m)| *m).collect();
    let image = client
        .pull(&r, &auth, accepted)
        .await
        .map_err(oci_err(reference))?;
    assemble(
        reference,
        &image.config.media_type,
        image
            .layers
            .into_iter()
            .map(|l| (l.media_type, l.data.to_vec())),
    )
}

/// Refuses an artifact whose layers, as its manifest declares their sizes,
/// add up to more than a bundle may hold: before anything is downloaded.
/// The sizes come from the registry, which is not trusted: negative ones
/// count as nothing, and the sum cannot overflow.
pub fn check_layer_sizes(
    reference: &str,
    sizes: impl IntoIterator<Item = i64>,
) -> Result<(), Error> {
    let total = sizes
        .into_iter()
        .fold(0u64, |sum, s| sum.saturating_add(s.max(0) as u64));
    if total > MAX_BUNDLE_BYTES as u64 {
        return Err(Error::Oci {
            reference: reference.into(),
            reason: format!(
                "{total} bytes of layers is over the {MAX_BUNDLE_BYTES} byte bundle limit"
            ),
        });
    }
    Ok(())
}

/// Puts pulled layers, given as (media type, bytes), back together as a
/// bundle's bytes: the config must be the wasm artifact's, and every layer
/// one of a bundle's entries. The bundle is verified afterwards like any
/// other.
pub fn assemble(
    reference: &str,
    config_media_type: &str,
    layers: impl IntoIterator<Item = (String, Vec<u8>)>,
) -> Result<Vec<u8>, Error> {
    if config_media_type != CONFIG_MEDIA_TYPE {
        return Err(Error::Oci {
            reference: reference.into(),
            reason: format!("config media type {config_media_type} is not {CONFIG_MEDIA_TYPE}"),
        });
    }
    let mut entries = Vec::new();
    for (media_type, data) in layers {
        let name = LAYERS
            .iter()
            .find(|(_, m)| *m == media_type)
            .map(|(n, _)| n.to_string())
            .ok_or_else(|| Error::Oci {
                reference: reference.into(),
                reason: format!("unexpected layer type {media_type}"),
            })?;
        entries.push((name, data));
    }
    Bundle::from_entries(entries)?.to_bytes()
}
