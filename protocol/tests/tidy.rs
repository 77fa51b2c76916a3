//! Keeps `protocol` pure (ARCHITECTURE.md, invariant 6): no IO crates in its manifest and no
//! clock, randomness, file or socket calls in its source. clippy.toml forbids the same calls;
//! this test also catches what clippy cannot see, such as a dependency added to Cargo.toml.

use std::path::Path;

const FORBIDDEN_CRATES: &[&str] = &[
    "tokio",
    "sled",
    "quinn",
    "rustls",
    "axum",
    "hyper",
    "getrandom",
    "rand",
    "socket2",
    "reqwest",
    "ureq",
];
const FORBIDDEN_CALLS: &[&str] = &[
    "SystemTime",
    "Instant::now",
    "std::fs",
    "std::net",
    "std::thread",
    "thread_rng",
    "rand::",
    "getrandom",
    "ActorId::random",
    "Utc::now",
    "Local::now",
    "std::env",
];

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn manifest_has_no_io_crates() {
    let manifest = std::fs::read_to_string(manifest_dir().join("Cargo.toml")).unwrap();
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .unwrap()
        .split("\n[")
        .next()
        .unwrap();
    for line in deps.lines() {
        let name = line.split(['=', '.']).next().unwrap().trim();
        assert!(
            !FORBIDDEN_CRATES.contains(&name),
            "protocol must not depend on {name}"
        );
    }
}

#[test]
fn source_reads_no_clock_and_does_no_io() {
    let mut checked = 0;
    let mut dirs = vec![manifest_dir().join("src")];
    let mut files = Vec::new();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let body = text.split("#[cfg(test)]").next().unwrap();
        for call in FORBIDDEN_CALLS {
            assert!(
                !body.contains(call),
                "{} uses {call}: protocol is pure",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(checked >= 5, "tidy found only {checked} source files");
}
