//! Clients of a gateway's admin API and of OCI registries: `deploy`,
//! `plugins`, `push`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde_json::Value;

/// Where the gateway is and how to prove we may change it.
#[derive(clap::Args)]
pub struct Target {
    /// The gateway's admin API.
    #[arg(
        long = "to",
        env = "GATEHOUSE_ADMIN_URL",
        default_value = "http://127.0.0.1:7878"
    )]
    url: String,
    /// File holding the admin bearer token.
    #[arg(long, env = "GATEHOUSE_TOKEN_FILE")]
    token_file: PathBuf,
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Target {
    fn client(&self) -> anyhow::Result<Client> {
        gatehouse_ota::oci::install_tls_provider();
        let token = std::fs::read_to_string(&self.token_file)
            .with_context(|| format!("reading {}", self.token_file.display()))?;
        Ok(Client {
            http: reqwest::Client::builder().build()?,
            base: self.url.trim_end_matches('/').to_string(),
            token: token.trim().to_string(),
        })
    }
}

impl Client {
    async fn send(&self, method: reqwest::Method, path: &str, body: Body) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut req = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(&self.token);
        req = match body {
            Body::None => req,
            Body::Bytes(b) => req
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(b),
            Body::Json(v) => req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(&v)?),
        };
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if !status.is_success() {
            let msg = value
                .get("error")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| value.to_string());
            bail!("{method} {url}: {status}: {msg}");
        }
        Ok(value)
    }
}

enum Body {
    None,
    Bytes(Vec<u8>),
    Json(Value),
}

fn block_on<T>(f: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting tokio")?
        .block_on(f)
}

#[derive(clap::Args)]
pub struct DeployArgs {
    /// A bundle file, or `oci://HOST:PORT/REPO:TAG`, which the gateway pulls itself.
    bundle: String,
    #[command(flatten)]
    target: Target,
    /// Deploy even an older version (a deliberate downgrade) or a reused version number.
    #[arg(long)]
    force: bool,
}

pub fn deploy(a: DeployArgs) -> anyhow::Result<()> {
    let client = a.target.client()?;
    let out = if a.bundle.starts_with("oci://") {
        let body = serde_json::json!({"oci": a.bundle, "force": a.force});
        block_on(client.send(reqwest::Method::POST, "/v1/plugins", Body::Json(body)))?
    } else {
        let bytes = std::fs::read(&a.bundle).with_context(|| format!("reading {}", a.bundle))?;
        // The name only addresses the request; the gateway verifies everything.
        let name = manifest_of(&bytes)?.name;
        let path = format!("/v1/plugins/{name}?force={}", a.force);
        block_on(client.send(reqwest::Method::PUT, &path, Body::Bytes(bytes)))?
    };
    println!("{out}");
    Ok(())
}

fn manifest_of(bundle: &[u8]) -> anyhow::Result<gatehouse_ota::Manifest> {
    let b = gatehouse_ota::Bundle::parse(bundle)?;
    let text = std::str::from_utf8(b.manifest_bytes()).context("manifest is not UTF-8")?;
    Ok(gatehouse_ota::Manifest::parse(text)?)
}

#[derive(clap::Subcommand)]
pub enum PluginsCommand {
    /// What each plugin serves and what the store holds.
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Serve the previous version again.
    Rollback {
        name: String,
        #[command(flatten)]
        target: Target,
    },
    /// Stop serving a plugin and forget it.
    Remove {
        name: String,
        #[command(flatten)]
        target: Target,
    },
}

pub fn plugins(c: PluginsCommand) -> anyhow::Result<()> {
    let (target, method, path) = match &c {
        PluginsCommand::List { target } => {
            (target, reqwest::Method::GET, "/v1/plugins".to_string())
        }
        PluginsCommand::Rollback { name, target } => (
            target,
            reqwest::Method::POST,
            format!("/v1/plugins/{name}/rollback"),
        ),
        PluginsCommand::Remove { name, target } => (
            target,
            reqwest::Method::DELETE,
            format!("/v1/plugins/{name}"),
        ),
    };
    let client = target.client()?;
    let out = block_on(client.send(method, &path, Body::None))?;
    match (&c, out.get("plugins").and_then(Value::as_array)) {
        (PluginsCommand::List { .. }, Some(list)) => {
            for p in list {
                println!("{p}");
            }
        }
        _ => println!("{out}"),
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct PushArgs {
    /// The bundle file.
    bundle: PathBuf,
    /// `oci://HOST:PORT/REPO:TAG`
    reference: String,
}

pub fn push(a: PushArgs) -> anyhow::Result<()> {
    let bytes = read(&a.bundle)?;
    let bundle = gatehouse_ota::Bundle::parse(&bytes)?;
    let m = manifest_of(&bytes)?;
    let url = block_on(async { Ok(gatehouse_ota::oci::push(&bundle, &a.reference).await?) })?;
    println!("{} pushed to {} ({url})", m.id(), a.reference);
    Ok(())
}

fn read(p: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("reading {}", p.display()))
}
