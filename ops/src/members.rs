//! 会员导入 from the command line: sends a CSV or Excel file of members to headquarters as it
//! is on disk (streamed), for a dry run or the import, and prints headquarters' report.

use std::path::Path;

/// Sends `file` to headquarters' import; returns its answer (the report, or what was
/// imported). An import refused for bad rows is an error naming them.
pub fn import(
    hub: &str,
    file: &Path,
    staff: &str,
    token: Option<&str>,
    dry_run: bool,
) -> anyhow::Result<serde_json::Value> {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "members.csv".into());
    let body = std::fs::File::open(file)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", file.display()))?;
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(3_600)))
            .build(),
    );
    let query = format!(
        "dry_run={dry_run}&name={}",
        name.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' =>
                    (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    );
    let mut request = agent
        .post(format!(
            "{}/api/v1/members/import?{query}",
            hub.trim_end_matches('/')
        ))
        .header("content-type", "application/octet-stream")
        .header("x-staff-id", staff);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let mut response = request.send(body)?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()?;
    let answer: serde_json::Value =
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    match status {
        200 | 201 => return Ok(answer),
        // Checked, and running at headquarters: followed until it ends.
        202 => {}
        _ => anyhow::bail!(
            "headquarters refused the import ({status}): {}",
            summary(&answer)
        ),
    }
    let progress = format!(
        "{}{}",
        hub.trim_end_matches('/'),
        answer["progress"].as_str().unwrap_or_default()
    );
    loop {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let mut request = agent.get(&progress).header("x-staff-id", staff);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let mut response = request.call()?;
        let text = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()?;
        let now: serde_json::Value = serde_json::from_str(&text)?;
        match now["state"].as_str() {
            Some("running") => {}
            Some("done") => return Ok(now),
            _ => anyhow::bail!("the import stopped: {}", now["error"]),
        }
    }
}

/// The report's counts and its first bad rows, one a line.
pub fn summary(answer: &serde_json::Value) -> String {
    let report = answer.get("report").unwrap_or(answer);
    let mut out = String::new();
    if let Some(detail) = answer.get("detail").and_then(|d| d.as_str()) {
        out.push_str(detail);
        out.push('\n');
    }
    for field in [
        "rows",
        "good",
        "already_imported",
        "bad",
        "imported",
        "skipped",
    ] {
        if let Some(n) = report.get(field) {
            out.push_str(&format!("{field}: {n}\n"));
        }
    }
    let bad = report
        .get("bad_rows")
        .or_else(|| report.get("refused"))
        .and_then(|b| b.as_array());
    for b in bad.into_iter().flatten().take(30) {
        out.push_str(&format!(
            "  line {} {}: {}\n",
            b["line"],
            b["field"].as_str().unwrap_or(""),
            b["message"].as_str().unwrap_or("")
        ));
    }
    out
}
