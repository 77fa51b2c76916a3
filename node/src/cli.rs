//! The `node` command line: run a branch store's edge node, create its configuration, or check
//! its data. Lives in the library so that test crates can build the same binary.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;

use crate::Config;
use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about = "Branch store edge node (门店节点)")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write a configuration file with defaults for this store.
    Init {
        #[arg(long, default_value = "node.toml")]
        config: PathBuf,
        #[arg(long, default_value = "S001")]
        store_id: String,
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
    },
    /// Serve the cashier API.
    Run {
        #[arg(long, default_value = "node.toml")]
        config: PathBuf,
        /// Override the configured listen address (port 0 picks a free port).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Serve several stores from one process, each with its own storage, certificate, sync
    /// session and HTTP port (for replays, benchmarks, and stores kept in one office).
    Host {
        /// A store's configuration file; once per store.
        #[arg(long = "config", required = true)]
        configs: Vec<PathBuf>,
        /// Listen on a free loopback port for each store instead of its configured address.
        #[arg(long)]
        any_port: bool,
    },
    /// A new PC for a store that has sold before (换机): make its empty data directory take the
    /// store's log back from headquarters when it first connects; it records nothing until
    /// then. A store that connects before it sells restores by itself; this keeps one that is
    /// started offline from numbering a sale headquarters holds already.
    Replace {
        #[arg(long, default_value = "node.toml")]
        config: PathBuf,
    },
    /// Take a backup of a stopped node's data (a running node takes its own: on its schedule,
    /// or `POST /api/v1/backups`), into `--to` or the configured backup directory.
    Backup {
        #[arg(long, default_value = "node.toml")]
        config: PathBuf,
        #[arg(long)]
        to: Option<PathBuf>,
    },
    /// Make the configured (absent or empty) data directory from a backup, check it, and have
    /// it take back from headquarters what headquarters acknowledged after the backup before it
    /// records anything.
    Restore {
        #[arg(long, default_value = "node.toml")]
        config: PathBuf,
        /// The backup file.
        #[arg(long)]
        from: PathBuf,
    },
    /// Check every hash chain and compare the views with a rebuild from the log.
    Verify {
        #[arg(long, default_value = "node.toml")]
        config: PathBuf,
    },
    /// The node as a Windows service that starts with the PC (install, start, stop,
    /// uninstall; as an administrator). On Linux, use systemd.
    Service {
        #[command(subcommand)]
        action: ServiceCmd,
    },
}

#[derive(Subcommand)]
enum ServiceCmd {
    /// Register the node for this configuration as a service that starts with Windows.
    Install {
        #[arg(long, default_value = "node.toml")]
        config: PathBuf,
    },
    /// Stop and remove this store's service.
    Uninstall {
        #[arg(long, default_value = "node.toml")]
        config: PathBuf,
    },
    Start {
        #[arg(long, default_value = "node.toml")]
        config: PathBuf,
    },
    Stop {
        #[arg(long, default_value = "node.toml")]
        config: PathBuf,
    },
    /// What the service manager runs (not for people).
    #[command(hide = true)]
    Run {
        #[arg(long)]
        config: PathBuf,
    },
}

impl ServiceCmd {
    fn action(self) -> anyhow::Result<crate::platform::ServiceAction> {
        use crate::platform::ServiceAction;
        let store_id = |config: &PathBuf| Config::load(config).map(|c| c.store_id);
        Ok(match self {
            ServiceCmd::Install { config } => ServiceAction::Install { config },
            ServiceCmd::Uninstall { config } => ServiceAction::Uninstall {
                store_id: store_id(&config)?,
            },
            ServiceCmd::Start { config } => ServiceAction::Start {
                store_id: store_id(&config)?,
            },
            ServiceCmd::Stop { config } => ServiceAction::Stop {
                store_id: store_id(&config)?,
            },
            ServiceCmd::Run { config } => ServiceAction::Run { config },
        })
    }
}

/// The exit code of a node whose store is damaged (`StoreError::DamagedStore`): restarting will
/// not help, so a supervisor should not retry (systemd: `RestartPreventExitStatus=3`).
pub const EXIT_DAMAGED_STORE: u8 = 3;

/// `main` for the node's binaries: runs the command line; on an error, prints it as
/// `fn main() -> anyhow::Result<()>` would and exits with `exit_code`.
pub fn main_exit() -> std::process::ExitCode {
    match main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("Error: {e:?}");
            }
            exit_code(&e)
        }
    }
}

/// The process's exit code for `error`: `EXIT_DAMAGED_STORE`, or 1 for anything else.
pub fn exit_code(error: &anyhow::Error) -> std::process::ExitCode {
    std::process::ExitCode::from(exit_code_number(error))
}

/// `exit_code` as a number (a Windows service reports it to the service manager).
pub fn exit_code_number(error: &anyhow::Error) -> u8 {
    let damaged = error.chain().any(|cause| {
        cause
            .downcast_ref::<crate::store::StoreError>()
            .is_some_and(crate::store::StoreError::is_damaged_store)
    });
    if damaged { EXIT_DAMAGED_STORE } else { 1 }
}

pub fn main() -> anyhow::Result<()> {
    main_from(std::env::args_os())
}

/// `main` with these arguments (the first is the program's name): `ops` runs a whole chain
/// as real processes of its own binary this way.
pub fn main_from(
    args: impl IntoIterator<Item = impl Into<std::ffi::OsString> + Clone>,
) -> anyhow::Result<()> {
    let cli = Cli::parse_from(args);
    let mut log = crate::logging::LogSettings::from_env("node.log")?;
    // A service has no console: its log goes to files beside its configuration.
    if let Cmd::Service {
        action: ServiceCmd::Run { config },
    } = &cli.command
        && log.dir.is_none()
    {
        let config = std::path::absolute(config)?;
        log.dir = Some(config.parent().unwrap_or(&config).join("logs"));
    }
    crate::logging::init(&log)?;
    match cli.command {
        Cmd::Service { action } => crate::platform::service(action.action()?),
        Cmd::Init {
            config,
            store_id,
            data_dir,
        } => {
            anyhow::ensure!(
                !config.exists(),
                "{} exists already; not overwriting it",
                config.display()
            );
            // A store on its own has no headquarters to give its staff logins: it is open.
            let cfg = Config {
                store_id,
                data_dir,
                open_before_logins: true,
                ..Config::default()
            };
            cfg.settings()?;
            std::fs::write(&config, cfg.to_toml())
                .with_context(|| format!("writing {}", config.display()))?;
            println!("wrote {}", config.display());
            Ok(())
        }
        Cmd::Run { config, listen } => {
            let mut cfg = Config::load(&config)?;
            if let Some(listen) = listen {
                cfg.listen = listen;
            }
            crate::serve(
                cfg,
                // One machine-readable line, for scripts and tests that start the node on port 0.
                |at| println!("listening on http://{at}"),
                crate::shutdown_signal(),
            )
        }
        Cmd::Host { configs, any_port } => crate::host::host(&configs, any_port),
        Cmd::Replace { config } => {
            let cfg = Config::load(&config)?;
            anyhow::ensure!(
                cfg.sync.is_some(),
                "{} has no [sync] section: a store without headquarters has nothing to take back",
                config.display()
            );
            crate::replace(&cfg)?;
            println!(
                "{} will take store {}'s log back from headquarters when it first connects, and \
                 records nothing before: start it with `run`",
                cfg.data_dir.display(),
                cfg.store_id
            );
            Ok(())
        }
        Cmd::Backup { config, to } => {
            let cfg = Config::load(&config)?;
            let store_id = cfg.settings()?.store_id;
            let store = crate::open_checked(&cfg.data_dir).with_context(|| {
                format!(
                    "opening {} (a running node takes its own backups: POST /api/v1/backups)",
                    cfg.data_dir.display()
                )
            })?;
            let dir = to.unwrap_or_else(|| cfg.backup().dir);
            let taken = crate::backup::take(&store, &store_id, &dir, crate::uplink::now_ms())?;
            println!("{}", serde_json::to_string_pretty(&taken)?);
            Ok(())
        }
        Cmd::Restore { config, from } => {
            let cfg = Config::load(&config)?;
            let settings = cfg.settings()?;
            let restored = crate::backup::restore(
                &from,
                &settings.store_id,
                &cfg.data_dir,
                &settings.calendar,
                cfg.sync.is_some(),
            )?;
            println!("{}", serde_json::to_string_pretty(&restored)?);
            if cfg.sync.is_some() {
                println!(
                    "restored into {}: when it starts, it takes back from headquarters what \
                     headquarters holds after this backup, and records nothing before",
                    cfg.data_dir.display()
                );
            }
            Ok(())
        }
        Cmd::Verify { config } => {
            let report = crate::verify(&Config::load(&config)?)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            anyhow::ensure!(report.is_clean(), "views differ from a rebuild of the log");
            Ok(())
        }
    }
}
