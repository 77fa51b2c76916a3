//! What differs between the PCs a store runs on, in one place: how a file is opened to be made
//! durable, how the node hears it must stop, and the Windows service (Windows branch PCs run
//! the node as a service; Linux ones under systemd, README "Run it as a service").
//!
//! Windows code is behind `cfg(windows)` and is type-checked against the Windows target
//! (`cargo check --target x86_64-pc-windows-gnu -p node`, README); it has not run on Windows.

use std::path::{Path, PathBuf};

/// Opens `path` to make it durable with `sync_data`/`sync_all`: with write access, since
/// Windows refuses to flush a handle opened read-only (`FlushFileBuffers`:
/// ERROR_ACCESS_DENIED); Linux accepts either.
pub fn open_for_sync(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
}

/// Resolves on Ctrl-C, or SIGTERM on Unix (a Windows service stops through its control
/// handler instead: `service::run`).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// What `node service` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceAction {
    /// Register the node for `config` as a service that starts with Windows.
    Install {
        config: PathBuf,
    },
    Uninstall {
        store_id: String,
    },
    Start {
        store_id: String,
    },
    Stop {
        store_id: String,
    },
    /// What the service manager starts (not for people).
    Run {
        config: PathBuf,
    },
}

/// The service's name for a store: one service per store, so a PC can hold several.
pub fn service_name(store_id: &str) -> String {
    format!("ChainNode-{store_id}")
}

/// Runs `action` against Windows' service manager.
#[cfg(windows)]
pub fn service(action: ServiceAction) -> anyhow::Result<()> {
    service::act(action)
}

/// Elsewhere there is no Windows service manager: says what to use instead.
#[cfg(not(windows))]
pub fn service(action: ServiceAction) -> anyhow::Result<()> {
    anyhow::bail!(
        "`node service` manages a Windows service and this is not Windows ({action:?}): on \
         Linux, run `node run --config node.toml` under systemd (README, \"Run it as a \
         service\")"
    )
}

#[cfg(windows)]
mod service {
    use std::ffi::{OsStr, OsString};
    use std::sync::OnceLock;
    use std::time::Duration;

    use anyhow::Context;
    use windows_service::service::{
        ServiceAccess, ServiceControl, ServiceControlAccept, ServiceErrorControl, ServiceExitCode,
        ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
    };
    use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
    use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
    use windows_service::{define_windows_service, service_dispatcher};

    use super::{ServiceAction, service_name};
    use crate::Config;

    /// The configuration the service manager started this process for (`Run`).
    static CONFIG: OnceLock<std::path::PathBuf> = OnceLock::new();
    /// Its service name, which the dispatcher and the control handler must agree on.
    static NAME: OnceLock<String> = OnceLock::new();

    pub fn act(action: ServiceAction) -> anyhow::Result<()> {
        match action {
            ServiceAction::Install { config } => install(&config),
            ServiceAction::Uninstall { store_id } => uninstall(&service_name(&store_id)),
            ServiceAction::Start { store_id } => {
                let service = manager(ServiceManagerAccess::CONNECT)?
                    .open_service(service_name(&store_id), ServiceAccess::START)?;
                service.start(&[] as &[&OsStr])?;
                Ok(())
            }
            ServiceAction::Stop { store_id } => {
                let service = manager(ServiceManagerAccess::CONNECT)?
                    .open_service(service_name(&store_id), ServiceAccess::STOP)?;
                service.stop()?;
                Ok(())
            }
            ServiceAction::Run { config } => {
                let config = std::path::absolute(&config)?;
                let store_id = Config::load(&config)?.store_id;
                let _ = NAME.set(service_name(&store_id));
                let _ = CONFIG.set(config);
                service_dispatcher::start(service_name(&store_id), ffi_service_main)
                    .context("starting as a service (run by the service manager, not by hand)")
            }
        }
    }

    fn manager(access: ServiceManagerAccess) -> anyhow::Result<ServiceManager> {
        ServiceManager::local_computer(None::<&str>, access)
            .context("opening the service manager (run as an administrator)")
    }

    fn install(config: &std::path::Path) -> anyhow::Result<()> {
        let config = std::path::absolute(config)?;
        let store_id = Config::load(&config)?.store_id;
        let info = ServiceInfo {
            name: OsString::from(service_name(&store_id)),
            display_name: OsString::from(format!("连锁门店节点 {store_id} (chain store node)")),
            service_type: ServiceType::OWN_PROCESS,
            start_type: ServiceStartType::AutoStart,
            error_control: ServiceErrorControl::Normal,
            executable_path: std::env::current_exe()?,
            launch_arguments: vec![
                OsString::from("service"),
                OsString::from("run"),
                OsString::from("--config"),
                config.into_os_string(),
            ],
            dependencies: vec![],
            account_name: None, // LocalSystem
            account_password: None,
        };
        let manager =
            manager(ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE)?;
        let service = manager.create_service(&info, ServiceAccess::CHANGE_CONFIG)?;
        service.set_description("门店收银、会员与积分节点：离线可售，联网同步总部")?;
        Ok(())
    }

    fn uninstall(name: &str) -> anyhow::Result<()> {
        let access = ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE;
        let service = manager(ServiceManagerAccess::CONNECT)?.open_service(name, access)?;
        if service.query_status()?.current_state != ServiceState::Stopped {
            service.stop()?;
        }
        service.delete()?;
        Ok(())
    }

    define_windows_service!(ffi_service_main, service_main);

    fn service_main(_arguments: Vec<OsString>) {
        if let Err(e) = run_service() {
            tracing::error!(error = %format!("{e:#}"), "the service stopped on an error");
        }
    }

    fn status(state: ServiceState, exit: u32) -> ServiceStatus {
        ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted: match state {
                ServiceState::Running => {
                    ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN
                }
                _ => ServiceControlAccept::empty(),
            },
            // 0, or the node's own code (3: a damaged store) as the service's.
            exit_code: match exit {
                0 => ServiceExitCode::Win32(0),
                code => ServiceExitCode::ServiceSpecific(code),
            },
            checkpoint: 0,
            wait_hint: Duration::from_secs(30),
            process_id: None,
        }
    }

    /// Runs the node as `node run` would, until the service manager says stop: starting until
    /// it listens, running, stopping while it finishes its writes, stopped with its exit code.
    fn run_service() -> anyhow::Result<()> {
        let name = NAME.get().context("no service name")?.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let stop = std::sync::Mutex::new(Some(stop));
        let handler = move |control| match control {
            ServiceControl::Stop | ServiceControl::Shutdown => {
                if let Some(stop) = stop.lock().ok().and_then(|mut s| s.take()) {
                    let _ = stop.send(());
                }
                ServiceControlHandlerResult::NoError
            }
            ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
            _ => ServiceControlHandlerResult::NotImplemented,
        };
        let handle = service_control_handler::register(&name, handler)?;
        handle.set_service_status(status(ServiceState::StartPending, 0))?;
        let outcome = (move || -> anyhow::Result<()> {
            let config = CONFIG.get().context("no configuration")?.clone();
            // A service starts in the system directory: paths in node.toml are the config's.
            if let Some(dir) = config.parent() {
                std::env::set_current_dir(dir)?;
            }
            let cfg = Config::load(&config)?;
            let running = move |_| {
                let _ = handle.set_service_status(status(ServiceState::Running, 0));
            };
            crate::serve(cfg, running, async move {
                let _ = stopped.await;
                let _ = handle.set_service_status(status(ServiceState::StopPending, 0));
            })
        })();
        let exit = match &outcome {
            Ok(()) => 0,
            Err(e) => u32::from(crate::cli::exit_code_number(e)),
        };
        handle.set_service_status(status(ServiceState::Stopped, exit))?;
        outcome
    }
}
