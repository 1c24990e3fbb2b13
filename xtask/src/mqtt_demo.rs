//! The demo's MQTT step: `gatehouse serve` with the embedded broker and
//! `examples/gateway.toml`, a client sending keyword clips and two devices'
//! wake-word audio in pieces, and the results as they come back.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{Client, Event, MqttOptions};

/// A port free now, with the next one free too (the broker's MQTT 3.1.1 listener).
fn free_port() -> Result<u16> {
    for _ in 0..100 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free port pair on loopback")
}

pub fn run(root: &Path, gatehouse: Command) -> Result<()> {
    let plugins = root.join("target/demo-mqtt-plugins");
    let _ = std::fs::remove_dir_all(&plugins);
    std::fs::create_dir_all(&plugins)?;
    for p in ["kws", "wakeword"] {
        std::fs::copy(
            root.join(format!("target/plugins/{p}.wasm")),
            plugins.join(format!("{p}.wasm")),
        )?;
    }
    let port = free_port()?;
    let mut gatehouse = gatehouse;
    gatehouse
        .args(["serve", "--plugins"])
        .arg(&plugins)
        .args(["--config", "examples/gateway.toml", "--mqtt-listen"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["--gateway-id", "demo"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = gatehouse.spawn().context("starting gatehouse serve")?;
    let stderr = child.stderr.take().context("serve's stderr")?;
    let (ready_tx, ready) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("embedded MQTT broker")
                || line.contains("MQTT:")
                || line.contains("WARN")
                || line.contains("ERROR")
            {
                println!(
                    "  serve: {}",
                    line.split_once("  ")
                        .map_or(line.as_str(), |(_, l)| l)
                        .trim()
                );
            }
            if line.contains("MQTT: subscribed") {
                let _ = ready_tx.send(());
            }
        }
    });
    let outcome = exchange(root, port, &ready);
    let _ = child.kill();
    let _ = child.wait();
    outcome
}

fn exchange(root: &Path, port: u16, ready: &std::sync::mpsc::Receiver<()>) -> Result<()> {
    ready
        .recv_timeout(Duration::from_secs(120))
        .context("the gateway did not subscribe within two minutes")?;
    let mut opts = MqttOptions::new("demo-sensors", "127.0.0.1", port);
    opts.set_max_packet_size(Some(8 << 20));
    let (client, mut connection) = Client::new(opts, 64);
    let (tx, results) = channel();
    std::thread::spawn(move || {
        for event in connection.iter() {
            match event {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let body: serde_json::Value =
                        serde_json::from_slice(&p.payload).unwrap_or_default();
                    if tx
                        .send((String::from_utf8_lossy(&p.topic).into_owned(), body))
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    });
    client.subscribe("results/#", QoS::AtLeastOnce)?;
    std::thread::sleep(Duration::from_millis(200));
    let kws = root.join("examples/data/kws");
    let clips = [
        "synth_yes_en-us.wav",
        "synth_left_en-us.wav",
        "synth_stop_en-us.wav",
    ];
    for clip in clips {
        println!("  kitchen sends {clip} to sensors/kitchen/audio");
        client.publish(
            "sensors/kitchen/audio",
            QoS::AtLeastOnce,
            false,
            std::fs::read(kws.join(clip))?,
        )?;
    }
    let audio = std::fs::read(kws.join("short_wav_easy10s.wav"))?;
    let pieces: Vec<&[u8]> = audio.chunks(4096).collect();
    println!(
        "  hall and porch each send short_wav_easy10s.wav in {} pieces of 4 KiB, interleaved, to sensors/<device>/wake",
        pieces.len()
    );
    for piece in &pieces {
        for device in ["hall", "porch"] {
            client.publish(
                format!("sensors/{device}/wake"),
                QoS::AtLeastOnce,
                false,
                piece.to_vec(),
            )?;
        }
    }
    let expected = clips.len() + 2 * pieces.len();
    let start = Instant::now();
    let mut got = 0;
    while got < expected {
        let left = Duration::from_secs(60).saturating_sub(start.elapsed());
        let (topic, body) = results
            .recv_timeout(left)
            .with_context(|| format!("{got} of {expected} results within a minute"))?;
        got += 1;
        let events = body["events"].as_array().map_or(0, Vec::len);
        if body.get("label").is_some() || events > 0 || body.get("error").is_some() {
            let mut shown = body.clone();
            if let Some(o) = shown.as_object_mut() {
                o.remove("scores");
            }
            println!("  {topic} {shown}");
        }
    }
    println!(
        "  {got} results: the wake-word pieces that completed no detection are answered with no events"
    );
    Ok(())
}
