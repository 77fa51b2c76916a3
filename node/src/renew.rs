//! 证书续期: the store renews its own certificate over the sync session before it runs out
//! (sync version 9). A new key is made here, on the store's PC, and only a certificate signing
//! request goes to headquarters; the certificate that comes back is checked (this store, this
//! key, good for longer than the one it replaces) and installed beside the key, for the next
//! connection. Headquarters' side: `hub::renew`.
//!
//! The key and the certificate are two files, replaced in order: both written under `.new`
//! names and made durable, then the key renamed, then the certificate. A stop between the two
//! renames leaves the new key with the old certificate; `finish_interrupted`, at start, puts the
//! new certificate in place (or drops an unfinished pair whose key was not renamed yet).

use std::path::{Path, PathBuf};

use anyhow::Context;
use protocol::StoreId;
use protocol::sync::UplinkSession;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

use crate::config::SyncConfig;

/// Renew when the certificate has fewer than this many days left (`[sync] renew_days`).
pub const RENEW_DAYS: u32 = 30;

/// One session's renewal: asked at most once, with the key it asked for.
#[derive(Default)]
pub struct Renewal {
    asked: bool,
    key: Option<KeyPair>,
}

impl Renewal {
    /// Once welcomed: asks headquarters for a new certificate if the one in `config.cert` runs
    /// out within `config.renew_days` (and headquarters speaks version 9); whether it asked.
    pub fn start(
        &mut self,
        session: &mut UplinkSession,
        config: &SyncConfig,
        store: &StoreId,
        now_ms: u64,
    ) -> anyhow::Result<bool> {
        if self.asked || !session.renews() || config.renew_days == 0 {
            return Ok(false);
        }
        let expires_ms = crate::uplink::certificate_expiry(&config.cert)?;
        let due = expires_ms < now_ms.saturating_add(u64::from(config.renew_days) * 86_400_000);
        if !due {
            return Ok(false);
        }
        self.asked = true;
        let key = KeyPair::generate().context("making the new key")?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, "Chain HQ");
        name.push(DnType::CommonName, store.as_str());
        params.distinguished_name = name;
        let csr = params.serialize_request(&key)?.der().to_vec();
        session.renew(csr)?;
        self.key = Some(key);
        tracing::info!(
            expires_ms,
            "asking headquarters to renew this store's certificate"
        );
        Ok(true)
    }

    /// Headquarters signed: checks the chain and installs it with the key; when the new
    /// certificate runs out (ms since the epoch).
    pub fn finish(
        &mut self,
        config: &SyncConfig,
        store: &StoreId,
        chain: &[Vec<u8>],
    ) -> anyhow::Result<u64> {
        let key = self
            .key
            .take()
            .context("a certificate came that this session did not ask for")?;
        let expires_ms = check(store, &key, chain, &config.cert)?;
        // A certificate headquarters would refuse never replaces one it accepts.
        crate::store_chain::verify(&config.ca_cert, chain)?;
        install(&config.key, &config.cert, &key, chain)?;
        Ok(expires_ms)
    }
}

/// The new certificate (`chain[0]`) names `store`, holds `key`'s public key, and runs out
/// later than the one in `current`; when it runs out.
fn check(store: &StoreId, key: &KeyPair, chain: &[Vec<u8>], current: &Path) -> anyhow::Result<u64> {
    let leaf = chain.first().context("an empty certificate chain")?;
    let (_, parsed) =
        x509_parser::parse_x509_certificate(leaf).context("parsing the new certificate")?;
    let cn = parsed
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok());
    anyhow::ensure!(
        cn == Some(store.as_str()),
        "the new certificate names {cn:?}, not {store}"
    );
    anyhow::ensure!(
        *parsed.public_key().subject_public_key.data == *key.public_key_raw(),
        "the new certificate is not for the key this store made"
    );
    let expires_ms = u64::try_from(parsed.validity().not_after.timestamp()).unwrap_or(0) * 1000;
    let old = crate::uplink::certificate_expiry(current)?;
    anyhow::ensure!(
        expires_ms > old,
        "the new certificate runs out no later than the one it would replace"
    );
    Ok(expires_ms)
}

fn beside(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".new");
    path.with_file_name(name)
}

/// Writes the key and the chain under `.new` names, durably, then renames the key, then the
/// certificate (see the module's note).
fn install(
    key_path: &Path,
    cert_path: &Path,
    key: &KeyPair,
    chain: &[Vec<u8>],
) -> anyhow::Result<()> {
    let pems: Vec<pem::Pem> = chain
        .iter()
        .map(|der| pem::Pem::new("CERTIFICATE", der.clone()))
        .collect();
    let (new_key, new_cert) = (beside(key_path), beside(cert_path));
    write_durably(&new_key, key.serialize_pem().as_bytes(), true)?;
    write_durably(&new_cert, pem::encode_many(&pems).as_bytes(), false)?;
    std::fs::rename(&new_key, key_path)
        .with_context(|| format!("replacing {}", key_path.display()))?;
    std::fs::rename(&new_cert, cert_path)
        .with_context(|| format!("replacing {}", cert_path.display()))?;
    for dir in [key_path.parent(), cert_path.parent()]
        .into_iter()
        .flatten()
    {
        crate::backup_file::sync_dir(dir)?;
    }
    Ok(())
}

fn write_durably(path: &Path, bytes: &[u8], secret: bool) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()
        .with_context(|| format!("writing {}", path.display()))
}

/// At start: completes a renewal a stop cut between its two renames (the new key in place, the
/// new certificate still beside it), or drops one cut before them.
pub fn finish_interrupted(config: &SyncConfig) -> anyhow::Result<()> {
    let (new_key, new_cert) = (beside(&config.key), beside(&config.cert));
    if !new_cert.exists() {
        let _ = std::fs::remove_file(&new_key);
        return Ok(());
    }
    if new_key.exists() {
        // Neither renamed: the old pair is whole; the new one is dropped.
        std::fs::remove_file(&new_key)?;
        std::fs::remove_file(&new_cert)?;
        tracing::warn!("a certificate renewal was cut off before it was installed: dropped");
        return Ok(());
    }
    // The new key is in place: the certificate beside it follows, if it is that key's (an
    // operator may have enrolled the store again by hand since).
    let key = KeyPair::from_pem(&std::fs::read_to_string(&config.key)?)
        .with_context(|| config.key.display().to_string())?;
    let pem = std::fs::read_to_string(&new_cert)?;
    let leaf = pem::parse(&pem).context("the renewed certificate")?;
    let (_, parsed) =
        x509_parser::parse_x509_certificate(leaf.contents()).context("the renewed certificate")?;
    if *parsed.public_key().subject_public_key.data != *key.public_key_raw() {
        std::fs::remove_file(&new_cert)?;
        tracing::warn!("a renewed certificate for another key was left beside this one: dropped");
        return Ok(());
    }
    std::fs::rename(&new_cert, &config.cert)
        .with_context(|| format!("replacing {}", config.cert.display()))?;
    tracing::warn!("a certificate renewal cut off between its key and its certificate: finished");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("node-renew-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn config(dir: &Path) -> SyncConfig {
        SyncConfig {
            hub: "127.0.0.1:7443".parse().unwrap(),
            more_hubs: Vec::new(),
            hub_name: "hub".into(),
            ca_cert: dir.join("ca.pem"),
            cert: dir.join("store.pem"),
            key: dir.join("store.key"),
            retry_delay_ms_max: 1_000,
            offline_rights_secs: 60,
            renew_days: RENEW_DAYS,
        }
    }

    fn issue(cn: &str, key: &KeyPair, days: i64) -> rcgen::Certificate {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let now = time::OffsetDateTime::now_utc();
        (params.not_before, params.not_after) = (now, now + time::Duration::days(days));
        params.self_signed(key).unwrap()
    }

    #[test]
    fn a_renewal_cut_between_its_renames_is_finished_at_start_and_one_cut_before_is_dropped() {
        let root = dir("cut");
        let config = config(&root);
        let (old, new) = (KeyPair::generate().unwrap(), KeyPair::generate().unwrap());
        std::fs::write(&config.key, old.serialize_pem()).unwrap();
        std::fs::write(&config.cert, issue("S001", &old, 10).pem()).unwrap();
        // Cut after the key was renamed: the certificate follows it.
        std::fs::write(&config.key, new.serialize_pem()).unwrap();
        let renewed = issue("S001", &new, 365).pem();
        std::fs::write(beside(&config.cert), &renewed).unwrap();
        finish_interrupted(&config).unwrap();
        assert_eq!(std::fs::read_to_string(&config.cert).unwrap(), renewed);
        assert!(!beside(&config.cert).exists());
        // Cut before either rename: the pair in place stays.
        let newer = KeyPair::generate().unwrap();
        std::fs::write(beside(&config.key), newer.serialize_pem()).unwrap();
        std::fs::write(beside(&config.cert), issue("S001", &newer, 365).pem()).unwrap();
        finish_interrupted(&config).unwrap();
        assert_eq!(
            std::fs::read_to_string(&config.key).unwrap(),
            new.serialize_pem()
        );
        assert_eq!(std::fs::read_to_string(&config.cert).unwrap(), renewed);
        assert!(!beside(&config.key).exists() && !beside(&config.cert).exists());
        // A certificate for another key left beside (enrolled by hand since): not put in place.
        std::fs::write(beside(&config.cert), issue("S001", &newer, 365).pem()).unwrap();
        finish_interrupted(&config).unwrap();
        assert_eq!(std::fs::read_to_string(&config.cert).unwrap(), renewed);
        assert!(!beside(&config.cert).exists());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_certificate_for_another_store_or_key_is_not_installed() {
        let root = dir("check");
        let s001 = StoreId::parse("S001").unwrap();
        let key = KeyPair::generate().unwrap();
        let current = root.join("store.pem");
        std::fs::write(&current, issue("S001", &key, 10).pem()).unwrap();
        let good = issue("S001", &key, 365);
        assert!(check(&s001, &key, &[good.der().to_vec()], &current).is_ok());
        let other_store = issue("S002", &key, 365);
        let refused = check(&s001, &key, &[other_store.der().to_vec()], &current);
        assert!(refused.unwrap_err().to_string().contains("not S001"));
        let other_key = KeyPair::generate().unwrap();
        let refused = check(&s001, &other_key, &[good.der().to_vec()], &current);
        assert!(refused.unwrap_err().to_string().contains("not for the key"));
        let shorter = issue("S001", &key, 5);
        let refused = check(&s001, &key, &[shorter.der().to_vec()], &current);
        assert!(refused.unwrap_err().to_string().contains("no later"));
        assert!(check(&s001, &key, &[], &current).is_err());
        let _ = std::fs::remove_dir_all(&root);
    }
}
