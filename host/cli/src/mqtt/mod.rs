//! The gateway on the wire: sensor messages from an MQTT broker to the
//! plugins their routes name, and the results back to the broker.
//!
//! - The broker is `--mqtt mqtt://HOST:PORT` (or `mqtts://`), or, with none
//!   given, an embedded one ([`broker`]) on `--mqtt-listen`.
//! - Subscriptions are QoS 1 in a persistent session (clean start off, a
//!   session that outlives a day offline): what comes while the gateway or
//!   its connection is away waits in the broker (in its persistence file
//!   across a broker restart). Results are QoS 1, kept by the client until
//!   the broker has them, across reconnects. So a broker restart loses no
//!   result of a message it had accepted.
//! - Messages are acknowledged as they are taken, in the order they came,
//!   as MQTT requires (§4.6; rumqttd drops a client that acknowledges out
//!   of order). Acknowledging after the answer would hold every later
//!   message behind the slowest plugin, stalling the other routes; the
//!   price is that a gateway that dies loses what its queues held.
//! - Each route has a bounded queue ([`dispatch`]); when it is full the
//!   oldest message is dropped and counted, and the connection never waits
//!   for a plugin.
//! - `--share-group NAME` subscribes as `$share/NAME/<filter>`, so several
//!   gateways split one stream.

pub mod broker;
mod dispatch;
pub mod routes;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use gatehouse_runtime::Served;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Filter, Packet, SubscribeReasonCode};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};

use crate::gateway::metrics::Metrics;
use routes::Route;

/// How a message is answered: the plugin, the stream (if the route names
/// one) and the payload. The daemon gives the registry (or the gateway,
/// which also counts requests).
pub type Infer = Arc<
    dyn Fn(&str, Option<&str>, &[u8]) -> Result<Served, gatehouse_runtime::Error> + Send + Sync,
>;

/// Topics besides the routes', taken by another part of the daemon (the
/// fleet agent), on the same connection.
pub trait Control: Send + Sync + 'static {
    /// Exact topics to subscribe to, never shared. They are subscribed
    /// again on every connection, so that their retained messages come
    /// again after a restart or a lost session.
    fn filters(&self) -> Vec<String>;
    /// What the broker publishes if the connection dies.
    fn last_will(&self) -> Option<rumqttc::v5::mqttbytes::v5::LastWill>;
    /// Each time the connection is up.
    fn connected(&self, client: &AsyncClient);
    /// A message on one of [`Control::filters`]. Must not wait.
    fn take(&self, topic: &str, payload: bytes::Bytes);
}

/// The largest message taken or sent.
const MAX_PACKET: u32 = 8 << 20;

#[derive(clap::Args, Clone, Debug)]
pub struct MqttArgs {
    /// The broker: mqtt://HOST:PORT or mqtts://HOST:PORT. Without it, and
    /// with routes, an embedded broker is started on --mqtt-listen.
    #[arg(long)]
    pub mqtt: Option<String>,
    /// Where the embedded broker listens (MQTT 5; MQTT 3.1.1 on the next port).
    #[arg(long, default_value = "127.0.0.1:1883", conflicts_with = "mqtt")]
    pub mqtt_listen: std::net::SocketAddr,
    /// File with the broker's username on its first line and password on its second.
    #[arg(long, requires = "mqtt")]
    pub mqtt_credentials: Option<PathBuf>,
    /// PEM certificates to trust for mqtts:// instead of the system's.
    #[arg(long, requires = "mqtt")]
    pub mqtt_ca: Option<PathBuf>,
    /// Subscribe as a member of this MQTT 5 shared subscription group
    /// (`$share/NAME/...`), so gateways in the group split the messages.
    #[arg(long)]
    pub share_group: Option<String>,
    /// This gateway's id (its MQTT client id is `gatehouse-<id>`); default the hostname.
    #[arg(long)]
    pub gateway_id: Option<String>,
    /// A fleet group this gateway takes desired state from (repeatable;
    /// an earlier group wins over a later one, the gateway's own over all).
    #[arg(long = "group")]
    pub groups: Vec<String>,
    /// How often the gateway publishes its reported state (with --store).
    #[arg(long, default_value_t = 30.0)]
    pub report_interval_s: f64,
}

impl MqttArgs {
    pub fn gateway_id(&self) -> String {
        self.gateway_id.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "gateway".to_string())
        })
    }
}

/// Where to connect, and how.
struct Endpoint {
    host: String,
    port: u16,
    tls: bool,
}

fn endpoint(url: &str) -> anyhow::Result<Endpoint> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("mqtts://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("mqtt://") {
        (false, r)
    } else {
        bail!("--mqtt {url:?}: use mqtt://HOST:PORT or mqtts://HOST:PORT");
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse()
                .with_context(|| format!("--mqtt {url:?}: port {p:?}"))?,
        ),
        None => (rest, if tls { 8883 } else { 1883 }),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        bail!("--mqtt {url:?}: no host");
    }
    Ok(Endpoint {
        host: host.to_string(),
        port,
        tls,
    })
}

fn credentials(path: &PathBuf) -> anyhow::Result<(String, String)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines();
    match (lines.next(), lines.next()) {
        (Some(u), Some(p)) if !u.trim().is_empty() => Ok((u.trim().into(), p.trim_end().into())),
        _ => bail!(
            "{}: expected the username on the first line and the password on the second",
            path.display()
        ),
    }
}

fn tls_config(ca: Option<&PathBuf>) -> anyhow::Result<rumqttc::TlsConfiguration> {
    use rustls_platform_verifier::BuilderVerifierExt as _;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let config = match ca {
        Some(path) => {
            let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let mut roots = rustls::RootCertStore::empty();
            use rustls_pki_types::pem::PemObject as _;
            for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
                roots
                    .add(cert.with_context(|| format!("a certificate in {}", path.display()))?)
                    .with_context(|| format!("a certificate in {}", path.display()))?;
            }
            if roots.is_empty() {
                bail!("{}: no PEM certificates", path.display());
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => builder
            .with_platform_verifier()
            .context("the system's certificate verifier")?
            .with_no_client_auth(),
    };
    Ok(rumqttc::TlsConfiguration::Rustls(Arc::new(config)))
}

/// A client's options for a broker at `ep`.
fn options(
    ep: &Endpoint,
    client_id: &str,
    credentials_file: Option<&PathBuf>,
    ca: Option<&PathBuf>,
) -> anyhow::Result<MqttOptions> {
    let mut opts = MqttOptions::new(client_id, ep.host.clone(), ep.port);
    opts.set_keep_alive(Duration::from_secs(30))
        .set_max_packet_size(Some(MAX_PACKET));
    // Results are small and answer a waiting device: Nagle's delay with the
    // peer's delayed acknowledgement cost 86 ms per round trip here.
    let mut network = rumqttc::NetworkOptions::new();
    network.set_tcp_nodelay(true);
    opts.set_network_options(network);
    if let Some(path) = credentials_file {
        let (user, pass) = credentials(path)?;
        opts.set_credentials(user, pass);
    }
    if ep.tls {
        opts.set_transport(rumqttc::Transport::Tls(tls_config(ca)?));
    }
    Ok(opts)
}

/// Options for a short-lived client of the broker at `url` (the fleet
/// operator's tools): a clean session.
pub fn client_options(
    url: &str,
    client_id: &str,
    credentials_file: Option<&PathBuf>,
    ca: Option<&PathBuf>,
) -> anyhow::Result<MqttOptions> {
    options(&endpoint(url)?, client_id, credentials_file, ca)
}

/// Connect to the broker (or start the embedded one) and serve `routes`
/// and `control` until the process ends. Returns the client once it is set
/// up; the connection runs on its own task and reconnects by itself.
pub async fn start(
    args: &MqttArgs,
    routes: Vec<Route>,
    infer: Infer,
    metrics: Arc<Metrics>,
    control: Option<Arc<dyn Control>>,
) -> anyhow::Result<AsyncClient> {
    let ep = match &args.mqtt {
        Some(url) => endpoint(url)?,
        None => {
            let listen = args.mqtt_listen;
            let at = tokio::task::spawn_blocking(move || broker::start(listen)).await??;
            Endpoint {
                host: at.ip().to_string(),
                port: at.port(),
                tls: false,
            }
        }
    };
    let gateway_id = args.gateway_id();
    let client_id = format!("gatehouse-{gateway_id}");
    let mut opts = options(
        &ep,
        &client_id,
        args.mqtt_credentials.as_ref(),
        args.mqtt_ca.as_ref(),
    )?;
    opts.set_clean_start(false)
        // The broker keeps the session (subscriptions, unacknowledged
        // messages) for a day of the gateway being away.
        .set_session_expiry_interval(Some(86_400));
    if let Some(will) = control.as_ref().and_then(|c| c.last_will()) {
        opts.set_last_will(will);
    }
    let (client, eventloop) = AsyncClient::new(opts, 256);
    let filters: Vec<String> = routes
        .iter()
        .map(|r| match &args.share_group {
            Some(g) => format!("$share/{g}/{}", r.filter.as_str()),
            None => r.filter.as_str().to_string(),
        })
        .collect();
    let dispatcher =
        dispatch::Dispatcher::start(gateway_id, routes, client.clone(), infer, metrics);
    let scheme = if ep.tls { "mqtts" } else { "mqtt" };
    let control_filters = control.as_ref().map(|c| c.filters()).unwrap_or_default();
    tracing::info!(
        "MQTT: {client_id} connecting to {scheme}://{}:{}, subscribing to {}",
        ep.host,
        ep.port,
        filters
            .iter()
            .chain(&control_filters)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
    let link = Link {
        client: client.clone(),
        filters,
        control,
        control_filters,
        dispatcher,
    };
    tokio::spawn(connection(eventloop, link));
    Ok(client)
}

/// What the connection serves.
struct Link {
    client: AsyncClient,
    filters: Vec<String>,
    control: Option<Arc<dyn Control>>,
    control_filters: Vec<String>,
    dispatcher: dispatch::Dispatcher,
}

impl Link {
    fn take(&self, p: rumqttc::v5::mqttbytes::v5::Publish) {
        if let Some(c) = &self.control
            && self
                .control_filters
                .iter()
                .any(|f| f.as_bytes() == &p.topic[..])
        {
            return c.take(&String::from_utf8_lossy(&p.topic), p.payload);
        }
        self.dispatcher.take(p)
    }

    fn subscribe(&self, filters: Vec<String>) {
        if filters.is_empty() {
            return;
        }
        let client = self.client.clone();
        tokio::spawn(async move {
            let all = filters
                .into_iter()
                .map(|f| Filter::new(f, QoS::AtLeastOnce));
            if let Err(e) = client.subscribe_many(all).await {
                tracing::error!("MQTT: subscribing: {e}");
            }
        });
    }
}

/// The connection's event loop: hands incoming messages to the
/// dispatcher, resubscribes when the broker has no session for us, and
/// reconnects after a failure with a growing pause.
async fn connection(mut eventloop: rumqttc::v5::EventLoop, link: Link) {
    let mut pause = Duration::from_millis(100);
    let mut connected = false;
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::Publish(p))) => link.take(p),
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                pause = Duration::from_millis(100);
                connected = true;
                tracing::info!(session_present = ack.session_present, "MQTT: connected");
                // A session the broker kept has the routes' subscriptions
                // already; the control topics are subscribed again for
                // their retained messages.
                if ack.session_present {
                    tracing::info!("MQTT: subscribed (kept in the broker's session)");
                    link.subscribe(link.control_filters.clone());
                } else {
                    link.subscribe(
                        link.filters
                            .iter()
                            .chain(&link.control_filters)
                            .cloned()
                            .collect(),
                    );
                }
                if let Some(c) = &link.control {
                    c.connected(&link.client);
                }
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                let refused = ack
                    .return_codes
                    .iter()
                    .any(|c| !matches!(c, SubscribeReasonCode::Success(_)));
                if refused {
                    tracing::error!(
                        "MQTT: the broker refused a subscription: {:?}",
                        ack.return_codes
                    );
                } else {
                    tracing::info!("MQTT: subscribed");
                }
            }
            Ok(_) => {}
            Err(e) => {
                if connected {
                    tracing::warn!("MQTT: connection lost ({e}); reconnecting");
                } else {
                    tracing::warn!("MQTT: cannot connect ({e}); retrying in {pause:?}");
                }
                connected = false;
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_addresses_read_as_urls() {
        let e = endpoint("mqtt://127.0.0.1:1884").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.tls), ("127.0.0.1", 1884, false));
        let e = endpoint("mqtts://broker.example").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.tls),
            ("broker.example", 8883, true)
        );
        let e = endpoint("mqtt://[::1]:1883").unwrap();
        assert_eq!(e.host, "::1");
        assert!(endpoint("tcp://x:1").is_err());
        assert!(endpoint("mqtt://x:port").is_err());
    }
}
