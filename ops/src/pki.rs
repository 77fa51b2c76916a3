//! Headquarters' certificate authority: the CA, the hub's certificate, and store enrolment (a
//! certificate whose common name is the store id, plus a ready-to-run node configuration).

use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

pub const CA_CERT: &str = "ca.pem";
pub const CA_KEY: &str = "ca.key";
pub const HUB_CERT: &str = "hub.pem";
pub const HUB_KEY: &str = "hub.key";
/// The store-issuing CA, under the root: headquarters renews store certificates with it.
pub const STORES_CA_CERT: &str = "stores-ca.pem";
pub const STORES_CA_KEY: &str = "stores-ca.key";

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Chain HQ");
    dn.push(DnType::CommonName, common_name);
    dn
}

/// Creates the CA in `dir` (refuses to overwrite one).
pub fn create_ca(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    anyhow::ensure!(
        !dir.join(CA_KEY).exists(),
        "a CA exists already in {}",
        dir.display()
    );
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = name("Chain HQ CA");
    let now = time::OffsetDateTime::now_utc().replace_nanosecond(0)?;
    (params.not_before, params.not_after) = (now, now + time::Duration::days(20 * 365));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key)?;
    write(&dir.join(CA_CERT), &cert.pem())?;
    write(&dir.join(CA_KEY), &key.serialize_pem())
}

/// Creates the store-issuing CA in `dir`, under the root there (refuses to overwrite one): it
/// may issue client certificates only (its extended key usage), one level deep, so the hub that
/// holds its key to renew store certificates can never make a server certificate stores trust.
pub fn create_store_issuer(dir: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        !dir.join(STORES_CA_KEY).exists(),
        "a store-issuing CA exists already in {}",
        dir.display()
    );
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = name("Chain HQ store issuer");
    let now = time::OffsetDateTime::now_utc().replace_nanosecond(0)?;
    (params.not_before, params.not_after) = (now, now + time::Duration::days(10 * 365));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &issuer(dir)?)?;
    write(&dir.join(STORES_CA_CERT), &cert.pem())?;
    write(&dir.join(STORES_CA_KEY), &key.serialize_pem())
}

fn issuer(dir: &Path) -> anyhow::Result<Issuer<'static, KeyPair>> {
    let key = KeyPair::from_pem(&read(&dir.join(CA_KEY))?).context("the CA key")?;
    Issuer::from_ca_cert_pem(&read(&dir.join(CA_CERT))?, key).context("the CA certificate")
}

/// What a certificate is for.
pub enum Role<'a> {
    /// The hub: a server certificate for these names (DNS names or IP addresses).
    Hub { names: &'a [&'a str] },
    /// A store: a client certificate whose common name is the store id.
    Store { store_id: &'a str },
}

/// How long a store's certificate is good for by default: a year (it renews before then).
pub const STORE_DAYS: u32 = 365;
/// The hub's: three years.
pub const HUB_DAYS: u32 = 3 * 365;

/// How long a certificate is good for, from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    For(std::time::Duration),
    Days(u32),
    /// Out of date already (for tests of refusal).
    Expired,
}

/// Issues a certificate signed by the CA in `ca_dir`, good from now for `lifetime`; returns
/// (certificate PEM, key PEM).
pub fn issue(
    ca_dir: &Path,
    role: Role<'_>,
    lifetime: Lifetime,
) -> anyhow::Result<(String, String)> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    match role {
        Role::Hub { names } => {
            params.distinguished_name = name(names.first().copied().unwrap_or("hub"));
            for n in names {
                params
                    .subject_alt_names
                    .push(match n.parse::<std::net::IpAddr>() {
                        Ok(ip) => SanType::IpAddress(ip),
                        Err(_) => SanType::DnsName((*n).try_into()?),
                    });
            }
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        }
        Role::Store { store_id } => {
            protocol::StoreId::parse(store_id)?;
            params.distinguished_name = name(store_id);
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
    }
    // From this second: a revocation refuses what was issued before it, never after.
    let now = time::OffsetDateTime::now_utc().replace_nanosecond(0)?;
    (params.not_before, params.not_after) = match lifetime {
        Lifetime::For(d) => (now, now + d),
        Lifetime::Days(days) => (now, now + time::Duration::days(i64::from(days))),
        Lifetime::Expired => (
            rcgen::date_time_ymd(2020, 1, 1),
            rcgen::date_time_ymd(2021, 1, 1),
        ),
    };
    let cert = params.signed_by(&key, &issuer(ca_dir)?)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Creates the CA, the store-issuing CA and the hub's certificate in `dir`.
pub fn init(dir: &Path, hub_names: &[&str]) -> anyhow::Result<()> {
    create_ca(dir)?;
    create_store_issuer(dir)?;
    let (cert, key) = issue(
        dir,
        Role::Hub { names: hub_names },
        Lifetime::Days(HUB_DAYS),
    )?;
    write(&dir.join(HUB_CERT), &cert)?;
    write(&dir.join(HUB_KEY), &key)
}

/// Writes a hub configuration using the certificates in `pki`.
pub fn hub_config(pki: &Path, data_dir: PathBuf) -> anyhow::Result<hub::Config> {
    let pki = std::path::absolute(pki)?;
    Ok(hub::Config {
        data_dir,
        ca_cert: pki.join(CA_CERT),
        cert: pki.join(HUB_CERT),
        key: pki.join(HUB_KEY),
        renewal: pki
            .join(STORES_CA_KEY)
            .exists()
            .then(|| hub::renew::RenewalConfig {
                issuer_cert: pki.join(STORES_CA_CERT),
                issuer_key: pki.join(STORES_CA_KEY),
                days: STORE_DAYS,
            }),
        ..hub::Config::default()
    })
}

/// Enrols a store: issues its certificate (good for `STORE_DAYS`) into `out` and writes
/// `out/node.toml`, ready to run.
pub fn enrol(
    pki: &Path,
    store_id: &str,
    hub: std::net::SocketAddr,
    hub_name: &str,
    out: &Path,
) -> anyhow::Result<node::Config> {
    enrol_for(
        pki,
        store_id,
        hub,
        hub_name,
        out,
        Lifetime::Days(STORE_DAYS),
    )
}

/// `enrol`, with a certificate good for `lifetime`.
pub fn enrol_for(
    pki: &Path,
    store_id: &str,
    hub: std::net::SocketAddr,
    hub_name: &str,
    out: &Path,
    lifetime: Lifetime,
) -> anyhow::Result<node::Config> {
    std::fs::create_dir_all(out)?;
    let out = std::path::absolute(out)?;
    let (cert, key) = issue(pki, Role::Store { store_id }, lifetime)?;
    write(&out.join("store.pem"), &cert)?;
    write(&out.join("store.key"), &key)?;
    std::fs::copy(pki.join(CA_CERT), out.join(CA_CERT)).context("copying the CA certificate")?;
    let config = node::Config {
        store_id: store_id.to_owned(),
        data_dir: out.join("data"),
        sync: Some(node::config::SyncConfig {
            hub,
            more_hubs: Vec::new(),
            hub_name: hub_name.to_owned(),
            ca_cert: out.join(CA_CERT),
            cert: out.join("store.pem"),
            key: out.join("store.key"),
            retry_delay_ms_max: 30_000,
            offline_rights_secs: protocol::lease::DEFAULT_LEASE_MS / 1000,
            renew_days: node::renew::RENEW_DAYS,
        }),
        ..node::Config::default()
    };
    write(&out.join("node.toml"), &config.to_toml())?;
    Ok(config)
}
