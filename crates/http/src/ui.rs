//! The viewer (SPEC §3 Viewer): one page, its script and its style, embedded in the binary and
//! served under `/ui/` with a strict Content-Security-Policy (no external assets, no inline code).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use crate::access::{self, Shown};
use crate::error::ApiError;
use crate::respond::{if_none_match, not_modified, strong_etag};
use crate::state::AppState;

const INDEX_HTML: &str = include_str!("../ui/index.html");
const APP_JS: &str = include_str!("../ui/app.js");
const STYLE_CSS: &str = include_str!("../ui/style.css");

/// Only the page's own script, style and API calls; images from the API arrive as `blob:` URLs
/// (which only this origin can create: `connect-src blob:` lets it read back what it fetched).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self'; img-src 'self' blob: data:; connect-src 'self' blob:; base-uri 'none'; \
form-action 'none'; frame-ancestors 'none'";

/// Mounts `/ui` (a redirect to `/ui/`) and `/ui/{file}`.
pub fn mount(config: &mut web::ServiceConfig) {
    config
        .route("/ui", web::get().to(redirect_to_page))
        .route("/ui", web::head().to(redirect_to_page))
        .route("/ui/{file:.*}", web::get().to(serve))
        .route("/ui/{file:.*}", web::head().to(serve));
}

/// `/ui` → `/ui/`, keeping the query (the key may be in it), so the page's relative URLs work.
async fn redirect_to_page(request: HttpRequest) -> HttpResponse {
    let query = request.query_string();
    let location = if query.is_empty() {
        "/ui/".to_owned()
    } else {
        format!("/ui/?{query}")
    };
    HttpResponse::MovedPermanently()
        .insert_header((header::LOCATION, location))
        .finish()
}

async fn serve(
    request: HttpRequest,
    file: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let shown = match access::check_allowing_query_key(&request, &state.inner.options.api_keys) {
        Ok(shown) => shown,
        Err(refused) => return refused.to_response(&request),
    };
    let (body, content_type) = match file.as_str() {
        "" | "index.html" => (page(&shown, &state), "text/html; charset=utf-8"),
        "app.js" => (APP_JS.to_owned(), "text/javascript; charset=utf-8"),
        "style.css" => (STYLE_CSS.to_owned(), "text/css; charset=utf-8"),
        _ => {
            return ApiError::NotFound("the viewer has no such file".into()).to_response(&request);
        }
    };
    let etag = strong_etag(&["ui", &body]);
    let unchanged = not_modified(&if_none_match(&request), &etag);
    let mut response = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag))
        // Revalidated each time: a new binary brings a new page under the same URL.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // The key may be in the page's URL: never send it to anyone as a referrer.
        .insert_header((header::REFERRER_POLICY, "no-referrer"));
    if unchanged {
        return response.finish();
    }
    response.content_type(content_type).body(body)
}

/// The page, with the query its script and style need (the key, when it came in the URL: the
/// browser fetches them without headers) and the extensions the server treats as movies.
fn page(shown: &Shown, state: &AppState) -> String {
    let asset_query = match shown {
        Shown::NotInUrl => String::new(),
        Shown::InQuery(key) => format!("?key={}", utf8_percent_encode(key, NON_ALPHANUMERIC)),
    };
    let extensions: Vec<String> = state
        .service()
        .options()
        .movie_extensions
        .iter()
        .map(|extension| utf8_percent_encode(extension, NON_ALPHANUMERIC).to_string())
        .collect();
    INDEX_HTML
        .replace("{{asset_query}}", &asset_query)
        .replace("{{movie_extensions}}", &extensions.join(" "))
}
