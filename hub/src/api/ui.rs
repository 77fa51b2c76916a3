//! 连锁总部: headquarters' web page, compiled into the binary (no Node.js toolchain, no chart
//! library: the charts are SVG drawn by the page's own script): one HTML page, a script per
//! screen and its style.

use axum::extract::Path;
use axum::http::header;

use super::*;

const INDEX: &str = include_str!("../../ui/index.html");
const STYLE: &str = include_str!("../../ui/app.css");
/// 会员自助: the member's own page, its script and style.
const MEMBER_PAGE: &str = include_str!("../../ui/me.html");
const MEMBER_SCRIPT: &str = include_str!("../../ui/me.js");
const MEMBER_STYLE: &str = include_str!("../../ui/me.css");
/// The page's scripts, in the order the page loads them.
const SCRIPTS: &[(&str, &str)] = &[
    ("i18n.js", include_str!("../../ui/i18n.js")),
    ("app.js", include_str!("../../ui/app.js")),
    ("overview.js", include_str!("../../ui/overview.js")),
    ("reports.js", include_str!("../../ui/reports.js")),
    ("members.js", include_str!("../../ui/members.js")),
    ("transfers.js", include_str!("../../ui/transfers.js")),
    ("rules.js", include_str!("../../ui/rules.js")),
    ("staff.js", include_str!("../../ui/staff.js")),
    ("marketing.js", include_str!("../../ui/marketing.js")),
    ("backups.js", include_str!("../../ui/backups.js")),
    ("import.js", include_str!("../../ui/import.js")),
    ("tiers.js", include_str!("../../ui/tiers.js")),
    ("catalogue.js", include_str!("../../ui/catalogue.js")),
    ("prices.js", include_str!("../../ui/prices.js")),
    ("gifts.js", include_str!("../../ui/gifts.js")),
    ("referral.js", include_str!("../../ui/referral.js")),
    ("card_rules.js", include_str!("../../ui/card_rules.js")),
];

pub(super) async fn index() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX).into_response()
}

pub(super) async fn member_page() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        MEMBER_PAGE,
    )
        .into_response()
}

pub(super) async fn asset(Path(file): Path<String>) -> Response {
    const CSS: &str = "text/css; charset=utf-8";
    const JS: &str = "text/javascript; charset=utf-8";
    match file.as_str() {
        "app.css" => return ([(header::CONTENT_TYPE, CSS)], STYLE).into_response(),
        "me.css" => return ([(header::CONTENT_TYPE, CSS)], MEMBER_STYLE).into_response(),
        "me.js" => return ([(header::CONTENT_TYPE, JS)], MEMBER_SCRIPT).into_response(),
        _ => {}
    }
    match SCRIPTS.iter().find(|(name, _)| *name == file) {
        Some((_, body)) => (
            [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
            *body,
        )
            .into_response(),
        None => Code::NotFound.answer(format!("no file {file}")),
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
