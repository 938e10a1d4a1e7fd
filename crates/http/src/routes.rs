//! The route table and the small routes: `/`, health, readiness, `/metrics`, `/info` (the
//! viewer's `/ui/` is in `ui`).

use actix_web::http::header;
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{HttpRequest, HttpResponse, guard, web};
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::state::AppState;
use crate::{access, info, metrics, request_log, ui, v1};

/// Mounts every route of SPEC §3 with its shared headers on an actix `App` or scope.
///
/// Call it inside `App::new().configure(...)`; wrap with [`default_headers`] and
/// [`request_log`] through [`crate::routes::mount`].
pub fn configure(state: AppState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |config: &mut web::ServiceConfig| {
        let public = state.inner.options.public;
        let mut headers = DefaultHeaders::new()
            .add((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
            .add((header::ACCESS_CONTROL_EXPOSE_HEADERS, CORS_EXPOSED_HEADERS))
            .add(("timing-allow-origin", "*"));
        if public {
            headers = headers.add(("x-lazycache-public", "1"));
        }
        let read = || guard::Any(guard::Get()).or(guard::Head());
        config.service(
            web::scope("")
                .app_data(web::Data::new(state))
                .wrap(headers)
                .wrap(from_fn(request_log::log_request))
                .route("/", web::route().guard(read()).to(root))
                .route("/_ah/health", web::route().guard(read()).to(health))
                .route("/healthz", web::route().guard(read()).to(health))
                .route("/readyz", web::route().guard(read()).to(ready))
                .route("/metrics", web::route().guard(read()).to(metrics_text))
                .route("/info", web::route().guard(read()).to(info_json))
                .route("/v1/{tail:.*}", web::route().guard(read()).to(v1::handle))
                .configure(ui::mount)
                .route(
                    "/{tail:.*}",
                    web::route().guard(guard::Options()).to(preflight),
                )
                .default_service(web::to(fallback)),
        );
    }
}

fn not_ready(why: &'static str) -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .insert_header((header::RETRY_AFTER, "1"))
        .content_type("text/plain")
        .body(why)
}

/// Response headers a browser script on another origin may read (SPEC §3's frame headers).
const CORS_EXPOSED_HEADERS: &str = "ETag, Content-Range, Accept-Ranges, Retry-After, \
X-Lazycache-Cache, Server-Timing, X-lazycache-timing-handler-ns, X-lazycache-timing-metadata-ns, \
X-lazycache-timing-extraction-ns, X-lazycache-timing-encode-ns";

/// Request headers a browser script on another origin may send (keys, sizes, conditionals).
const CORS_ALLOWED_HEADERS: &str = "Authorization, X-Api-Key, X-lazycache-output-width, \
X-lazycache-output-height, If-None-Match, If-Range, Range";

/// CORS preflight (and plain OPTIONS) on any path; never needs an API key, as browsers send
/// none with a preflight. Hand-written rather than actix-cors: SPEC §3 wants `*` on every
/// answer, with or without an `Origin` header, which actix-cors does not do.
async fn preflight() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header((header::ALLOW, "GET, HEAD, OPTIONS"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, HEAD, OPTIONS"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, CORS_ALLOWED_HEADERS))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "86400"))
        .finish()
}

async fn root(state: web::Data<AppState>) -> HttpResponse {
    let mut mirrors = Map::new();
    for mirror in state.service().mirrors() {
        mirrors.insert(
            mirror.url().to_string(),
            json!({ "APIPath": { "V1": format!("/v1/{}", mirror.prefix()) } }),
        );
    }
    HttpResponse::Ok().json(Value::Object(mirrors))
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

async fn ready(state: web::Data<AppState>) -> HttpResponse {
    if state.is_ready() {
        HttpResponse::Ok().content_type("text/plain").body("ok")
    } else if state.is_shutting_down() {
        not_ready("shutting down")
    } else {
        not_ready("starting")
    }
}

async fn metrics_text(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Err(refused) = access::check(&request, &state.inner.options.api_keys) {
        return refused.to_response(&request);
    }
    state.service().observe_gauges();
    match metrics::render(&state.inner.registry) {
        Ok(text) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(text),
        Err(error) => ApiError::Internal(error.to_string()).to_response(&request),
    }
}

async fn info_json(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Err(refused) = access::check(&request, &state.inner.options.api_keys) {
        return refused.to_response(&request);
    }
    HttpResponse::Ok().json(info::body(&state.inner.options))
}

async fn fallback(request: HttpRequest) -> HttpResponse {
    let method = request.method();
    if method == actix_web::http::Method::GET || method == actix_web::http::Method::HEAD {
        ApiError::NotFound("no such route".into()).to_response(&request)
    } else {
        ApiError::MethodNotAllowed.to_response(&request)
    }
}
