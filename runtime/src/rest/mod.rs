//! The REST API, compatible with Kafka Connect's: paths, bodies, status
//! codes and error bodies (`{"error_code": 404, "message": "…"}`).
//!
//! This module owns HTTP only: routing, parsing bodies (JSON, as Kafka
//! Connect's clients send them, or YAML), authentication, and turning the
//! [`Herder`]'s answers into Kafka Connect's entities. It knows nothing of
//! Kafka or WebAssembly; every change goes through the herder.

mod body;
mod entities;
mod metrics;
pub mod tls;
mod wording;

use crate::herder::{ConnectorState, Herder, TargetState};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Every route: (method, path), in the OpenAPI document's path syntax. A
/// test checks this table against `openapi.json`, and another that each
/// route answers.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/health"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/connectors"),
    ("POST", "/connectors"),
    ("GET", "/connectors/{name}"),
    ("DELETE", "/connectors/{name}"),
    ("GET", "/connectors/{name}/config"),
    ("PUT", "/connectors/{name}/config"),
    ("PATCH", "/connectors/{name}/config"),
    ("GET", "/connectors/{name}/status"),
    ("GET", "/connectors/{name}/tasks"),
    ("GET", "/connectors/{name}/tasks/{task}/status"),
    ("POST", "/connectors/{name}/restart"),
    ("POST", "/connectors/{name}/tasks/{task}/restart"),
    ("PUT", "/connectors/{name}/pause"),
    ("PUT", "/connectors/{name}/resume"),
    ("PUT", "/connectors/{name}/stop"),
    ("GET", "/connectors/{name}/offsets"),
    ("PATCH", "/connectors/{name}/offsets"),
    ("DELETE", "/connectors/{name}/offsets"),
    ("GET", "/connector-plugins"),
    ("GET", "/connector-plugins/{plugin}/config"),
    ("PUT", "/connector-plugins/{plugin}/config/validate"),
];

/// The OpenAPI document served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// An error response: Kafka Connect's `{"error_code": …, "message": …}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error_code": self.status.as_u16(), "message": self.message});
        (self.status, Json(body)).into_response()
    }
}

type Reply = Result<Response, ApiError>;

/// What the API needs besides the herder.
pub struct Api {
    pub herder: Arc<Herder>,
    /// Required as `Authorization: Bearer <token>` on every endpoint but
    /// `GET /health`. Already resolved; never logged or shown.
    pub token: Option<secrecy::SecretString>,
    /// The Kafka cluster id shown at `GET /`, when known.
    pub kafka_cluster_id: Option<String>,
    /// For the secret counters of `GET /metrics`.
    pub secrets: Option<Arc<crate::secrets::SecretsManager>>,
}

type Shared = Arc<Api>;

/// Runs `f` off the async threads: parsing a body, validating a config and
/// waiting for tasks to drain never hold up another request (`/health`
/// least of all).
async fn blocking<F>(f: F) -> Reply
where
    F: FnOnce() -> Reply + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("request failed: {e}"),
        ))
    })
}

/// The request's `Content-Type`, which says how a body is written.
fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

fn ok(body: Value) -> Reply {
    Ok(Json(body).into_response())
}

fn with_status(status: StatusCode, body: Value) -> Reply {
    Ok((status, Json(body)).into_response())
}

fn empty(status: StatusCode) -> Reply {
    Ok(status.into_response())
}

/// The router with every route of [`ROUTES`].
pub fn router(api: Shared) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .route("/openapi.json", get(openapi))
        .route("/connectors", get(list_connectors).post(create_connector))
        .route(
            "/connectors/{name}",
            get(get_connector).delete(delete_connector),
        )
        .route(
            "/connectors/{name}/config",
            get(get_config).put(put_config).patch(patch_config),
        )
        .route("/connectors/{name}/status", get(connector_status))
        .route("/connectors/{name}/tasks", get(task_configs))
        .route("/connectors/{name}/tasks/{task}/status", get(task_status))
        .route("/connectors/{name}/restart", post(restart_connector))
        .route(
            "/connectors/{name}/tasks/{task}/restart",
            post(restart_task),
        )
        .route("/connectors/{name}/pause", put(pause))
        .route("/connectors/{name}/resume", put(resume))
        .route("/connectors/{name}/stop", put(stop))
        .route(
            "/connectors/{name}/offsets",
            get(get_offsets).patch(alter_offsets).delete(reset_offsets),
        )
        .route("/connector-plugins", get(list_plugins))
        .route("/connector-plugins/{plugin}/config", get(plugin_config))
        .route("/connector-plugins/{plugin}/config/validate", put(validate))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "HTTP 404 Not Found") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "HTTP 405 Method Not Allowed",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            api.clone(),
            authenticate,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(json_errors))
        .layer(axum::middleware::from_fn(log_request))
        .with_state(api)
}

/// Serves the API over plain HTTP on `listener` until the process ends
/// ([`tls::serve`] for HTTPS).
pub async fn serve(listener: tokio::net::TcpListener, api: Shared) -> std::io::Result<()> {
    axum::serve(listener, router(api)).await
}

/// The largest request body the API reads: far above any connector config
/// (whose keys are bounded too, see `config::yaml::MAX_KEYS`). A larger
/// one is answered 413.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Gives every error answer Kafka Connect's JSON body, including those the
/// HTTP framework makes itself (a body over [`MAX_BODY_BYTES`], a path that
/// does not decode); their headers (`Allow`, `WWW-Authenticate`) are kept.
async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        format!("request body is larger than {MAX_BODY_BYTES} bytes (the limit for a request)")
    } else if text.is_empty() {
        format!(
            "HTTP {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or_default()
        )
    } else {
        text
    };
    let mut fresh = ApiError::new(status, message).into_response();
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    parts.headers.remove(axum::http::header::CONTENT_TYPE);
    fresh.headers_mut().extend(parts.headers);
    fresh
}

async fn log_request(req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let response = next.run(req).await;
    tracing::debug!(%method, path, status = response.status().as_u16(), "REST request");
    response
}

/// Checks the bearer token on every request but `GET /health`.
async fn authenticate(State(api): State<Shared>, req: Request, next: Next) -> Response {
    let Some(token) = &api.token else {
        return next.run(req).await;
    };
    if req.method() == Method::GET && req.uri().path() == "/health" {
        return next.run(req).await;
    }
    // RFC 7235: the scheme is case-insensitive.
    let given = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let refusal = match given {
        Some(g)
            if constant_time_eq(
                g.as_bytes(),
                secrecy::ExposeSecret::expose_secret(token).as_bytes(),
            ) =>
        {
            return next.run(req).await;
        }
        Some(_) => "the bearer token is not valid",
        None => "this endpoint needs `Authorization: Bearer <token>` (rest.auth.token)",
    };
    // Every 401 names the scheme it wants (RFC 7235).
    let mut r = ApiError::new(StatusCode::UNAUTHORIZED, refusal).into_response();
    r.headers_mut().insert(
        axum::http::header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer"),
    );
    r
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn root(State(api): State<Shared>) -> Reply {
    ok(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "commit": "",
        "kafka_cluster_id": api.kafka_cluster_id,
    }))
}

async fn health() -> Reply {
    ok(json!({
        "status": "healthy",
        "message": "Worker has completed startup and is ready to handle requests."
    }))
}

async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}

async fn metrics_text(State(api): State<Shared>) -> Response {
    let text = metrics::render(&api.herder, api.secrets.as_deref());
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Values of a repeated query parameter (`?expand=status&expand=info`).
fn query_values(query: &Option<String>, name: &str) -> Vec<String> {
    query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then(|| v.to_owned())
        })
        .collect()
}

fn query_bool(query: &Option<String>, name: &str) -> Result<bool, ApiError> {
    match query_values(query, name).last().map(String::as_str) {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(ApiError::bad_request(format!(
            "`{name}`: expects true or false, got {v:?}"
        ))),
    }
}

async fn list_connectors(State(api): State<Shared>, RawQuery(query): RawQuery) -> Reply {
    let expand = query_values(&query, "expand");
    for e in &expand {
        if e != "status" && e != "info" {
            return Err(ApiError::bad_request(format!(
                "`expand`: expects `status` or `info`, got {e:?}"
            )));
        }
    }
    blocking(move || {
        let h = &api.herder;
        let names = h.connectors();
        if expand.is_empty() {
            return ok(json!(names));
        }
        let mut out = serde_json::Map::new();
        for name in names {
            let mut entry = serde_json::Map::new();
            // A connector deleted meanwhile is left out.
            if expand.iter().any(|e| e == "status") {
                let Ok(s) = h.status(&name) else { continue };
                entry.insert("status".into(), entities::status(&s, h.worker_id()));
            }
            if expand.iter().any(|e| e == "info") {
                let Ok(i) = h.info(&name) else { continue };
                entry.insert("info".into(), entities::info(&i));
            }
            out.insert(name, Value::Object(entry));
        }
        ok(Value::Object(out))
    })
    .await
}

async fn create_connector(State(api): State<Shared>, headers: HeaderMap, body: Bytes) -> Reply {
    blocking(move || {
        let request = body::create_request(content_type(&headers), &body)?;
        let info = api
            .herder
            .create(&request.name, request.config, request.initial_state)?;
        with_status(StatusCode::CREATED, entities::info(&info))
    })
    .await
}

async fn get_connector(State(api): State<Shared>, Path(name): Path<String>) -> Reply {
    blocking(move || ok(entities::info(&api.herder.info(&name)?))).await
}

async fn delete_connector(State(api): State<Shared>, Path(name): Path<String>) -> Reply {
    blocking(move || {
        api.herder.delete(&name)?;
        empty(StatusCode::NO_CONTENT)
    })
    .await
}

async fn get_config(State(api): State<Shared>, Path(name): Path<String>) -> Reply {
    blocking(move || ok(json!(api.herder.config(&name)?))).await
}

async fn put_config(
    State(api): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    blocking(move || {
        let config = body::config_map(content_type(&headers), &body)?;
        if let Some(n) = config.get("name") {
            if n != &name {
                return Err(ApiError::bad_request(format!(
                    "`name`: connector name configuration ({n}) doesn't match connector name in the URL ({name})"
                )));
            }
        }
        let (created, info) = api.herder.put_config(&name, config)?;
        let status = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        with_status(status, entities::info(&info))
    })
    .await
}

async fn patch_config(
    State(api): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    blocking(move || {
        let patch = body::config_patch(content_type(&headers), &body)?;
        ok(entities::info(&api.herder.patch_config(&name, patch)?))
    })
    .await
}

async fn connector_status(State(api): State<Shared>, Path(name): Path<String>) -> Reply {
    blocking(move || {
        ok(entities::status(
            &api.herder.status(&name)?,
            api.herder.worker_id(),
        ))
    })
    .await
}

async fn task_configs(State(api): State<Shared>, Path(name): Path<String>) -> Reply {
    blocking(move || {
        let tasks = api.herder.tasks(&name)?;
        ok(Value::Array(
            tasks
                .into_iter()
                .map(
                    |(id, config)| json!({"id": {"connector": name, "task": id}, "config": config}),
                )
                .collect(),
        ))
    })
    .await
}

/// A task id from the path; anything but a number is no such resource.
fn task_id(raw: &str) -> Result<u32, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "HTTP 404 Not Found"))
}

async fn task_status(
    State(api): State<Shared>,
    Path((name, task)): Path<(String, String)>,
) -> Reply {
    let task = task_id(&task)?;
    blocking(move || {
        let s = api.herder.task_status(&name, task)?;
        ok(entities::task_state(task, &s, api.herder.worker_id()))
    })
    .await
}

async fn restart_connector(
    State(api): State<Shared>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Reply {
    let include_tasks = query_bool(&query, "includeTasks")?;
    let only_failed = query_bool(&query, "onlyFailed")?;
    blocking(move || {
        let restarted = api.herder.restart(&name, include_tasks, only_failed)?;
        if !include_tasks && !only_failed {
            return empty(StatusCode::NO_CONTENT);
        }
        // Kafka Connect answers 202 with the status, the restarted
        // instances marked RESTARTING.
        let mut status = api.herder.status(&name)?;
        for (id, s) in status.tasks.iter_mut() {
            if restarted.contains(id) {
                *s = ConnectorState::Restarting;
            }
        }
        with_status(
            StatusCode::ACCEPTED,
            entities::status(&status, api.herder.worker_id()),
        )
    })
    .await
}

async fn restart_task(
    State(api): State<Shared>,
    Path((name, task)): Path<(String, String)>,
) -> Reply {
    let task = task_id(&task)?;
    blocking(move || {
        api.herder.restart_task(&name, task)?;
        empty(StatusCode::NO_CONTENT)
    })
    .await
}

async fn set_target(api: Shared, name: String, target: TargetState, status: StatusCode) -> Reply {
    blocking(move || {
        api.herder.set_target(&name, target)?;
        empty(status)
    })
    .await
}

async fn pause(State(api): State<Shared>, Path(name): Path<String>) -> Reply {
    set_target(api, name, TargetState::Paused, StatusCode::ACCEPTED).await
}

async fn resume(State(api): State<Shared>, Path(name): Path<String>) -> Reply {
    set_target(api, name, TargetState::Running, StatusCode::ACCEPTED).await
}

async fn stop(State(api): State<Shared>, Path(name): Path<String>) -> Reply {
    set_target(api, name, TargetState::Stopped, StatusCode::NO_CONTENT).await
}

async fn get_offsets(State(api): State<Shared>, Path(name): Path<String>) -> Reply {
    blocking(move || ok(entities::offsets(&api.herder.offsets(&name)?))).await
}

async fn alter_offsets(State(api): State<Shared>, Path(name): Path<String>, body: Bytes) -> Reply {
    blocking(move || {
        let offsets = body::offsets(&body)?;
        api.herder.alter_offsets(&name, &offsets)?;
        ok(json!({"message": "The offsets for this connector have been altered successfully"}))
    })
    .await
}

async fn reset_offsets(State(api): State<Shared>, Path(name): Path<String>) -> Reply {
    blocking(move || {
        api.herder.reset_offsets(&name)?;
        ok(json!({"message": "The offsets for this connector have been reset successfully"}))
    })
    .await
}

async fn list_plugins(State(api): State<Shared>) -> Reply {
    let plugins: Vec<Value> = api
        .herder
        .plugins()
        .iter()
        .map(|d| json!({"class": d.name, "type": d.kind.to_string(), "version": d.version}))
        .collect();
    ok(Value::Array(plugins))
}

async fn plugin_config(State(api): State<Shared>, Path(plugin): Path<String>) -> Reply {
    let d = api.herder.plugin(&plugin)?;
    ok(Value::Array(
        d.keys.iter().map(entities::key_definition).collect(),
    ))
}

async fn validate(
    State(api): State<Shared>,
    Path(plugin): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    blocking(move || {
        let config: BTreeMap<String, String> = body::config_map(content_type(&headers), &body)?;
        ok(entities::validation(&api.herder.validate(&plugin, config)?))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_document_lists_exactly_the_routes() {
        let doc: Value = serde_json::from_str(OPENAPI).unwrap();
        let mut documented: Vec<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, ops)| {
                ops.as_object()
                    .unwrap()
                    .keys()
                    .map(move |m| (m.to_uppercase(), path.clone()))
            })
            .collect();
        documented.sort();
        let mut routes: Vec<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        routes.sort();
        assert_eq!(documented, routes);
    }

    #[test]
    fn repeated_query_parameters_are_all_read() {
        let q = Some("expand=status&expand=info&x".to_owned());
        assert_eq!(query_values(&q, "expand"), vec!["status", "info"]);
        assert!(query_bool(&Some("includeTasks=TRUE".into()), "includeTasks").unwrap());
        assert!(query_bool(&Some("onlyFailed=1".into()), "onlyFailed").is_err());
        assert!(!query_bool(&None, "onlyFailed").unwrap());
    }
}
