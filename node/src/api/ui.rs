//! 收银台: the cashier's web page, compiled into the binary (no Node.js toolchain, no bundle):
//! one HTML page, a script per screen and its style, served on the node's own address.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, Code};

const INDEX: &str = include_str!("../../ui/index.html");
const STYLE: &str = include_str!("../../ui/app.css");
/// The page's scripts, in the order the page loads them.
const SCRIPTS: &[(&str, &str)] = &[
    ("i18n.js", include_str!("../../ui/i18n.js")),
    ("app.js", include_str!("../../ui/app.js")),
    ("member.js", include_str!("../../ui/member.js")),
    ("quick.js", include_str!("../../ui/quick.js")),
    ("basket.js", include_str!("../../ui/basket.js")),
    ("returns.js", include_str!("../../ui/returns.js")),
    ("shift.js", include_str!("../../ui/shift.js")),
    ("office.js", include_str!("../../ui/office.js")),
    ("stock.js", include_str!("../../ui/stock.js")),
    ("transfers.js", include_str!("../../ui/transfers.js")),
    ("backups.js", include_str!("../../ui/backups.js")),
    ("card.js", include_str!("../../ui/card.js")),
    ("manager.js", include_str!("../../ui/manager.js")),
    ("gifts.js", include_str!("../../ui/gifts.js")),
];

pub(super) async fn index() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX).into_response()
}

pub(super) async fn asset(Path(file): Path<String>) -> Response {
    if file == "app.css" {
        return ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response();
    }
    match SCRIPTS.iter().find(|(name, _)| *name == file) {
        Some((_, body)) => (
            [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
            *body,
        )
            .into_response(),
        None => ApiError::new(Code::NotFound, format!("no file {file}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_every_script_served_in_order() {
        let loaded = protocol::web::page_scripts(INDEX);
        let served: Vec<&str> = SCRIPTS.iter().map(|(name, _)| *name).collect();
        assert_eq!(loaded, served);
    }
}
