//! A frame request from its URL and headers: the output options come from the query string
//! (`width`, `height`, `fit`, `crop`, `quality`, `depth`, `channels`, `seek`) or, for sizes, go-lazycache's
//! `X-lazycache-output-*` headers; the service validates them.

use std::collections::HashMap;

use actix_web::HttpRequest;
use lazycache_service::{Format, FrameOutput, FrameRequest, FrameSelector, OutputParams, Seek};

use crate::error::ApiError;

/// The request for `selector` as `format`, with the options of `request`.
pub fn frame_request(
    request: &HttpRequest,
    selector: FrameSelector,
    format: Format,
) -> Result<FrameRequest, ApiError> {
    let query = FrameQuery::of(request)?;
    Ok(FrameRequest {
        selector,
        seek: Seek::parse(query.get("seek"))?,
        output: FrameOutput::parse(format, &query.output_params())?,
    })
}

/// A request's query string and sizes, for the frame options every frame route shares.
pub struct FrameQuery {
    query: HashMap<String, String>,
    width: Option<String>,
    height: Option<String>,
}

impl FrameQuery {
    pub fn of(request: &HttpRequest) -> Result<Self, ApiError> {
        let query: HashMap<String, String> =
            actix_web::web::Query::<HashMap<String, String>>::from_query(request.query_string())
                .map(|query| query.into_inner())
                .map_err(|e| ApiError::BadRequest(format!("bad query string: {e}")))?;
        let width = size_text(request, &query, "width");
        let height = size_text(request, &query, "height");
        Ok(Self {
            query,
            width,
            height,
        })
    }

    /// `?name=`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// The frame options as typed (the service validates them).
    pub fn output_params(&self) -> OutputParams<'_> {
        OutputParams {
            width: self.width.as_deref(),
            height: self.height.as_deref(),
            fit: self.get("fit"),
            crop: self.get("crop"),
            quality: self.get("quality"),
            depth: self.get("depth"),
            channels: self.get("channels"),
        }
    }
}

/// `?name=` wins over the `X-lazycache-output-<name>` header.
fn size_text(request: &HttpRequest, query: &HashMap<String, String>, name: &str) -> Option<String> {
    let header = format!("x-lazycache-output-{name}");
    match query.get(name) {
        Some(text) => Some(text.clone()),
        None => request
            .headers()
            .get(header.as_str())
            .map(|value| value.to_str().unwrap_or_default().to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn the_query_wins_over_go_lazycaches_headers() {
        let request = TestRequest::with_uri("/x?width=320&quality=90")
            .insert_header(("x-lazycache-output-width", "640"))
            .insert_header(("x-lazycache-output-height", "200"))
            .to_http_request();
        let parsed = frame_request(&request, FrameSelector::Number(1), Format::Jpeg)
            .map(|r| {
                (
                    r.output.render.width,
                    r.output.render.height,
                    r.output.quality,
                )
            })
            .map_err(|e| e.to_string());
        assert_eq!(parsed, Ok((Some(320), Some(200), Some(90))));
        let bad = TestRequest::with_uri("/x?quality=101").to_http_request();
        let refused = frame_request(&bad, FrameSelector::Number(1), Format::Jpeg);
        assert_eq!(refused.err().map(|e| e.status().as_u16()), Some(400));
    }
}
