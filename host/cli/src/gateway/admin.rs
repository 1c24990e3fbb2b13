//! The admin API (axum). Every route but `/healthz` needs the bearer token.
//!
//! | route | does |
//! |---|---|
//! | `GET /healthz` | liveness, no token |
//! | `GET /metrics` | Prometheus text |
//! | `GET /v1/plugins` | what serves and what the store holds |
//! | `POST /v1/plugins` | `{"oci": "oci://…", "force": false}`: pull, verify, deploy |
//! | `PUT /v1/plugins/{name}[?force=true]` | the bundle is the body: verify, store, hot-swap |
//! | `POST /v1/plugins/{name}/rollback` | the previous version again |
//! | `DELETE /v1/plugins/{name}` | stop serving and forget |
//! | `POST /v1/plugins/{name}/infer` | the input file is the body; the plugin's JSON back |
//!
//! Bodies are limited per route: a bundle to [`MAX_BUNDLE_BYTES`], an input
//! to [`MAX_INPUT_BYTES`], anything else to [`MAX_OTHER_BYTES`] (413 past
//! them). Every request must be answered within the request timeout (408
//! past it; work already handed to the gateway, a deploy say, still
//! finishes). Connections are limited by [`super::listener`].

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::json;

use super::auth::{self, TokenFile};
use super::{Gateway, GatewayError};
use crate::output::inference_json;
use gatehouse_ota::Error as Ota;
use gatehouse_ota::bundle::MAX_BUNDLE_BYTES;
use gatehouse_runtime::{Error as Rt, Failure};

/// The largest input `POST /v1/plugins/{name}/infer` takes: more than any
/// sensor file a plugin reads, less than a plugin's default linear memory.
pub const MAX_INPUT_BYTES: usize = 32 << 20;
/// The largest body of any other route (a JSON request).
pub const MAX_OTHER_BYTES: usize = 64 << 10;

pub fn router(gw: Arc<Gateway>, tokens: TokenFile, request_timeout: Duration) -> Router {
    let v1 = Router::new()
        .route("/metrics", get(metrics))
        .route("/v1/plugins", get(list).post(deploy_ref))
        .route(
            "/v1/plugins/{name}",
            put(deploy_body)
                .delete(remove)
                .layer(DefaultBodyLimit::max(MAX_BUNDLE_BYTES)),
        )
        .route("/v1/plugins/{name}/rollback", post(rollback))
        .route(
            "/v1/plugins/{name}/infer",
            post(infer).layer(DefaultBodyLimit::max(MAX_INPUT_BYTES)),
        )
        .layer(axum::middleware::from_fn_with_state(tokens, auth::require));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(v1)
        .layer(DefaultBodyLimit::max(MAX_OTHER_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            request_timeout,
            within,
        ))
        .with_state(gw)
}

/// Answer within `limit` or with 408: a client that sends its body slowly,
/// or a request stuck behind slow work, does not hold the API.
async fn within(
    State(limit): State<Duration>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError(
            StatusCode::REQUEST_TIMEOUT,
            format!("no answer within {limit:?}"),
        )
        .into_response(),
    }
}

struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({"error": self.1}))).into_response()
    }
}

fn status_of(e: &GatewayError) -> StatusCode {
    match e {
        GatewayError::Bundle(b) => match b {
            Ota::Unsigned
            | Ota::BadSignature { .. }
            | Ota::UnknownKey { .. }
            | Ota::DigestMismatch { .. }
            | Ota::Policy { .. } => StatusCode::FORBIDDEN,
            Ota::Malformed(_) | Ota::Manifest(_) => StatusCode::BAD_REQUEST,
            Ota::Downgrade { .. } | Ota::VersionReused { .. } => StatusCode::CONFLICT,
            Ota::Oci { .. } => StatusCode::BAD_GATEWAY,
            e if e.is_disk_full() => StatusCode::INSUFFICIENT_STORAGE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        },
        GatewayError::Runtime(r) => runtime_status(r),
        GatewayError::WrongName { .. } => StatusCode::BAD_REQUEST,
        GatewayError::NoPrevious(_) => StatusCode::CONFLICT,
    }
}

fn runtime_status(e: &Rt) -> StatusCode {
    match e {
        Rt::NotDeployed(_) => StatusCode::NOT_FOUND,
        Rt::DeployRefused { .. } | Rt::Load { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        Rt::Plugin {
            failure: Failure::CircuitOpen(_),
            ..
        } => StatusCode::SERVICE_UNAVAILABLE,
        Rt::Plugin { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<GatewayError> for ApiError {
    fn from(e: GatewayError) -> Self {
        ApiError(status_of(&e), e.to_string())
    }
}

/// Run blocking gateway work (loads, fsyncs, inference) off the reactor.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, GatewayError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(e) => Err(ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("task failed: {e}"),
        )),
    }
}

async fn metrics(State(gw): State<Arc<Gateway>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        gw.encode_metrics(),
    )
        .into_response()
}

async fn list(State(gw): State<Arc<Gateway>>) -> Response {
    axum::Json(json!({"plugins": gw.list()})).into_response()
}

#[derive(Deserialize, Default)]
struct Force {
    #[serde(default)]
    force: bool,
}

/// A request body, or the reason there is none (too large, cut off) as a
/// JSON error like every other.
fn body(b: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    b.map_err(|e| ApiError(e.status(), e.body_text()))
}

async fn deploy_body(
    State(gw): State<Arc<Gateway>>,
    Path(name): Path<String>,
    Query(q): Query<Force>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body(b)?;
    let out = blocking(move || {
        let origin = format!("PUT /v1/plugins/{name}");
        gw.deploy(&body, &origin, Some(&name), q.force)
    })
    .await?;
    log_deploy(&out);
    Ok(axum::Json(out).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeployRef {
    oci: String,
    #[serde(default)]
    force: bool,
}

async fn deploy_ref(
    State(gw): State<Arc<Gateway>>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    // Parsed here rather than by axum's extractor: any content type is
    // taken, and a bad request gets the same JSON error as everything else.
    let req: DeployRef = serde_json::from_slice(&body(b)?).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("expected {{\"oci\": \"oci://HOST/REPO:TAG\", \"force\": false}}: {e}"),
        )
    })?;
    let bytes = gatehouse_ota::oci::pull(&req.oci)
        .await
        .map_err(|e| ApiError::from(GatewayError::from(e)))?;
    let out = blocking(move || gw.deploy(&bytes, &req.oci, None, req.force)).await?;
    log_deploy(&out);
    Ok(axum::Json(out).into_response())
}

fn log_deploy(out: &super::DeployOutcome) {
    match (&out.replaced, out.unchanged) {
        (_, true) => tracing::info!("{}@{} already active", out.plugin, out.version),
        (Some(old), _) => tracing::info!(
            "{}@{old} replaced by {} in {:.1} ms",
            out.plugin,
            out.version,
            out.took_ms
        ),
        (None, _) => tracing::info!(
            "{}@{} deployed in {:.1} ms",
            out.plugin,
            out.version,
            out.took_ms
        ),
    }
}

async fn rollback(
    State(gw): State<Arc<Gateway>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let out = blocking(move || gw.rollback(&name)).await?;
    tracing::info!(
        "{} rolled back to {} by the operator",
        out.plugin,
        out.version
    );
    Ok(axum::Json(out).into_response())
}

async fn remove(
    State(gw): State<Arc<Gateway>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let shown = name.clone();
    blocking(move || gw.remove(&name)).await?;
    tracing::info!("{shown} removed by the operator");
    Ok(axum::Json(json!({"removed": shown})).into_response())
}

async fn infer(
    State(gw): State<Arc<Gateway>>,
    Path(name): Path<String>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body(b)?;
    let served = blocking(move || gw.infer(&name, &body).map_err(GatewayError::from)).await?;
    Ok(axum::Json(inference_json(&served.id, None, &served.inference)).into_response())
}
