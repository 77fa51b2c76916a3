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
    responses((status = 200, body = Object, description = "the dry run's report"), (status = 202, body = Object, description = "checked, and importing: follow `progress`"), (status = 422, body = Object, description = "bad rows: nothing imported")))]
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
    // The import runs on after this answer (a million members take minutes, longer than a
    // request may): the answer names it, and `GET /api/v1/members/imports/{id}` follows it.
    let id = hq.imports.start(&name, report.rows);
    let progress = hq.imports.clone();
    let (ingest, storage) = (hq.ingest.clone(), hq.storage.clone());
    let already = report.already_imported;
    tokio::spawn(async move {
        let result = run(
            ingest, storage, spool, stores, today, name, by, &progress, id, already,
        )
        .await;
        progress.finish(id, result.err());
    });
    (
        StatusCode::ACCEPTED,
        axum::Json(
            json!({ "import_id": id, "rows": report.rows, "state": "running",
            "progress": format!("/api/v1/members/imports/{id}") }),
        ),
    )
        .into_response()
}

/// Reads the file again and sends its rows a part at a time; the ingest thread writes each
/// part as one append, skipping members written before (a run cut off and run again).
#[allow(clippy::too_many_arguments)]
async fn run(
    ingest: crate::ingest::IngestHandle,
    storage: std::sync::Arc<dyn HubStore>,
    spool: Spool,
    stores: std::collections::HashSet<StoreId>,
    today: chrono::NaiveDate,
    name: String,
    by: StaffId,
    progress: &Imports,
    id: u64,
    already: u64,
) -> Result<(), String> {
    let (parts, mut inbox) = tokio::sync::mpsc::channel::<Vec<crate::ingest::Prepared>>(2);
    let path = spool.0.clone();
    let reader = tokio::task::spawn_blocking(move || {
        let directory =
            crate::import::Directory::load(&*storage, stores, "standard".into(), today)?;
        let mut part = Vec::with_capacity(PART_ROWS);
        // Each member's document is built here, beside the ingest thread.
        let report = crate::import::read(&path, &directory, |row| {
            part.push(crate::ingest::Prepared::new(
                row,
                crate::ingest::system_now_ms(),
            )?);
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
    progress.add(id, 0, already, Vec::new());
    let mut done = crate::ingest::Imported::default();
    while let Some(part) = inbox.recv().await {
        let part = ingest
            .import_members(part, name.clone(), by.clone())
            .await
            .map_err(|e| format!("{e}; run the import again: it goes on where it stopped"))?;
        progress.add(id, part.imported, part.skipped, part.refused.clone());
        done.imported += part.imported;
        done.skipped += part.skipped;
    }
    let read = reader
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    // Rows the run's own read found imported or bad that the check had not (a member erased,
    // or their phone registered at a till, since): on the progress beside the ingest's.
    let later_skipped = read.already_imported.saturating_sub(already);
    progress.add(id, 0, later_skipped, read.bad_rows);
    done.skipped += later_skipped;
    drop(spool);
    let note = protocol::audit::Note::MembersImported {
        import: name.clone(),
        imported: done.imported,
        skipped: done.skipped + already,
    };
    match ingest
        .hq_write(crate::ingest::HqWrite::Note(note), by)
        .await
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "the import's audit note was not written"),
        Err(e) => tracing::warn!(error = %e, "the import's audit note was not written"),
    }
    tracing::info!(import = %name, imported = done.imported, skipped = done.skipped + already, "members imported");
    Ok(())
}

/// One import's progress.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Progress {
    pub import_id: u64,
    pub import: String,
    pub rows: u64,
    /// `running`, `done` or `failed`.
    pub state: &'static str,
    pub imported: u64,
    pub skipped: u64,
    /// Rows a till registered the phone of since the file was checked (not imported).
    pub refused: Vec<protocol::import::BadRow>,
    pub error: Option<String>,
}

/// The imports since this start, by id.
#[derive(Clone, Default)]
pub(super) struct Imports(
    std::sync::Arc<std::sync::Mutex<(u64, std::collections::BTreeMap<u64, Progress>)>>,
);

impl Imports {
    fn with<T>(
        &self,
        f: impl FnOnce(&mut (u64, std::collections::BTreeMap<u64, Progress>)) -> T,
    ) -> T {
        // A panic while holding it leaves counts that are still worth reading.
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }

    fn start(&self, name: &str, rows: u64) -> u64 {
        self.with(|(next, all)| {
            *next += 1;
            all.insert(
                *next,
                Progress {
                    import_id: *next,
                    import: name.to_owned(),
                    rows,
                    state: "running",
                    imported: 0,
                    skipped: 0,
                    refused: Vec::new(),
                    error: None,
                },
            );
            *next
        })
    }

    fn add(&self, id: u64, imported: u64, skipped: u64, refused: Vec<protocol::import::BadRow>) {
        self.with(|(_, all)| {
            if let Some(p) = all.get_mut(&id) {
                p.imported += imported;
                p.skipped += skipped;
                p.refused.extend(refused);
            }
        });
    }

    fn finish(&self, id: u64, error: Option<String>) {
        self.with(|(_, all)| {
            if let Some(p) = all.get_mut(&id) {
                p.state = if error.is_some() { "failed" } else { "done" };
                p.error = error;
            }
        });
    }

    fn get(&self, id: u64) -> Option<Progress> {
        self.with(|(_, all)| all.get(&id).cloned())
    }
}

/// 会员导入的进度: how far an import has got (`running`, then `done` or `failed`).
#[utoipa::path(get, path = "/api/v1/members/imports/{id}", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = Object)))]
pub(super) async fn import_progress(State(hq): State<Hq>, Path(raw): Path<String>) -> Response {
    let Ok(id) = raw.parse::<u64>() else {
        return Code::InvalidId.answer(format!("{raw:?} is not an import's number"));
    };
    match hq.imports.get(id) {
        Some(p) => axum::Json(p).into_response(),
        None => Code::NotFound.answer(format!("no import {id} since headquarters started")),
    }
}
