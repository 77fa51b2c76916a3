//! A PostgreSQL server of our own, in a scratch directory on a loopback port, from Debian's
//! package (installed when missing): for the tests that run headquarters on PostgreSQL, the
//! central-server bench, and anyone trying the PostgreSQL backend on one machine. Not how a
//! chain runs its database (that is its IT's server); stopped when dropped.

use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::Context;

/// Runs `command` to its end; its output, or an error with what it said.
pub fn checked(command: &mut Command) -> anyhow::Result<Output> {
    let output = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    anyhow::ensure!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(output)
}

/// A PostgreSQL server of our own on a loopback port, in a scratch directory, run as the
/// `postgres` user when we are root (it refuses to run as root). Stopped on drop.
pub struct Postgres {
    pub bin: PathBuf,
    data: PathBuf,
    pub addr: SocketAddr,
    running: bool,
}

impl Postgres {
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        let bin = match installed() {
            Some(bin) => bin,
            None => {
                install()?;
                installed().context("PostgreSQL installed, but no initdb found")?
            }
        };
        std::fs::create_dir_all(dir)?;
        if std::fs::metadata("/proc/self")?.uid() == 0 {
            // The postgres user must reach its directory, whatever root's umask.
            if let Some(parent) = dir.parent() {
                std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755))?;
            }
            let ids = |flag: &str| -> anyhow::Result<u32> {
                let out = checked(Command::new("id").args([flag, "postgres"]))?;
                Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
            };
            std::os::unix::fs::chown(dir, Some(ids("-u")?), Some(ids("-g")?))?;
        }
        let data = dir.join("data");
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        as_postgres(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--no-locale",
                "-E",
                "UTF8",
            ])
            .output()
            .context("initdb")
            .and_then(|o| {
                anyhow::ensure!(
                    o.status.success(),
                    "initdb: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                Ok(())
            })?;
        // Running from here on, as far as stopping goes: a start that times out may still come up.
        let server = Self {
            bin,
            data,
            addr,
            running: true,
        };
        checked(
            as_postgres(&server.bin.join("pg_ctl"))
                .arg("-D")
                .arg(&server.data)
                .arg("-l")
                .arg(dir.join("server.log"))
                .arg("-o")
                .arg(format!(
                    "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='{}' \
                     -c max_connections=200",
                    dir.display()
                ))
                .args(["-w", "start"]),
        )?;
        Ok(server)
    }

    /// Restarts the server (a fast shutdown: every commit written out first), as an operator
    /// restarting PostgreSQL does; connections to it are cut.
    pub fn restart(&self) -> anyhow::Result<()> {
        // With its log file, or the server keeps pg_ctl's output open.
        let log = self.data.with_file_name("server.log");
        checked(
            as_postgres(&self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(log)
                .args(["-m", "fast", "-w", "restart"]),
        )?;
        Ok(())
    }

    /// The address of `database` on this server, as the hub's `database_url` takes it.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@{}/{database}", self.addr)
    }

    /// Makes a new, empty database.
    pub fn create_database(&self, name: &str) -> anyhow::Result<()> {
        self.psql(&format!("CREATE DATABASE \"{name}\""))
    }

    /// The rows `sql` answers as `user` (unaligned, `|` between columns, a line a row).
    pub fn query_as(&self, user: &str, sql: &str) -> anyhow::Result<String> {
        let out = checked(
            Command::new(self.bin.join("psql"))
                .args([
                    "-X",
                    "-q",
                    "-A",
                    "-t",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-U",
                    user,
                    "-h",
                ])
                .arg(self.addr.ip().to_string())
                .arg("-p")
                .arg(self.addr.port().to_string())
                .args(["-d", "hub", "-c", sql]),
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    pub fn psql(&self, sql: &str) -> anyhow::Result<()> {
        checked(
            Command::new(self.bin.join("psql"))
                .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-h"])
                .arg(self.addr.ip().to_string())
                .arg("-p")
                .arg(self.addr.port().to_string())
                .args(["-d", "postgres", "-c", sql]),
        )?;
        Ok(())
    }

    pub fn stop(&mut self) -> anyhow::Result<()> {
        if self.running {
            stop_server(&self.bin, &self.data)?;
            self.running = false;
        }
        Ok(())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::warn!("stopping PostgreSQL: {e:#}");
        }
    }
}

/// Stops the server on `data` (fast; immediately if that fails).
fn stop_server(bin: &Path, data: &Path) -> anyhow::Result<()> {
    let stop = |mode: &str| {
        checked(
            as_postgres(&bin.join("pg_ctl"))
                .arg("-D")
                .arg(data)
                .args(["-m", mode, "-w", "stop"]),
        )
    };
    stop("fast").or_else(|_| stop("immediate"))?;
    Ok(())
}

/// Stops a server left running in `dir` (the directory given to [`Postgres::start`]) by a run
/// that was killed before it could stop it.
pub fn stop_leftover(dir: &Path) {
    let data = dir.join("data");
    if let Some(bin) = installed()
        && data.join("postmaster.pid").exists()
        && let Err(e) = stop_server(&bin, &data)
    {
        tracing::warn!("stopping the PostgreSQL left in {}: {e:#}", dir.display());
    }
}

/// A command run as the `postgres` user if we are root, else as ourselves.
fn as_postgres(program: &Path) -> Command {
    if std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// The newest PostgreSQL under Debian's `/usr/lib/postgresql/<version>/bin`.
pub fn installed() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// Installs Debian's PostgreSQL. The package may start a default cluster of its own; that one
/// is stopped again, so only our server runs.
fn install() -> anyhow::Result<()> {
    tracing::info!("installing PostgreSQL from Debian's packages");
    let apt = |args: &[&str]| {
        checked(
            Command::new("apt-get")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .args(args),
        )
    };
    if apt(&["install", "-y", "-q", "postgresql"]).is_err() {
        apt(&["update", "-q"])?;
        apt(&["install", "-y", "-q", "postgresql"])?;
    }
    if let Some(bin) = installed() {
        let version = bin
            .parent()
            .and_then(|v| v.file_name())
            .map(|v| v.to_string_lossy().into_owned())
            .unwrap_or_default();
        let _ = Command::new("pg_ctlcluster")
            .args([&version, "main", "stop"])
            .output();
    }
    Ok(())
}

/// A server of its own with one new database, for a test: stopped and its directory removed
/// when dropped.
pub struct TestDatabase {
    pub server: Postgres,
    pub url: String,
    dir: PathBuf,
}

impl TestDatabase {
    pub fn new(label: &str) -> anyhow::Result<Self> {
        static RUN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "hub-pg-{label}-{}-{}",
            std::process::id(),
            RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let server = Postgres::start(&dir.join("pg"))?;
        server.create_database("hub")?;
        Ok(Self {
            url: server.url("hub"),
            server,
            dir,
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Err(e) = self.server.stop() {
            tracing::warn!("stopping PostgreSQL: {e:#}");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
