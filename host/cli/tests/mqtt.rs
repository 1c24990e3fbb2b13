//! `gatehouse serve --config gateway.toml`: sensor messages from an MQTT
//! broker to plugins and results back, on the embedded broker (rumqttd) and
//! on a real one (mosquitto, installed by `cargo xtask test`). Each step
//! waits for what it needs, up to a minute, so a slow machine only makes the
//! tests slower.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use crate::common::services::{
    Proc, free_port, mosquitto, serve_subscribed, serve_until, write_config,
};
use crate::common::{root, tmp};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Filter, Packet, PublishProperties};
use rumqttc::v5::{Client, Event, MqttOptions};
use serde_json::Value;

const MINUTE: Duration = Duration::from_secs(60);

/// A folder with copies of the named bundled plugins.
fn plugins(name: &str, which: &[&str]) -> PathBuf {
    let dir = tmp(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for p in which {
        std::fs::copy(
            root().join(format!("target/plugins/{p}.wasm")),
            dir.join(format!("{p}.wasm")),
        )
        .expect("build the plugins first: cargo xtask build-plugins");
    }
    dir
}

fn serve(args: &[&str]) -> Proc {
    serve_subscribed(args)
}

/// A message the test client received.
struct Got {
    topic: String,
    json: Value,
    correlation: Option<Vec<u8>>,
}

/// An MQTT 5 client subscribed to `filters`, and what it receives.
fn client(port: u16, id: &str, filters: &[&str]) -> (Client, Receiver<Got>) {
    let mut opts = MqttOptions::new(id, "127.0.0.1", port);
    opts.set_max_packet_size(Some(8 << 20));
    connect(opts, filters)
}

/// The same with a persistent session, as a results consumer that must not
/// miss any has.
fn persistent_client(port: u16, id: &str, filters: &[&str]) -> (Client, Receiver<Got>) {
    let mut opts = MqttOptions::new(id, "127.0.0.1", port);
    opts.set_max_packet_size(Some(8 << 20))
        .set_clean_start(false)
        .set_session_expiry_interval(Some(3600));
    connect(opts, filters)
}

fn connect(opts: MqttOptions, filters: &[&str]) -> (Client, Receiver<Got>) {
    let (client, mut connection) = Client::new(opts, 64);
    let (tx, rx) = channel();
    let (subscribed_tx, subscribed) = channel();
    std::thread::spawn(move || {
        for event in connection.iter() {
            match event {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let got = Got {
                        topic: String::from_utf8_lossy(&p.topic).into_owned(),
                        json: serde_json::from_slice(&p.payload).unwrap_or(Value::Null),
                        correlation: p
                            .properties
                            .and_then(|pr| pr.correlation_data)
                            .map(|b| b.to_vec()),
                    };
                    if tx.send(got).is_err() {
                        return;
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = subscribed_tx.send(());
                }
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    });
    // A client that only sends subscribes to nothing.
    if !filters.is_empty() {
        client
            .subscribe_many(filters.iter().map(|f| Filter::new(*f, QoS::AtLeastOnce)))
            .unwrap();
        subscribed
            .recv_timeout(MINUTE)
            .expect("the test client subscribed");
    }
    (client, rx)
}

fn next(rx: &Receiver<Got>) -> Got {
    rx.recv_timeout(MINUTE).expect("a message within a minute")
}

/// A "yes" clip from device d1, answered on the kws route's result topic.
fn yes_round_trip(c: &Client, rx: &Receiver<Got>) -> Got {
    c.publish(
        "sensors/d1/audio",
        QoS::AtLeastOnce,
        false,
        wav("synth_yes_en-us.wav"),
    )
    .unwrap();
    let got = next(rx);
    assert_eq!(got.topic, "results/d1/kws");
    assert_eq!(got.json["label"], "yes", "{}", got.json);
    got
}

fn wav(name: &str) -> Vec<u8> {
    std::fs::read(root().join("examples/data/kws").join(name)).unwrap()
}

const KWS_ROUTE: &str = r#"
[[route]]
topic = "sensors/+/audio"
plugin = "kws"
result = "results/{1}/kws"
"#;

#[test]
fn results_come_back_on_the_embedded_broker() {
    let port = free_port();
    let dir = plugins("mqtt-embedded", &["kws"]);
    let config = write_config("mqtt-embedded.toml", KWS_ROUTE);
    let listen = format!("127.0.0.1:{port}");
    let gw = serve(&[
        "--plugins",
        dir.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--mqtt-listen",
        &listen,
        "--gateway-id",
        "embedded",
    ]);
    assert!(
        gw.stderr.lock().unwrap().contains(&format!(
            "embedded MQTT broker listening on mqtt://{listen}"
        )),
        "the log says where the broker listens"
    );
    let (c, rx) = client(port, "test-embedded", &["results/#", "reply/#"]);
    // A result per message, on the route's topic, with its source.
    let got = yes_round_trip(&c, &rx);
    assert_eq!(got.json["plugin"], "kws");
    assert_eq!(got.json["version"], "0.1.0");
    assert_eq!(got.json["topic"], "sensors/d1/audio");
    assert_eq!(got.json["gateway"], "embedded");
    assert!(got.json["ts"].as_f64().unwrap() > 1.7e9, "{}", got.json);
    // MQTT 5 request/response: the answer goes where the message asks,
    // with its correlation data.
    let props = PublishProperties {
        response_topic: Some("reply/me".into()),
        correlation_data: Some(b"req-7".to_vec().into()),
        ..Default::default()
    };
    c.publish_with_properties(
        "sensors/d2/audio",
        QoS::AtLeastOnce,
        false,
        wav("synth_left_en-us.wav"),
        props,
    )
    .unwrap();
    let got = next(&rx);
    assert_eq!(got.topic, "reply/me");
    assert_eq!(got.json["label"], "left");
    assert_eq!(got.correlation.as_deref(), Some(&b"req-7"[..]));
    // A bad input gets its error, named by plugin and version, where its
    // result would go; the gateway goes on.
    c.publish(
        "sensors/d3/audio",
        QoS::AtLeastOnce,
        false,
        b"not a wav".to_vec(),
    )
    .unwrap();
    let got = next(&rx);
    assert_eq!(got.topic, "results/d3/kws");
    let e = got.json["error"].as_str().unwrap_or_default();
    assert!(
        e.contains("kws@0.1.0") && e.contains("not a RIFF/WAVE file"),
        "{}",
        got.json
    );
    c.publish(
        "sensors/d4/audio",
        QoS::AtLeastOnce,
        false,
        wav("synth_yes_en-us.wav"),
    )
    .unwrap();
    assert_eq!(next(&rx).json["label"], "yes");
}

/// Event times of one device's results, once `messages` results came.
/// Each piece in turn to each device's wake topic: the devices' streams interleaved.
fn interleave(c: &Client, pieces: &[&[u8]], devices: &[&str]) {
    for piece in pieces {
        for device in devices {
            c.publish(
                format!("sensors/{device}/wake"),
                QoS::AtLeastOnce,
                false,
                piece.to_vec(),
            )
            .unwrap();
        }
    }
}

fn stream_events(rx: &Receiver<Got>, devices: &[&str], messages: usize) -> Vec<Vec<f64>> {
    let mut events = vec![Vec::new(); devices.len()];
    let mut counts = vec![0; devices.len()];
    let start = Instant::now();
    while counts.iter().any(|&c| c < messages) {
        let got = match rx.recv_timeout(MINUTE.saturating_sub(start.elapsed())) {
            Ok(g) => g,
            Err(RecvTimeoutError::Timeout) => panic!("results so far: {counts:?} of {messages}"),
            Err(e) => panic!("{e}"),
        };
        let i = devices
            .iter()
            .position(|d| got.json["stream"] == *d)
            .unwrap_or_else(|| panic!("a result of no device: {}", got.json));
        assert!(got.json.get("error").is_none(), "{}", got.json);
        counts[i] += 1;
        for e in got.json["events"].as_array().cloned().unwrap_or_default() {
            events[i].push(e["t_s"].as_f64().unwrap());
        }
    }
    events
}

#[test]
fn each_device_stream_keeps_its_own_state() {
    let port = free_port();
    let dir = plugins("mqtt-streams", &["wakeword"]);
    let config = write_config(
        "mqtt-streams.toml",
        r#"
[[route]]
topic = "sensors/+/wake"
plugin = "wakeword"
result = "results/{1}/wake"
stream = 1
queue = 1000
"#,
    );
    let gw = serve(&[
        "--plugins",
        dir.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--mqtt-listen",
        &format!("127.0.0.1:{port}"),
        "--gateway-id",
        "streams",
    ]);
    let (c, rx) = client(port, "test-streams", &["results/#"]);
    // Two devices send the 10 s recording in 4 KiB pieces, interleaved.
    // One instance fed both would see a second RIFF header mid-stream and
    // frames of two recordings mixed; each device must get exactly what the
    // whole file gives (`run_plugins.rs`: "marvin" at 1.408 s and 5.024 s).
    let audio = wav("short_wav_easy10s.wav");
    let pieces: Vec<&[u8]> = audio.chunks(4096).collect();
    interleave(&c, &pieces, &["left", "right"]);
    let events = stream_events(&rx, &["left", "right"], pieces.len());
    assert!(
        !gw.stderr.lock().unwrap().contains("connection lost"),
        "the broker kept the gateway connected (it drops clients that break the protocol):\n{}",
        gw.stderr.lock().unwrap()
    );
    for (device, times) in ["left", "right"].iter().zip(&events) {
        assert_eq!(times.len(), 2, "{device}: {times:?}");
        assert!(
            (times[0] - 1.408).abs() < 1e-9 && (times[1] - 5.024).abs() < 1e-9,
            "{device}: {times:?}"
        );
    }
}

/// Serve `route` from mosquitto on `port` as gateway `id`.
fn serve_on(port: u16, dir: &std::path::Path, config: &std::path::Path, id: &str) -> Proc {
    serve(&[
        "--plugins",
        dir.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--mqtt",
        &format!("mqtt://127.0.0.1:{port}"),
        "--gateway-id",
        id,
    ])
}

const ANOMALY_ROUTE: &str = r#"
[[route]]
topic = "machines/+/logmel"
plugin = "anomaly"
result = "results/{1}/anomaly"
"#;

fn logmel() -> Vec<u8> {
    std::fs::read(root().join("examples/data/anomaly/normal_id_01_00000000_hist_librosa.bin"))
        .unwrap()
}

/// Waits until the broker has routed `n` messages on `machines/...` back
/// to the sender (so it accepted them all).
fn broker_has(rx: &Receiver<Got>, n: usize) {
    let mut seen = 0;
    while seen < n {
        if next(rx).topic.starts_with("machines/") {
            seen += 1;
        }
    }
}

#[test]
fn a_full_queue_drops_the_oldest_and_says_so() {
    let port = free_port();
    let _broker = mosquitto("mosquitto-drops.conf", port, "persistence false\n");
    let dir = plugins("mqtt-drops", &["anomaly"]);
    let config = write_config("mqtt-drops.toml", &format!("{ANOMALY_ROUTE}queue = 1\n"));
    // The gateway subscribes, then goes away; what is sent meanwhile waits
    // in its session and comes all at once when it is back: far more than
    // one waiting place holds while the plugin works on one.
    drop(serve_on(port, &dir, &config, "drops"));
    let (c, rx) = client(port, "test-drops", &["results/#", "machines/#"]);
    let sent = 40;
    for i in 0..sent {
        c.publish(
            format!("machines/m{i}/logmel"),
            QoS::AtLeastOnce,
            false,
            logmel(),
        )
        .unwrap();
    }
    broker_has(&rx, sent);
    let gw = serve_on(port, &dir, &config, "drops");
    // Every message is answered or counted as dropped: the log line per
    // interval gives the count so far ("...; N in all").
    let dropped = |log: &str| -> usize {
        log.lines()
            .filter(|l| l.contains("messages dropped"))
            .filter_map(|l| l.split("; ").nth(1)?.split(' ').next()?.parse().ok())
            .max()
            .unwrap_or(0)
    };
    let mut answered = 0;
    let start = Instant::now();
    while answered + dropped(&gw.stderr.lock().unwrap()) < sent {
        assert!(
            start.elapsed() < MINUTE,
            "{answered} answered:\n{}",
            gw.stderr.lock().unwrap()
        );
        if let Ok(got) = rx.recv_timeout(Duration::from_millis(100)) {
            assert!(got.topic.starts_with("results/"), "{}", got.topic);
            assert!(got.json["score"].as_f64().is_some(), "{}", got.json);
            answered += 1;
        }
    }
    let dropped = dropped(&gw.stderr.lock().unwrap());
    assert!(
        dropped > 0 && answered > 0,
        "{answered} answered, {dropped} dropped"
    );
    assert_eq!(answered + dropped, sent);
    // Nothing more comes: dropped messages were acknowledged, not redelivered.
    assert!(rx.recv_timeout(Duration::from_secs(2)).is_err());
}

/// mosquitto settings that keep sessions and messages in a fresh folder
/// across a restart.
fn persistence(tag: &str) -> String {
    let store = tmp(&format!("mosquitto-{tag}-db"));
    let _ = std::fs::remove_dir_all(&store);
    std::fs::create_dir_all(&store).unwrap();
    // Started as root, mosquitto drops to its own user, which must be able
    // to write its persistence file here.
    std::fs::set_permissions(&store, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    format!(
        "persistence true\npersistence_location {}/\n",
        store.display()
    )
}

#[test]
fn messages_the_broker_accepted_are_answered_across_its_restart() {
    let port = free_port();
    let persist = persistence("restart");
    let broker = mosquitto("mosquitto-restart.conf", port, &persist);
    let dir = plugins("mqtt-restart", &["anomaly"]);
    let config = write_config("mqtt-restart.toml", ANOMALY_ROUTE);
    let (_results, rx) = persistent_client(port, "test-restart-results", &["results/#"]);
    // The gateway's session exists; the gateway is away while messages come.
    drop(serve_on(port, &dir, &config, "restart"));
    let (c, echo) = client(port, "test-restart-sender", &["machines/#"]);
    let sent = 10;
    for i in 0..sent {
        c.publish(
            format!("machines/m{i}/logmel"),
            QoS::AtLeastOnce,
            false,
            logmel(),
        )
        .unwrap();
    }
    broker_has(&echo, sent);
    // The broker restarts (saving its sessions as it stops).
    let mut broker = broker;
    terminate(&mut broker.child);
    drop(broker);
    let _broker = mosquitto("mosquitto-restart.conf", port, &persist);
    // Back, the gateway answers every message the broker had accepted.
    let _gw = serve_on(port, &dir, &config, "restart");
    let mut answered = std::collections::BTreeSet::new();
    while answered.len() < sent {
        let got = next(&rx);
        assert!(got.json["score"].as_f64().is_some(), "{}", got.json);
        answered.insert(got.topic);
    }
}

/// A sender publishes numbered messages without pause while the broker
/// is stopped and started again under it. Every message is answered: what
/// the broker had accepted survives in its persistence file, what the
/// sender had not yet had accepted it sends again after reconnecting, and
/// the gateway's unacknowledged results are sent again by its client.
#[test]
fn a_broker_restart_under_steady_load_loses_no_message() {
    let port = free_port();
    let persist = persistence("load");
    let broker = mosquitto("mosquitto-load.conf", port, &persist);
    let dir = plugins("mqtt-load", &["anomaly"]);
    let config = write_config("mqtt-load.toml", ANOMALY_ROUTE);
    let _gw = serve_on(port, &dir, &config, "load");
    let (_results, rx) = persistent_client(port, "test-load-results", &["results/#"]);
    let (sender, _) = persistent_client(port, "test-load-sender", &[]);
    let sent = 300;
    let sending = std::thread::spawn(move || {
        for i in 0..sent {
            sender
                .publish(
                    format!("machines/m{i}/logmel"),
                    QoS::AtLeastOnce,
                    false,
                    logmel(),
                )
                .unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
        sender
    });
    // Mid-stream, the broker goes away and comes back.
    let mut answered = std::collections::BTreeSet::new();
    while answered.len() < 50 {
        answered.insert(next(&rx).topic);
    }
    let mut broker = broker;
    terminate(&mut broker.child);
    drop(broker);
    let _broker = mosquitto("mosquitto-load.conf", port, &persist);
    let start = Instant::now();
    while answered.len() < sent {
        let got = match rx.recv_timeout(MINUTE.saturating_sub(start.elapsed())) {
            Ok(g) => g,
            Err(_) => {
                let missing: Vec<usize> = (0..sent)
                    .filter(|i| !answered.contains(&format!("results/m{i}/anomaly")))
                    .collect();
                panic!("{} of {sent} answered; missing {missing:?}", answered.len());
            }
        };
        assert!(got.json["score"].as_f64().is_some(), "{}", got.json);
        answered.insert(got.topic);
    }
    let _sender = sending.join().unwrap();
}

/// SIGTERM, so mosquitto saves its persistence file as it stops.
fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

#[test]
fn two_gateways_split_a_shared_subscription_on_mosquitto() {
    let port = free_port();
    let _broker = mosquitto("mosquitto-share.conf", port, "persistence false\n");
    let dir = plugins("mqtt-share", &["kws"]);
    let config = write_config("mqtt-share.toml", KWS_ROUTE);
    let url = format!("mqtt://127.0.0.1:{port}");
    let gateways: Vec<Proc> = ["share-a", "share-b"]
        .iter()
        .map(|id| {
            serve(&[
                "--plugins",
                dir.to_str().unwrap(),
                "--config",
                config.to_str().unwrap(),
                "--mqtt",
                &url,
                "--share-group",
                "line1",
                "--gateway-id",
                id,
            ])
        })
        .collect();
    let (c, rx) = client(port, "test-share", &["results/#"]);
    let sent = 20;
    for i in 0..sent {
        c.publish(
            format!("sensors/d{i}/audio"),
            QoS::AtLeastOnce,
            false,
            wav("synth_yes_en-us.wav"),
        )
        .unwrap();
    }
    let mut by_gateway = std::collections::BTreeMap::<String, usize>::new();
    let mut topics = std::collections::BTreeSet::new();
    for _ in 0..sent {
        let got = next(&rx);
        assert_eq!(got.json["label"], "yes", "{}", got.json);
        assert!(
            topics.insert(got.topic.clone()),
            "{} answered twice",
            got.topic
        );
        *by_gateway
            .entry(got.json["gateway"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert!(
        rx.recv_timeout(Duration::from_secs(2)).is_err(),
        "each message is answered by one gateway only"
    );
    assert_eq!(
        by_gateway.len(),
        2,
        "both gateways took a share: {by_gateway:?}"
    );
    drop(gateways);
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn mqtts_with_a_password_and_nothing_less() {
    // mosquitto: TLS with a password on one port (the gateway's), plain
    // and anonymous on another (the test's devices), one broker.
    let (tls_port, plain_port) = (free_port(), free_port());
    let dir = tmp("mqtts");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("a certificate");
    let path = |f: &str| dir.join(f).to_str().unwrap().to_string();
    std::fs::write(path("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(path("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    let made = Command::new("mosquitto_passwd")
        .args(["-b", "-c", &path("passwd"), "gw", "s3cret-pass"])
        .output()
        .expect("mosquitto_passwd (Debian package mosquitto)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let _broker = mosquitto(
        "mosquitto-tls.conf",
        plain_port,
        &format!(
            "per_listener_settings true\npersistence false\n\
             listener {tls_port} 127.0.0.1\ncertfile {}\nkeyfile {}\n\
             allow_anonymous false\npassword_file {}\n",
            path("cert.pem"),
            path("key.pem"),
            path("passwd")
        ),
    );
    std::fs::write(path("creds"), "gw\ns3cret-pass\n").unwrap();
    std::fs::write(path("wrong"), "gw\nguessed\n").unwrap();
    let plugins = plugins("mqtts-plugins", &["kws"]);
    let config = write_config("mqtts.toml", KWS_ROUTE);
    let url = format!("mqtts://localhost:{tls_port}");
    let args = |creds: &str, ca: &str| -> Vec<String> {
        [
            "--plugins",
            plugins.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
            "--mqtt",
            &url,
            "--mqtt-credentials",
            &path(creds),
            "--mqtt-ca",
            &path(ca),
            "--gateway-id",
            "tls",
        ]
        .map(String::from)
        .to_vec()
    };

    // A wrong password, or a broker whose certificate is not the one
    // trusted, gets no connection.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(path("other.pem"), other.cert.pem()).unwrap();
    for (creds, ca, says) in [
        ("wrong", "cert.pem", "NotAuthorized"),
        ("creds", "other.pem", "invalid peer certificate"),
    ] {
        let a = args(creds, ca);
        let gw = serve_until(&refs(&a), says, |e| e.contains(says));
        assert!(
            !gw.stderr.lock().unwrap().contains("MQTT: connected"),
            "{creds}/{ca}"
        );
    }

    // The right ones: results come back through the TLS connection.
    let a = args("creds", "cert.pem");
    let _gw = serve_subscribed(&refs(&a));
    let (c, rx) = client(plain_port, "test-tls", &["results/#"]);
    yes_round_trip(&c, &rx);
}

/// A field of /proc/PID/status, in KiB.
fn proc_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

#[test]
fn a_flood_leaves_the_daemons_memory_bounded() {
    let port = free_port();
    let _broker = mosquitto("mosquitto-flood.conf", port, "persistence false\n");
    let dir = plugins("mqtt-flood", &["anomaly"]);
    let config = write_config("mqtt-flood.toml", &format!("{ANOMALY_ROUTE}queue = 8\n"));
    let gw = serve_on(port, &dir, &config, "flood");
    let pid = gw.child.id();
    let (c, rx) = client(port, "test-flood", &["results/#"]);
    // Warm: one answered message, so the plugin's instances exist.
    c.publish("machines/warm/logmel", QoS::AtLeastOnce, false, logmel())
        .unwrap();
    assert!(next(&rx).json["score"].as_f64().is_some());
    let before = proc_kib(pid, "VmHWM:");
    // 256 MiB of messages of 256 KiB, as fast as the broker takes them:
    // far beyond what the plugin answers, so the route's queue of 8 is
    // full all along and drops.
    let big = vec![7u8; 256 << 10];
    let sent = 1024;
    for i in 0..sent {
        c.publish(
            format!("machines/m{i}/logmel"),
            QoS::AtLeastOnce,
            false,
            big.clone(),
        )
        .unwrap();
    }
    // Wait until the flood is through: the last message is answered (an
    // error: it is not a log-mel frame) or the drop count covers it.
    let start = Instant::now();
    let mut answered = 0;
    loop {
        if rx.recv_timeout(Duration::from_millis(200)).is_ok() {
            answered += 1;
        }
        let log = gw.stderr.lock().unwrap().clone();
        let dropped: usize = log
            .lines()
            .filter(|l| l.contains("messages dropped"))
            .filter_map(|l| l.split("; ").nth(1)?.split(' ').next()?.parse().ok())
            .max()
            .unwrap_or(0);
        if answered + dropped >= sent {
            break;
        }
        assert!(
            start.elapsed() < 3 * MINUTE,
            "{answered} answered, {dropped} dropped:\n{log}"
        );
    }
    let peak = proc_kib(pid, "VmHWM:");
    eprintln!(
        "gateway peak RSS: {before} KiB before the flood, {peak} KiB after ({answered} answered)"
    );
    // Bounded: the queue holds 2 MiB of it; the rest is buffers, not the flood.
    assert!(
        peak < before + (64 << 10),
        "the peak RSS grew from {before} KiB to {peak} KiB under a 256 MiB flood"
    );
}

#[test]
fn streams_beyond_the_limit_take_the_idlest_instance_and_are_counted() {
    use crate::common::gateway::{Daemon, Kit, TOKEN};
    let kit = Kit::new("mqtt-max-streams");
    let port = free_port();
    let dir = plugins("mqtt-max-streams-plugins", &["wakeword"]);
    let config = write_config(
        "mqtt-max-streams.toml",
        "[[route]]\ntopic = \"sensors/+/wake\"\nplugin = \"wakeword\"\nresult = \"results/{1}/wake\"\nstream = 1\nqueue = 1000\n",
    );
    let listen = format!("127.0.0.1:{port}");
    let d = Daemon::start_with(
        &kit,
        None,
        &[
            "--plugins",
            dir.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
            "--mqtt-listen",
            &listen,
            "--max-streams",
            "1",
        ],
    );
    let start = Instant::now();
    while !d.log().contains("MQTT: subscribed") {
        assert!(start.elapsed() < MINUTE, "{}", d.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let (c, rx) = client(port, "test-max-streams", &["results/#"]);
    // Two devices, one instance: each piece of one takes the instance from
    // the other, so neither keeps its state, and each loss is counted.
    let audio = wav("short_wav_easy10s.wav");
    let pieces: Vec<&[u8]> = audio.chunks(4096).take(4).collect();
    interleave(&c, &pieces, &["left", "right"]);
    for _ in 0..2 * pieces.len() {
        next(&rx);
    }
    let (status, m) = d.call("GET", "/metrics", Some(TOKEN), vec![]);
    assert_eq!(status, 200);
    let text = m.as_str().unwrap().to_string();
    assert!(
        text.contains("gatehouse_stream_instances{plugin=\"wakeword\"} 1"),
        "{text}"
    );
    let dropped: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("gatehouse_streams_dropped{plugin=\"wakeword\"} "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    // The first piece of each device but the very first takes the instance.
    assert!(
        dropped >= (2 * pieces.len() - 1) as u64 - 1,
        "{dropped}: {text}"
    );
    assert!(
        d.log().contains("stream dropped for a new one"),
        "{}",
        d.log()
    );
}
