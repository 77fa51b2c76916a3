//! 连锁总部: headquarters' web page, compiled into the binary (no Node.js toolchain, no chart
//! library: the daily chart is SVG drawn by the page's own script).

use axum::extract::Path;
use axum::http::header;

use super::*;

const INDEX: &str = include_str!("../../ui/index.html");
const SCRIPT: &str = include_str!("../../ui/app.js");
const MARKETING: &str = include_str!("../../ui/marketing.js");
const IMPORT: &str = include_str!("../../ui/import.js");
const TIERS: &str = include_str!("../../ui/tiers.js");
const CATALOGUE: &str = include_str!("../../ui/catalogue.js");
const BACKUPS: &str = include_str!("../../ui/backups.js");
const STYLE: &str = include_str!("../../ui/app.css");

pub(super) async fn index() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX).into_response()
}

pub(super) async fn asset(Path(file): Path<String>) -> Response {
    let (kind, body) = match file.as_str() {
        "app.js" => ("text/javascript; charset=utf-8", SCRIPT),
        "marketing.js" => ("text/javascript; charset=utf-8", MARKETING),
        "import.js" => ("text/javascript; charset=utf-8", IMPORT),
        "tiers.js" => ("text/javascript; charset=utf-8", TIERS),
        "catalogue.js" => ("text/javascript; charset=utf-8", CATALOGUE),
        "backups.js" => ("text/javascript; charset=utf-8", BACKUPS),
        "app.css" => ("text/css; charset=utf-8", STYLE),
        _ => {
            return Code::NotFound.answer(format!("no file {file}"));
        }
    };
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}
