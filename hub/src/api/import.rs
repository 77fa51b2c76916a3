//! 会员导入: `POST /api/v1/members/import` with the file as the body (CSV UTF-8 or Excel
//! .xlsx; `?name=` names it in the members' opening entries, `?dry_run=true` only checks it).
//! The file is kept on disk while it is read (a CSV streams; it is never whole in memory), read
//! once to check every row, and, when no row is bad, read again to import the rows a part at a
//! time. An import with a bad row imports nothing; one run again imports nothing twice.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use http_body_util::BodyExt;
use tokio::io::AsyncWriteExt;

use super::*;

/// The largest file taken (a million members is about 150 MB as CSV).
pub const IMPORT_BYTES_MAX: u64 = 1 << 30;
/// Rows sent to the ingest thread at a time (two entries each).
const PART_ROWS: usize = 2_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ImportQuery {
    #[serde(default)]
    dry_run: bool,
    name: Option<String>,
}

/// The spooled upload, removed however the request ends.
struct Spool(std::path::PathBuf);

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn spool(body: Body, name: &str) -> Result<Spool, Response> {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let ext = if name.to_lowercase().ends_with(".xlsx") {
        "xlsx"
    } else {
        "csv"
    };
    let path = std::env::temp_dir().join(format!("hub-import-{}-{n}.{ext}", std::process::id()));
    let spool = Spool(path);
    let mut file = tokio::fs::File::create(&spool.0)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let mut body = body;
    let mut bytes = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Code::InvalidRequest.answer(e))?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        bytes += chunk.len() as u64;
        if bytes > IMPORT_BYTES_MAX {
            return Err(Code::PayloadTooLarge.answer(format!(
                "the file is over {} MB: split it",
                IMPORT_BYTES_MAX >> 20
            )));
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
    }
    file.flush().await.map_err(|e| unavailable(e.to_string()))?;
    Ok(spool)
}

fn file_refused(e: crate::import::FileError) -> Response {
    match e {
        crate::import::FileError::Storage(e) => unavailable(e),
        e => Code::InvalidRequest.answer(e),
    }
}

/// 会员导入: checks a member file and, unless `dry_run`, imports it.
#[utoipa::path(post, path = "/api/v1/members/import", params(("dry_run" = Option<bool>, Query), ("name" = Option<String>, Query)),
    request_body(content = String, description = "the CSV (UTF-8) or Excel (.xlsx) file"),
    responses((status = 200, body = Object, description = "the dry run's report"), (status = 201, body = Object, description = "imported"), (status = 422, body = Object, description = "bad rows: nothing imported")))]
pub(super) async fn import_members(
    State(hq): State<Hq>,
    headers: HeaderMap,
    q: Result<Query<ImportQuery>, QueryRejection>,
    body: Body,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return bad_query(e.body_text()),
    };
    let name = q.name.unwrap_or_else(|| "members.csv".into());
    if name.trim().is_empty() || name.chars().count() > 100 {
        return bad_query("name: 1 to 100 characters".into());
    }
    let by = operator_or_system(&headers);
    let spool = match spool(body, &name).await {
        Ok(spool) => spool,
        Err(refused) => return refused,
    };
    // The stores headquarters has heard from (connected at least once).
    let stores: std::collections::HashSet<StoreId> = match hq.ingest.stores().await {
        Ok(rows) => rows.into_iter().map(|r| r.store_id).collect(),
        Err(e) => return unavailable(e.to_string()),
    };
    let storage = hq.storage.clone();
    let path = spool.0.clone();
    let known = stores.clone();
    let today =
        protocol::calendar::StoreCalendar::default().business_date(crate::ingest::system_now_ms());
    let checked = tokio::task::spawn_blocking(move || {
        let directory = crate::import::Directory::load(&*storage, known, "standard".into(), today)?;
        crate::import::read(&path, &directory, |_| Ok(()))
    })
    .await;
    let report = match checked {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => return file_refused(e),
        Err(e) => return unavailable(e.to_string()),
    };
    if q.dry_run {
        return axum::Json(json!({ "dry_run": true, "report": report })).into_response();
    }
    if report.bad > 0 {
        let body = json!({
            "code": "rows_bad",
            "message": "文件中有错误的行，未导入任何会员：请改正后再导入",
            "detail": format!("{} bad rows: nothing was imported", report.bad),
            "report": report,
        });
        return (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response();
    }
    // The second read sends the rows a part at a time; the ingest thread writes each part as
    // one append, skipping members written before (a run cut off and run again).
    let (parts, mut inbox) = tokio::sync::mpsc::channel::<Vec<protocol::import::Row>>(2);
    let storage = hq.storage.clone();
    let path = spool.0.clone();
    let reader = tokio::task::spawn_blocking(move || {
        let directory =
            crate::import::Directory::load(&*storage, stores, "standard".into(), today)?;
        let mut part = Vec::with_capacity(PART_ROWS);
        let report = crate::import::read(&path, &directory, |row| {
            part.push(row);
            if part.len() == PART_ROWS {
                parts
                    .blocking_send(std::mem::take(&mut part))
                    .map_err(|_| "the import stopped".to_owned())?;
            }
            Ok(())
        })?;
        if !part.is_empty() {
            let _ = parts.blocking_send(part);
        }
        Ok::<_, crate::import::FileError>(report)
    });
    let mut done = crate::ingest::Imported::default();
    while let Some(part) = inbox.recv().await {
        match hq
            .ingest
            .import_members(part, name.clone(), by.clone())
            .await
        {
            Ok(part) => {
                done.imported += part.imported;
                done.skipped += part.skipped;
                done.refused.extend(part.refused);
            }
            Err(e) => {
                return unavailable(format!(
                    "{e}; run the import again: it goes on where it stopped"
                ));
            }
        }
    }
    match reader.await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return file_refused(e),
        Err(e) => return unavailable(e.to_string()),
    }
    done.skipped += report.already_imported;
    let note = protocol::audit::Note::MembersImported {
        import: name.clone(),
        imported: done.imported,
        skipped: done.skipped,
    };
    match hq
        .ingest
        .hq_write(crate::ingest::HqWrite::Note(note), by)
        .await
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "the import's audit note was not written"),
        Err(e) => tracing::warn!(error = %e, "the import's audit note was not written"),
    }
    tracing::info!(import = %name, imported = done.imported, skipped = done.skipped, "members imported");
    (
        StatusCode::CREATED,
        axum::Json(
            json!({ "import": name, "rows": report.rows, "imported": done.imported,
            "skipped": done.skipped, "refused": done.refused }),
        ),
    )
        .into_response()
}
