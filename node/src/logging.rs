//! Where the node's (and the hub's, which compiles this file) log goes, and in what form:
//! text on stderr by default; `LOG_FORMAT=json` for one JSON object a line (for a log shipper);
//! `LOG_DIR=<dir>` for files there instead, a new one each day, the last `LOG_KEEP_DAYS`
//! (14) kept. `RUST_LOG` filters as usual (`info` by default).

use tracing_subscriber::EnvFilter;

/// The log's settings, read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    pub json: bool,
    pub dir: Option<std::path::PathBuf>,
    pub keep_days: usize,
    /// The files' name: `<prefix>.<date>`.
    pub prefix: String,
}

impl LogSettings {
    /// From `LOG_FORMAT`, `LOG_DIR` and `LOG_KEEP_DAYS`; a value that makes no sense is an error
    /// (a log that silently goes elsewhere is worse than a process that says why it stops).
    pub fn from_env(prefix: &str) -> anyhow::Result<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let json = match var("LOG_FORMAT").as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => anyhow::bail!("LOG_FORMAT is text or json, not {other:?}"),
        };
        let keep_days = match var("LOG_KEEP_DAYS") {
            None => 14,
            Some(n) => match n.parse() {
                Ok(n) if (1..=3_660).contains(&n) => n,
                _ => anyhow::bail!("LOG_KEEP_DAYS is 1 to 3660, not {n:?}"),
            },
        };
        Ok(Self {
            json,
            dir: var("LOG_DIR").map(Into::into),
            keep_days,
            prefix: prefix.to_owned(),
        })
    }
}

/// Sets the process's log up as `settings` say.
pub fn init(settings: &LogSettings) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match (&settings.dir, settings.json) {
        (None, false) => builder.with_writer(std::io::stderr).try_init(),
        (None, true) => builder.json().with_writer(std::io::stderr).try_init(),
        (Some(dir), json) => {
            std::fs::create_dir_all(dir)?;
            let files = tracing_appender::rolling::Builder::new()
                .rotation(tracing_appender::rolling::Rotation::DAILY)
                .filename_prefix(&settings.prefix)
                .max_log_files(settings.keep_days)
                .build(dir)?;
            match json {
                true => builder
                    .json()
                    .with_ansi(false)
                    .with_writer(files)
                    .try_init(),
                false => builder.with_ansi(false).with_writer(files).try_init(),
            }
        }
    };
    result.map_err(|e| anyhow::anyhow!("setting up the log: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_go_to_a_dated_file_as_json() {
        let dir = std::env::temp_dir().join(format!("log-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let settings = LogSettings {
            json: true,
            dir: Some(dir.clone()),
            keep_days: 3,
            prefix: "node.log".into(),
        };
        init(&settings).unwrap();
        tracing::warn!(store = "S001", "a line for the file");
        let file = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("node.log.")
            })
            .expect("a dated log file");
        let text = std::fs::read_to_string(&file).unwrap();
        let line: serde_json::Value =
            serde_json::from_str(text.lines().find(|l| l.contains("a line")).unwrap()).unwrap();
        assert_eq!(line["fields"]["message"], "a line for the file");
        assert_eq!(line["fields"]["store"], "S001");
        assert_eq!(line["level"], "WARN");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
