//! The embedded broker (rumqttd) a gateway starts when it is given none:
//! MQTT 5 on the address asked for, MQTT 3.1.1 on the next port (most
//! sensors speak 3.1.1; the gateway's own client speaks 5). Loopback unless
//! the operator says otherwise; no authentication, so it says so in the
//! log when it listens beyond this machine.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

/// The largest message the embedded broker takes: a camera still.
const MAX_PAYLOAD: usize = 8 << 20;

fn settings(name: &str, listen: SocketAddr) -> ServerSettings {
    ServerSettings {
        name: name.to_string(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: MAX_PAYLOAD,
            max_inflight_count: 100,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    }
}

/// A free port on `ip`, for a listener asked for on port 0: rumqttd binds
/// in its own threads and does not say which port it got.
fn pick(addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    let l = std::net::TcpListener::bind(addr)
        .with_context(|| format!("the embedded MQTT broker cannot listen on {addr}"))?;
    Ok(l.local_addr()?)
}

/// Start the broker on its own threads and wait until it accepts
/// connections; returns where MQTT 5 clients connect.
pub fn start(listen: SocketAddr) -> anyhow::Result<SocketAddr> {
    let v5 = pick(listen)?;
    let v311 = pick(SocketAddr::new(
        v5.ip(),
        if listen.port() == 0 { 0 } else { v5.port() + 1 },
    ))?;
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: 1024,
            max_outgoing_packet_count: 200,
            // What the broker keeps per topic filter for slow subscribers:
            // three of the largest messages, or some 800 one-second clips.
            // It is resident memory: with 16 MiB segments, four of them,
            // the daemon grew to 231 MB under a load of kws clips.
            max_segment_size: MAX_PAYLOAD,
            max_segment_count: 3,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([("1".to_string(), settings("v311", v311))])),
        v5: Some(HashMap::from([("1".to_string(), settings("v5", v5))])),
        ..Config::default()
    };
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            if let Err(e) = Broker::new(config).start() {
                tracing::error!("the embedded MQTT broker stopped: {e}");
            }
        })?;
    for addr in [v5, v311] {
        let mut tries = 0;
        while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            tries += 1;
            if tries > 50 {
                bail!("the embedded MQTT broker did not start listening on {addr}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    if !v5.ip().is_loopback() {
        tracing::warn!(
            "the embedded MQTT broker listens on {v5} beyond this machine, without authentication"
        );
    }
    tracing::info!(
        "embedded MQTT broker listening on mqtt://{v5} (MQTT 5) and mqtt://{v311} (MQTT 3.1.1)"
    );
    Ok(v5)
}
