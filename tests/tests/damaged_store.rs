//! A node process on a store sled left behind damaged: what a full disk leaves (an empty
//! snapshot being written) it clears and starts with every sale; a store it cannot trust it
//! refuses at start, with exit code 3 and a message naming the directory and the safe action,
//! and `node verify` does the same.
#![allow(clippy::unwrap_used)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use serde_json::json;
use tests::{NodeProcess, TempDir};

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_store-node"))
}

/// A stopped node's store holding the sales it acknowledged, and their ids.
fn store_with_sales(dir: &TempDir) -> (PathBuf, Vec<String>) {
    let config_path = dir.path().join("node.toml");
    let config = node::Config {
        data_dir: dir.path().join("data"),
        open_before_logins: true,
        ..node::Config::default()
    };
    std::fs::write(&config_path, config.to_toml()).unwrap();
    let mut sales = Vec::new();
    // Two runs, so sled has written a snapshot and has a log past it to replay.
    for run in 0..2 {
        let node = NodeProcess::spawn(binary(), &config_path);
        for n in 0..20 {
            let body = json!({"amount": {"amount": format!("{}.50", n + 1)}}).to_string();
            let key = format!("damaged-store-{run}-{n:03}");
            let answer = node
                .client
                .post("/api/v1/checkouts/quick", Some(&key), &body);
            assert_eq!(answer.status, 201, "{:?}", answer.body);
            sales.push(answer.body["sale_id"].as_str().unwrap().to_owned());
        }
        node.kill();
    }
    (config_path, sales)
}

/// `node <command> --config <config>` run to its end: its exit code and stderr.
fn run_to_end(command: &str, config_path: &Path) -> (Option<i32>, String) {
    let mut args = vec![
        OsStr::new(command),
        OsStr::new("--config"),
        config_path.as_os_str(),
    ];
    if command == "run" {
        args.extend([OsStr::new("--listen"), OsStr::new("127.0.0.1:0")]);
    }
    tests::run_to_end(binary(), &args)
}

#[test]
fn an_empty_snapshot_left_by_a_full_disk_is_cleared_and_every_sale_served() {
    let dir = TempDir::new("full-disk");
    let (config_path, sales) = store_with_sales(&dir);
    let data = dir.path().join("data");
    let newest = std::fs::read_dir(&data)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            u64::from_str_radix(name.strip_prefix("snap.")?, 16).ok()
        })
        .max()
        .unwrap();
    let leftover = data.join(format!("snap.{:016X}.generating", newest + 0x1_0000));
    std::fs::write(&leftover, b"").unwrap();
    let node = NodeProcess::spawn(binary(), &config_path);
    for sale in &sales {
        assert_eq!(
            node.client.get(&format!("/api/v1/sales/{sale}")).status,
            200
        );
    }
    assert!(!leftover.exists());
}

#[test]
fn a_store_that_lost_durable_writes_is_refused_at_start_with_exit_code_3() {
    let dir = TempDir::new("damaged");
    let (config_path, _) = store_with_sales(&dir);
    // The disk hands back zeros for sled's log: every sale in it is gone.
    let log = dir.path().join("data").join("db");
    let len = std::fs::metadata(&log).unwrap().len();
    std::fs::write(&log, vec![0u8; len as usize]).unwrap();
    for command in ["run", "verify"] {
        let (code, stderr) = run_to_end(command, &config_path);
        assert_eq!(code, Some(3), "node {command}: {stderr}");
        assert!(stderr.contains("is damaged"), "{stderr}");
        assert!(stderr.contains("move the directory aside"), "{stderr}");
        assert!(
            stderr.contains(&dir.path().join("data").display().to_string()),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
