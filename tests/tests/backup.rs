//! Backups of a store's data, with real processes: one taken while the store sells, restored
//! on another path after the store sold on, takes back from headquarters what headquarters
//! acknowledged after it (never selling under a number twice); a backup cut by a kill -9 leaves
//! no file under a backup's name that does not check out. Headquarters' backup, taken while a
//! store sells, restored after its disk is lost: the store carries on and headquarters holds its
//! whole log again.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use serde_json::{Value, json};
use tests::chain::{
    Chain, log_len, quick_sale, register, settled, sync_status, top_up, wait_online,
};
use tests::{bins, eventually};

fn wallet(c: &tests::Client, member: &str) -> Value {
    c.get(&format!("/api/v1/members/{member}/wallet")).body
}

#[test]
fn an_older_backup_restored_on_another_path_takes_the_rest_back_from_headquarters() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    let config = chain.enrol("S001", hub.sync);
    let a = chain.node("S001");
    wait_online(&[&a.client]);
    let member = register(&a.client, "register-1", "王芳", "13800000001");
    top_up(&a.client, "top-up-0001", &member, "100.00");
    for n in 0..3 {
        let paid_by = (n == 1).then_some(member.as_str());
        assert_eq!(
            quick_sale(&a.client, &format!("before-{n:04}"), "10.00", paid_by).status,
            201
        );
    }
    let taken = a.client.post("/api/v1/backups", None, "{}");
    assert_eq!(taken.status, 201, "{:?}", taken.body);
    let file = taken.body["file"].as_str().unwrap().to_owned();
    let in_backup = taken.body["log_len"].as_u64().unwrap();
    let listed = a.client.get("/api/v1/backups").body;
    assert_eq!(listed["backups"][0]["file"], json!(file), "{listed}");

    // The store sells on after the backup; then its PC's disk is lost.
    for n in 0..3 {
        let paid_by = (n == 0).then_some(member.as_str());
        assert_eq!(
            quick_sale(&a.client, &format!("after-{n:04}"), "7.00", paid_by).status,
            201
        );
    }
    let written = settled(&hub.client, &a.client, "S001");
    assert!(written > in_backup);
    let before = wallet(&a.client, &member);
    a.kill();
    std::fs::remove_dir_all(chain.store_data("S001")).unwrap();

    // Restored on another path (the config says where), from the backup.
    let elsewhere = chain.dir.path().join("new-disk").join("data");
    let mut cfg = node::Config::load(&config).unwrap();
    cfg.data_dir = elsewhere.clone();
    std::fs::write(&config, cfg.to_toml()).unwrap();
    let restore = |from: &str| {
        tests::run_to_end(
            &bins!().node,
            &[
                "restore".as_ref(),
                "--config".as_ref(),
                config.as_os_str(),
                "--from".as_ref(),
                from.as_ref(),
            ],
        )
    };
    let (code, out) = restore(&file);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = restore(&file);
    assert_ne!(code, Some(0), "a restore over data is refused");
    assert!(out.contains("holds data"), "{out}");

    let a = chain.node("S001");
    eventually(
        30,
        "the store to take back what it sold after the backup",
        || {
            (sync_status(&a.client)["restore_to"].is_null() && log_len(&a.client) == written)
                .then_some(())
        },
    );
    assert_eq!(wallet(&a.client, &member), before);
    // A sale from before the backup is answered from its record; one from after is not made
    // again either.
    let again = quick_sale(&a.client, "before-0001", "10.00", Some(&member));
    assert!(again.status < 300, "{:?}", again.body);
    let again = quick_sale(&a.client, "after-0000", "7.00", Some(&member));
    assert_eq!(again.code(), "recorded_before_restore", "{:?}", again.body);
    let next = quick_sale(&a.client, "next-0001", "3.00", None);
    assert_eq!(
        next.body["seq"].as_u64(),
        Some(written + 1),
        "{:?}",
        next.body
    );
    settled(&hub.client, &a.client, "S001");
    a.kill();
    hub.kill();
    chain.verify("S001");
    chain.assert_hub_holds_log_in("S001", &elsewhere);
}

#[test]
fn a_backup_cut_by_a_kill_leaves_no_backup_that_does_not_check_out() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    chain.enrol("S001", hub.sync);
    let backups = chain.dir.path().join("S001").join("backups");
    for round in 0..3 {
        let a = chain.node("S001");
        for n in 0..100 {
            let key = format!("round-{round}-{n:04}");
            assert_eq!(quick_sale(&a.client, &key, "1.00", None).status, 201);
        }
        let client = a.client.clone();
        let taking = std::thread::spawn(move || client.try_post("/api/v1/backups", None, "{}"));
        std::thread::sleep(std::time::Duration::from_millis(5 * round));
        a.kill();
        let _ = taking.join();
        for entry in std::fs::read_dir(&backups).into_iter().flatten() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|x| x == "backup") {
                node::backup::check(&path).unwrap();
            }
        }
    }
    // Restarted, the store is whole and its next backup clears what a kill left unfinished.
    let a = chain.node("S001");
    assert_eq!(log_len(&a.client), 300);
    let taken = a.client.post("/api/v1/backups", None, "{}");
    assert_eq!(taken.status, 201, "{:?}", taken.body);
    let unfinished = std::fs::read_dir(&backups)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "partial")
        })
        .count();
    assert_eq!(unfinished, 0);
    a.kill();
    hub.kill();
    chain.verify("S001");
}

#[test]
fn headquarters_backed_up_while_a_store_sells_is_restored_and_the_store_carries_on() {
    // Headquarters' own backups are sled's (on PostgreSQL they are the database's).
    let chain = Chain::on_sled(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    chain.enrol("S001", hub.sync);
    let a = chain.node("S001");
    wait_online(&[&a.client]);
    let member = register(&a.client, "register-1", "王芳", "13800000001");
    top_up(&a.client, "top-up-0001", &member, "100.00");
    assert_eq!(
        quick_sale(&a.client, "before-0001", "10.00", Some(&member)).status,
        201
    );
    settled(&hub.client, &a.client, "S001");

    // Cash sales go on while headquarters takes its backup (its writes wait for the walk).
    let client = a.client.clone();
    let selling = std::thread::spawn(move || {
        for n in 0..200 {
            let key = format!("during-{n:04}");
            assert_eq!(quick_sale(&client, &key, "1.00", None).status, 201);
        }
    });
    let taken = hub.client.post("/api/v1/backups", None, "{}");
    assert_eq!(taken.status, 201, "{:?}", taken.body);
    assert_eq!(taken.body["stores"], json!(1), "{:?}", taken.body);
    assert_eq!(taken.body["members"], json!(1), "{:?}", taken.body);
    let file = taken.body["file"].as_str().unwrap().to_owned();
    selling.join().unwrap();
    let listed = hub.client.get("/api/v1/backups").body;
    assert_eq!(listed["backups"][0]["file"], json!(file), "{listed}");
    let written = settled(&hub.client, &a.client, "S001");

    // Headquarters' disk is lost; a new one is restored from the backup.
    let sync = hub.sync;
    hub.kill();
    let lost = chain.dir.path().join("hub-data.lost");
    std::fs::rename(chain.hub_data(), &lost).unwrap();
    let restore = || {
        tests::run_to_end(
            &bins!().hub,
            &[
                "restore".as_ref(),
                "--config".as_ref(),
                chain.hub_config().as_os_str(),
                "--from".as_ref(),
                file.as_ref(),
            ],
        )
    };
    let (code, out) = restore();
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = restore();
    assert_ne!(code, Some(0), "a restore over data is refused");
    assert!(out.contains("holds data"), "{out}");

    // The store sends again what the backup lacks, and sells on, by stored value too.
    let hub = chain.hub(sync);
    assert_eq!(
        tests::chain::hub_caught_up(&hub.client, &a.client, "S001", 30),
        written
    );
    let after = quick_sale(&a.client, "after-0001", "5.00", Some(&member));
    assert_eq!(after.status, 201, "{:?}", after.body);
    settled(&hub.client, &a.client, "S001");
    let total = |c: &tests::Client| wallet(c, &member)["stored_value"]["total"]["amount"].clone();
    assert_eq!(total(&hub.client), json!("85.00"));
    assert_eq!(total(&a.client), json!("85.00"));
    a.kill();
    hub.kill();
    chain.verify_hub();
    chain.assert_hub_holds_store_log("S001");
}
