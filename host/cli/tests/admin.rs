//! The admin API under stress: clients that crowd it, trickle their
//! headers or bodies, send bodies past the limits or garbage; TLS with a
//! certificate; a token file replaced while the gateway runs. After each,
//! the API still answers.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use crate::common::gateway::{Daemon, Kit, TOKEN, http};

fn addr(d: &Daemon) -> String {
    d.url
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .to_string()
}

/// Reads until the server closes the connection (or `limit` passes), and
/// returns what it sent.
fn until_closed(mut s: TcpStream, limit: Duration) -> std::io::Result<String> {
    s.set_read_timeout(Some(limit))?;
    let mut got = Vec::new();
    s.read_to_end(&mut got)?;
    Ok(String::from_utf8_lossy(&got).into_owned())
}

#[test]
fn crowding_and_trickling_clients_are_cut_off_and_others_are_served() {
    let kit = Kit::new("admin-crowd");
    let d = Daemon::start_with(
        &kit,
        None,
        &[
            "--admin-max-connections",
            "4",
            "--admin-header-timeout-ms",
            "1000",
        ],
    );
    // Four connections fill every slot: two say nothing, two trickle
    // half a request's headers and stop.
    let mut held = Vec::new();
    for i in 0..4 {
        let mut s = TcpStream::connect(addr(&d)).expect("connect");
        if i % 2 == 1 {
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
        }
        held.push(s);
    }
    // A well-behaved client still gets its answer: the held connections are
    // closed when their time for headers runs out, freeing their slots.
    let _ = http();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let r = client
        .get(format!("{}/healthz", d.url))
        .send()
        .expect("served once a slot is free");
    assert_eq!(r.status().as_u16(), 200);
    for s in held {
        // Closed by the server (no request line ever completed), not by us.
        let got = until_closed(s, Duration::from_secs(30)).expect("closed, not timed out");
        assert!(!got.contains("200 OK"), "{got}");
    }
}

#[test]
fn a_body_sent_too_slowly_is_answered_408() {
    let kit = Kit::new("admin-slow-body");
    let d = Daemon::start_with(&kit, None, &["--admin-request-timeout-s", "1"]);
    let mut s = TcpStream::connect(addr(&d)).expect("connect");
    // Headers promise a body of 1000 bytes; 10 arrive.
    write!(
        s,
        "POST /v1/plugins/kws/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 1000\r\n\r\n0123456789"
    )
    .unwrap();
    let got = until_closed(s, Duration::from_secs(30)).expect("an answer");
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    let (status, _) = d.call("GET", "/v1/plugins", Some(TOKEN), vec![]);
    assert_eq!(status, 200);
}

#[test]
fn bodies_past_each_route_limit_are_refused_with_413() {
    let kit = Kit::new("admin-limits");
    let d = Daemon::start(&kit, None);
    // An input past 32 MiB, and a JSON request past 64 KiB.
    let (status, v) = d.call(
        "POST",
        "/v1/plugins/kws/infer",
        Some(TOKEN),
        vec![0u8; (32 << 20) + 1],
    );
    assert_eq!(status, 413, "{v}");
    let big_json = format!("{{\"oci\": \"{}\"}}", "x".repeat(70_000));
    let (status, v) = d.call("POST", "/v1/plugins", Some(TOKEN), big_json.into_bytes());
    assert_eq!(status, 413, "{v}");
    let (status, _) = d.call("GET", "/v1/plugins", Some(TOKEN), vec![]);
    assert_eq!(status, 200);
}

/// Bytes that differ with the seed.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn garbage_bodies_get_clear_errors_and_change_nothing() {
    let kit = Kit::new("admin-garbage");
    let d = Daemon::start(&kit, None);
    let bundle = std::fs::read(kit.kws("1.0.0")).unwrap();
    let (status, v) = d.put(&bundle, "kws");
    assert_eq!(status, 200, "{v}");
    let routes = [
        ("PUT", "/v1/plugins/kws"),
        ("POST", "/v1/plugins"),
        ("POST", "/v1/plugins/kws/infer"),
        ("POST", "/v1/plugins/kws/rollback"),
    ];
    for seed in 0..60u64 {
        // Random bytes, a corrupted real bundle, and truncated JSON.
        let body = match seed % 3 {
            0 => noise((seed as usize * 97) % 5000, seed),
            1 => {
                let mut b = bundle.clone();
                let at = (seed as usize * 7919) % b.len();
                b[at] ^= 0x5a;
                b.truncate(b.len() - (seed as usize % 700));
                b
            }
            _ => br#"{"oci": "oci://127.0.0.1:1/x:1", "force": tr"#.to_vec(),
        };
        for (method, path) in routes {
            let (status, v) = d.call(method, path, Some(TOKEN), body.clone());
            assert!(
                (400..500).contains(&status) && v.get("error").is_some(),
                "{method} {path} seed {seed}: {status} {v}"
            );
        }
    }
    // Nothing changed: the same version serves and answers.
    assert_eq!(d.versions("kws").0.as_deref(), Some("1.0.0"));
    let wav = std::fs::read(kit.path("yes.wav")).unwrap();
    assert_eq!(d.infer_label("kws", &wav).1, "yes");
}

#[test]
fn a_replaced_token_file_takes_effect_without_a_restart() {
    let kit = Kit::new("admin-token");
    let d = Daemon::start(&kit, None);
    let (status, _) = d.call("GET", "/v1/plugins", Some(TOKEN), vec![]);
    assert_eq!(status, 200);
    let new = "rotated-token-fedcba9876543210";
    // Written aside and renamed in, as an operator's tooling would.
    std::fs::write(kit.dir.join("token.new"), format!("{new}\n")).unwrap();
    std::fs::rename(kit.dir.join("token.new"), kit.dir.join("token")).unwrap();
    let (status, _) = d.call("GET", "/v1/plugins", Some(TOKEN), vec![]);
    assert_eq!(status, 401, "the old token is revoked");
    let (status, _) = d.call("GET", "/v1/plugins", Some(new), vec![]);
    assert_eq!(status, 200, "the new token works");
    assert!(d.log().contains("admin token replaced"), "{}", d.log());
}

#[test]
fn tls_with_a_certificate_and_nothing_in_the_clear() {
    let kit = Kit::new("admin-tls");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("a certificate");
    std::fs::write(kit.dir.join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(kit.dir.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    let d = Daemon::start_with(
        &kit,
        None,
        &[
            "--tls-cert",
            &kit.path("cert.pem"),
            "--tls-key",
            &kit.path("key.pem"),
        ],
    );
    assert!(d.url.starts_with("https://"), "{}", d.url);
    let _ = http();
    let client = reqwest::blocking::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).expect("pem"),
        )
        .build()
        .unwrap();
    let r = client
        .get(format!("{}/v1/plugins", d.url))
        .bearer_auth(TOKEN)
        .send()
        .expect("https");
    assert_eq!(r.status().as_u16(), 200);
    // The same port does not speak plain HTTP.
    let plain = format!("http://{}/healthz", addr(&d));
    assert!(http().get(plain).send().is_err());
}
