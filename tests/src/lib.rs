//! Helpers for the end-to-end tests: real nodes on loopback (in-process or as child processes)
//! and a small blocking HTTP client; `proxy` is the UDP fault proxy.
// Test helpers: a panic is the right answer to a broken test environment.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod browser;
pub mod chain;
pub use ops::proxy;
pub mod sim;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("store-test-{label}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub replayed: bool,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

/// A blocking JSON client that keeps its connection alive.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    pub base: String,
    /// A staff session's token, sent as `Authorization: Bearer` on every request.
    pub bearer: Option<String>,
}

impl Client {
    pub fn new(base: &str) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .build();
        Self {
            agent: ureq::Agent::new_with_config(config),
            base: base.trim_end_matches('/').to_owned(),
            bearer: None,
        }
    }

    /// The same client, logged in with `token`.
    pub fn with_bearer(&self, token: &str) -> Self {
        Self {
            bearer: Some(token.to_owned()),
            ..self.clone()
        }
    }

    fn auth<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.bearer {
            Some(token) => request.header("authorization", format!("Bearer {token}")),
            None => request,
        }
    }

    fn finish(
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Answer, ureq::Error> {
        let mut response = result?;
        let status = response.status().as_u16();
        let replayed = response.headers().get("idempotent-replayed").is_some();
        let text = response.body_mut().read_to_string()?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer {
            status,
            body,
            replayed,
        })
    }

    pub fn get(&self, path: &str) -> Answer {
        self.try_get(path).unwrap()
    }

    pub fn try_get(&self, path: &str) -> Result<Answer, ureq::Error> {
        Self::finish(
            self.auth(self.agent.get(format!("{}{path}", self.base)))
                .call(),
        )
    }

    /// POSTs a raw body (so tests can send malformed JSON) with an optional idempotency key.
    pub fn post(&self, path: &str, key: Option<&str>, body: &str) -> Answer {
        self.try_post(path, key, body).unwrap()
    }

    pub fn try_post(
        &self,
        path: &str,
        key: Option<&str>,
        body: &str,
    ) -> Result<Answer, ureq::Error> {
        let mut request = self
            .auth(self.agent.post(format!("{}{path}", self.base)))
            .header("content-type", "application/json");
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        Self::finish(request.send(body))
    }

    /// PUTs a body as a named staff member.
    pub fn put_as(&self, path: &str, key: &str, staff: Option<&str>, body: &str) -> Answer {
        let mut request = self
            .auth(self.agent.put(format!("{}{path}", self.base)))
            .header("content-type", "application/json")
            .header("idempotency-key", key);
        if let Some(staff) = staff {
            request = request.header("x-staff-id", staff);
        }
        Self::finish(request.send(body)).unwrap()
    }

    /// POSTs a till's write (with its idempotency key) as a named staff member.
    pub fn post_keyed_as(&self, path: &str, key: &str, staff: &str, body: &str) -> Answer {
        let request = self
            .auth(self.agent.post(format!("{}{path}", self.base)))
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .header("x-staff-id", staff);
        Self::finish(request.send(body)).unwrap()
    }

    /// POSTs a body as a named staff member (no idempotency key: headquarters' operator
    /// actions).
    pub fn post_as(&self, path: &str, staff: Option<&str>, body: &str) -> Answer {
        let mut request = self
            .auth(self.agent.post(format!("{}{path}", self.base)))
            .header("content-type", "application/json");
        if let Some(staff) = staff {
            request = request.header("x-staff-id", staff);
        }
        Self::finish(request.send(body)).unwrap()
    }

    /// DELETEs as a named staff member.
    pub fn delete_as(&self, path: &str, staff: &str) -> Answer {
        let request = self
            .auth(self.agent.delete(format!("{}{path}", self.base)))
            .header("x-staff-id", staff);
        Self::finish(request.call()).unwrap()
    }

    /// PATCHes `body` with an idempotency key, as `staff` (`X-Staff-Id`).
    pub fn patch_as(&self, path: &str, key: &str, staff: &str, body: &str) -> Answer {
        let request = self
            .auth(self.agent.patch(format!("{}{path}", self.base)))
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .header("x-staff-id", staff);
        Self::finish(request.send(body)).unwrap()
    }

    pub fn patch(&self, path: &str, key: Option<&str>, body: &str) -> Answer {
        let mut request = self
            .auth(self.agent.patch(format!("{}{path}", self.base)))
            .header("content-type", "application/json");
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        Self::finish(request.send(body)).unwrap()
    }
}

/// A real node serving on a loopback port inside this process, on its own runtime thread.
pub struct TestNode {
    pub client: Client,
    pub config: node::Config,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
    _dir: Option<TempDir>,
}

impl TestNode {
    pub fn start() -> Self {
        let dir = TempDir::new("node");
        let config = node::Config {
            data_dir: dir.path().join("data"),
            open_before_logins: true,
            ..node::Config::default()
        };
        let mut node = Self::start_with(config);
        node._dir = Some(dir);
        node
    }

    pub fn start_with(config: node::Config) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, address) = std::sync::mpsc::channel();
        let run_config = config.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                ready.send(listener.local_addr()?)?;
                node::run(run_config, listener, async move {
                    let _ = stopped.await;
                })
                .await
            })
        });
        let address = address
            .recv_timeout(Duration::from_secs(30))
            .expect("node did not start");
        let client = Client::new(&format!("http://{address}"));
        Self {
            client,
            config,
            stop: Some(stop),
            thread: Some(thread),
            _dir: None,
        }
    }

    /// Stops the node gracefully and returns any error it ended with.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| anyhow::anyhow!("node thread panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// A node running as a child process, so that it can be killed with SIGKILL.
pub struct NodeProcess {
    pub child: Child,
    pub client: Client,
}

/// Starts `binary run --config <config> <args>` with its stdout piped, logs at warn.
fn run_child(
    binary: &Path,
    config_path: &Path,
    args: &[&str],
) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child = Command::new(binary)
        .args(["run", "--config"])
        .arg(config_path)
        .args(args)
        .env(
            "RUST_LOG",
            std::env::var("CHILD_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
    let stdout = BufReader::new(child.stdout.take().unwrap());
    (child, stdout)
}

/// The next line of a child's stdout, which must start with `prefix`; returns the rest.
fn announced(stdout: &mut BufReader<std::process::ChildStdout>, prefix: &str) -> String {
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    line.trim()
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("unexpected line {line:?}"))
        .to_owned()
}

/// Runs `binary <args>` to its end, which must come within 30 s (a node that starts serving
/// instead fails the test): its exit code and what it wrote to stderr.
pub fn run_to_end(binary: &Path, args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let mut child = Command::new(binary)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("{} {args:?} kept running", binary.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), stderr)
}

impl NodeProcess {
    /// Starts `binary` (an integration test passes `env!("CARGO_BIN_EXE_store-node")`).
    pub fn spawn(binary: &Path, config_path: &Path) -> Self {
        let (child, mut stdout) = run_child(binary, config_path, &["--listen", "127.0.0.1:0"]);
        let client = Client::new(&announced(&mut stdout, "listening on "));
        Self { child, client }
    }

    /// SIGKILL: no flush, no goodbye.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A hub running as a child process.
pub struct HubProcess {
    pub child: Child,
    pub client: Client,
    pub sync: std::net::SocketAddr,
}

impl HubProcess {
    /// Starts `binary` (`env!("CARGO_BIN_EXE_hq")`) with `config_path`, on `sync` (port 0
    /// for any) and a free HTTP port.
    pub fn spawn(binary: &Path, config_path: &Path, sync: std::net::SocketAddr) -> Self {
        let sync = sync.to_string();
        let args = ["--sync-listen", &sync, "--http-listen", "127.0.0.1:0"];
        let (child, mut stdout) = run_child(binary, config_path, &args);
        let sync = announced(&mut stdout, "sync on ").parse().unwrap();
        let client = Client::new(&announced(&mut stdout, "listening on "));
        Self {
            client,
            child,
            sync,
        }
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A hub started while another holds headquarters' database (PostgreSQL): it stands by and
/// announces its addresses only once it has taken over. Killed when dropped.
pub struct StandbyHub {
    child: Option<Child>,
    stdout: Option<BufReader<std::process::ChildStdout>>,
}

impl StandbyHub {
    pub fn spawn(binary: &Path, config_path: &Path, sync: std::net::SocketAddr) -> Self {
        let sync = sync.to_string();
        let args = ["--sync-listen", &sync, "--http-listen", "127.0.0.1:0"];
        let (child, stdout) = run_child(binary, config_path, &args);
        Self {
            child: Some(child),
            stdout: Some(stdout),
        }
    }

    /// Waits until it is the active hub (two minutes at most).
    pub fn active(mut self) -> HubProcess {
        let mut stdout = self.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let sync = announced(&mut stdout, "sync on ");
            let http = announced(&mut stdout, "listening on ");
            let _ = tx.send((sync, http));
        });
        let (sync, http) = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("the standby hub took over within two minutes");
        let child = self.child.take().unwrap();
        HubProcess {
            child,
            client: Client::new(&http),
            sync: sync.parse().unwrap(),
        }
    }
}

impl Drop for StandbyHub {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `probe` every 50 ms until it returns `Some`, or panics after `seconds` naming `what`.
pub fn eventually<T>(seconds: u64, what: &str, probe: impl FnMut() -> Option<T>) -> T {
    eventually_explained(seconds, what, probe, String::new)
}

/// `eventually`, whose panic also says what `explain` finds then (the state a failure on a
/// loaded machine needs to be understood without reproducing it).
pub fn eventually_explained<T>(
    seconds: u64,
    what: &str,
    mut probe: impl FnMut() -> Option<T>,
    explain: impl FnOnce() -> String,
) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(value) = probe() {
            return value;
        }
        if std::time::Instant::now() >= deadline {
            panic!("timed out waiting for {what}\n{}", explain());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
