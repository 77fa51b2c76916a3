//! 收银台: the cashier's web page, compiled into the binary (no Node.js toolchain, no bundle):
//! one HTML page, its script and its style, served on the node's own address.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, Code};

const INDEX: &str = include_str!("../../ui/index.html");
const SCRIPT: &str = include_str!("../../ui/app.js");
const BACKUPS: &str = include_str!("../../ui/backups.js");
const CARD: &str = include_str!("../../ui/card.js");
const STYLE: &str = include_str!("../../ui/app.css");

pub(super) async fn index() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX).into_response()
}

pub(super) async fn asset(Path(file): Path<String>) -> Response {
    let (kind, body) = match file.as_str() {
        "app.js" => ("text/javascript; charset=utf-8", SCRIPT),
        "backups.js" => ("text/javascript; charset=utf-8", BACKUPS),
        "card.js" => ("text/javascript; charset=utf-8", CARD),
        "app.css" => ("text/css; charset=utf-8", STYLE),
        _ => return ApiError::new(Code::NotFound, format!("no file {file}")).into_response(),
    };
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}
