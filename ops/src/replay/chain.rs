//! The chain a replay runs: certificates, the hub, and the stores as a process each or
//! hosted in one (`node host`), each child killed when dropped.

use super::*;

/// How to start the node and the hub: a program and the arguments before its own (`ops` runs
/// itself as `ops node …`; a test passes the binaries cargo built).
#[derive(Debug, Clone)]
pub struct Launcher {
    pub node: (PathBuf, Vec<String>),
    pub hub: (PathBuf, Vec<String>),
}

impl Launcher {
    /// This `ops` binary, as `ops node …` and `ops hub …`.
    pub fn this_binary() -> anyhow::Result<Self> {
        let me = std::env::current_exe()?;
        Ok(Self {
            node: (me.clone(), vec!["node".into()]),
            hub: (me, vec!["hub".into()]),
        })
    }
}

/// A child process, killed when dropped.
pub struct Proc(Child);

impl Proc {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

/// CPU time process `pid` has used so far (all threads, user + system), from
/// `/proc/<pid>/stat` (clock ticks of 1/100 s, Linux's `USER_HZ`); `None` off Linux or once
/// the process is gone.
pub fn cpu_seconds_of(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
    let (_, after) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some((ticks(11)? + ticks(12)?) as f64 / 100.0)
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns `command` with its output piped (logs at `warn` to this process's stderr), so the
/// lines it announces on stdout can be read; `drain` then keeps the pipe from filling.
fn spawn_announcing(mut command: Command) -> anyhow::Result<(Proc, BufReader<ChildStdout>)> {
    let program = PathBuf::from(command.get_program());
    let mut child = command
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    let stdout = BufReader::new(child.stdout.take().context("no stdout")?);
    Ok((Proc(child), stdout))
}

/// Keeps reading what a child prints, so it never blocks on a full pipe.
fn drain(mut stdout: BufReader<ChildStdout>) {
    std::thread::spawn(move || {
        let mut sink = String::new();
        while stdout.read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
    });
}

/// Starts `program prefix… run --config <config> <args>` and reads the lines it announces.
pub fn start(
    (program, prefix): &(PathBuf, Vec<String>),
    config: &Path,
    args: &[&str],
    announced: &[&str],
) -> anyhow::Result<(Proc, Vec<String>)> {
    let mut command = Command::new(program);
    command
        .args(prefix)
        .args(["run", "--config"])
        .arg(config)
        .args(args);
    let (proc, mut stdout) = spawn_announcing(command)?;
    let mut out = Vec::new();
    for prefix in announced {
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        out.push(
            line.trim()
                .strip_prefix(prefix)
                .with_context(|| format!("{} said {line:?}", config.display()))?
                .to_owned(),
        );
    }
    drain(stdout);
    Ok((proc, out))
}

/// A running chain: the hub and a node per store, stopped when dropped.
pub struct Chain {
    pub hub: String,
    /// Store number → its node's base URL.
    pub nodes: BTreeMap<u32, String>,
    procs: Vec<Proc>,
}

impl Chain {
    /// CPU seconds each of the chain's processes has used so far: headquarters first, then
    /// each store's node (or the one host of them all).
    pub fn cpu_seconds(&self) -> Vec<Option<f64>> {
        self.procs
            .iter()
            .map(|p| cpu_seconds_of(&p.pid().to_string()))
            .collect()
    }
}

pub(super) const TOP_UP_RULE: &str = "充500送50";

/// Starts `program prefix… host --config <each> --any-port` and reads the address each store
/// announces. Returns the process and store id → base URL.
pub fn start_host(
    (program, prefix): &(PathBuf, Vec<String>),
    configs: &[PathBuf],
) -> anyhow::Result<(Proc, BTreeMap<String, String>)> {
    let mut command = Command::new(program);
    command.args(prefix).arg("host");
    for config in configs {
        command.arg("--config").arg(config);
    }
    command.arg("--any-port");
    let (proc, mut stdout) = spawn_announcing(command)?;
    let mut urls = BTreeMap::new();
    loop {
        let mut line = String::new();
        anyhow::ensure!(
            stdout.read_line(&mut line)? > 0,
            "the process hosting the stores stopped after starting {} of {} (its error is above)",
            urls.len(),
            configs.len()
        );
        if line.starts_with("hosting ") {
            break;
        }
        let (store, url) = line
            .trim()
            .split_once(" listening on ")
            .with_context(|| format!("the host said {line:?}"))?;
        urls.insert(store.to_owned(), url.to_owned());
    }
    drain(stdout);
    Ok((proc, urls))
}

/// Certificates, the hub, then every store enrolled and started: a process each, or all in
/// one (`hosted`: `node host`).
pub fn start_chain(
    dir: &Path,
    stores: &[u32],
    launcher: &Launcher,
    hosted: bool,
) -> anyhow::Result<Chain> {
    let pki = dir.join("pki");
    crate::pki::init(&pki, &["hub", "localhost", "127.0.0.1"])?;
    let mut hub_config = crate::pki::hub_config(&pki, std::path::absolute(dir.join("hub"))?)?;
    // A replay of old data drives the API as the stores' own operator.
    hub_config.open_before_logins = true;
    hub_config.http.connections_per_address_max = hub_config.http.connections_max;
    let hub_toml = dir.join("hub.toml");
    std::fs::write(&hub_toml, hub_config.to_toml())?;
    let args = [
        "--sync-listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
    ];
    let (hub, said) = start(
        &launcher.hub,
        &hub_toml,
        &args,
        &["sync on ", "listening on "],
    )?;
    let sync: std::net::SocketAddr = said[0].parse()?;
    let mut procs = vec![hub];
    let mut nodes = BTreeMap::new();
    let mut configs = Vec::new();
    for store in stores {
        let out = dir.join("stores").join(store_id(*store));
        let mut config = crate::pki::enrol(&pki, &store_id(*store), sync, "hub", &out)?;
        config.store_name = format!("门店 {store}");
        config.open_before_logins = true;
        config.http.connections_per_address_max = config.http.connections_max;
        // Ten years back: the data is from 2017.
        config.backdate_days_max = 36_500;
        // Every basket is entered late (补录), which a store manager does.
        config.managers = vec!["replay".into()];
        config.wallet.top_up_rules = vec![node::config::TopUpRuleConfig {
            id: TOP_UP_RULE.into(),
            pay_at_least: Decimal::new(500, 0),
            bonus: Decimal::new(50, 0),
        }];
        let path = out.join("node.toml");
        std::fs::write(&path, config.to_toml())?;
        if hosted {
            configs.push(path);
            continue;
        }
        let (node, said) = start(
            &launcher.node,
            &path,
            &["--listen", "127.0.0.1:0"],
            &["listening on "],
        )?;
        procs.push(node);
        nodes.insert(*store, said[0].clone());
    }
    if !configs.is_empty() {
        let (host, urls) = start_host(&launcher.node, &configs)?;
        procs.push(host);
        for store in stores {
            let url = urls
                .get(&store_id(*store))
                .with_context(|| format!("the host did not start {}", store_id(*store)))?;
            nodes.insert(*store, url.clone());
        }
    }
    Ok(Chain {
        hub: said[1].clone(),
        nodes,
        procs,
    })
}
