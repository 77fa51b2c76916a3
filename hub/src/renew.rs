//! 证书续期: headquarters signs a store's new certificate from the request the store sends over
//! its session (sync version 9). The store makes the key on its own PC and sends only a
//! certificate signing request (PKCS #10), whose signature proves it holds that key: the key
//! never leaves the store.
//!
//! Headquarters signs with the store-issuing CA (`ops pki init` makes it: an intermediate under
//! the chain's root, allowed to issue client certificates only, so a hub's copy of its key can
//! never make a server certificate the stores would trust); the chain's root key stays where
//! `ops pki` keeps it. Whatever the request asks, the certificate names the store of the
//! session, is for client authentication only, and is good for the configured days from now.
//! A revoked store never gets this far: its session is refused at the hello.

use std::path::{Path, PathBuf};

use anyhow::Context;
use protocol::StoreId;
use rcgen::{
    CertificateSigningRequestParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateSigningRequestDer};
use serde::{Deserialize, Serialize};

/// The hub's `[renewal]`: the store-issuing CA's certificate and key, and how long a renewed
/// certificate is good for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewalConfig {
    pub issuer_cert: PathBuf,
    pub issuer_key: PathBuf,
    /// Days a renewed store certificate is good for.
    #[serde(default = "default_days")]
    pub days: u32,
}

fn default_days() -> u32 {
    365
}

/// The longest lifetime a renewed certificate may be given (a config asking more is refused).
pub const DAYS_MAX: u32 = 3 * 366;
/// The shortest: stores renew 30 days before the end (`renew_days`), so a shorter lifetime
/// would have them renew at every connection.
pub const DAYS_MIN: u32 = 60;

/// Signs renewals with the store-issuing CA.
pub struct Renewer {
    issuer: Issuer<'static, KeyPair>,
    issuer_der: CertificateDer<'static>,
    /// When the store-issuing CA runs out: no certificate it signs outlives it.
    issuer_ends: time::OffsetDateTime,
    days: u32,
}

impl Renewer {
    /// Loads the store-issuing CA and checks it before any store is given a certificate by it:
    /// a certificate it signs must pass the same check headquarters' TLS makes of a store's
    /// (a chain to the chain's CA in `ca_cert`, client authentication), so a wrong `[renewal]`
    /// stops the hub at start instead of locking out every store that renews.
    pub fn load(config: &RenewalConfig, ca_cert: &Path) -> anyhow::Result<Self> {
        anyhow::ensure!(
            (DAYS_MIN..=DAYS_MAX).contains(&config.days),
            "renewal.days: {DAYS_MIN} to {DAYS_MAX}"
        );
        let read = |path: &Path| {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
        };
        let key = KeyPair::from_pem(&read(&config.issuer_key)?)
            .with_context(|| format!("the key in {}", config.issuer_key.display()))?;
        let pem = read(&config.issuer_cert)?;
        let issuer = Issuer::from_ca_cert_pem(&pem, key)
            .with_context(|| format!("the certificate in {}", config.issuer_cert.display()))?;
        let issuer_der = CertificateDer::from_pem_slice(pem.as_bytes())
            .with_context(|| format!("the certificate in {}", config.issuer_cert.display()))?;
        let (_, parsed) = x509_parser::parse_x509_certificate(&issuer_der)
            .with_context(|| format!("the certificate in {}", config.issuer_cert.display()))?;
        let issuer_ends =
            time::OffsetDateTime::from_unix_timestamp(parsed.validity().not_after.timestamp())?;
        let renewer = Self {
            issuer,
            issuer_der,
            issuer_ends,
            days: config.days,
        };
        // A certificate for a probe, with a key of its own, as a store would ask.
        let probe = StoreId::parse("S000")?;
        let key = KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, probe.as_str());
        let csr = params.serialize_request(&key)?;
        let now = time::OffsetDateTime::now_utc();
        let chain = renewer
            .sign(&probe, csr.der(), now)
            .map_err(anyhow::Error::msg)?;
        crate::store_chain::verify(ca_cert, &chain).with_context(|| {
            format!(
                "{} does not issue store certificates headquarters accepts (is it the \
                 store-issuing CA under {}, with its own key?)",
                config.issuer_cert.display(),
                ca_cert.display()
            )
        })?;
        Ok(renewer)
    }

    /// The new certificate of `store` for the key in `csr` (DER), good from `now` for the
    /// configured days, with the issuer's after it; or why not.
    pub fn sign(
        &self,
        store: &StoreId,
        csr: &[u8],
        now: time::OffsetDateTime,
    ) -> Result<Vec<Vec<u8>>, String> {
        let mut request = CertificateSigningRequestParams::from_der(
            &CertificateSigningRequestDer::from(csr.to_vec()),
        )
        .map_err(|e| format!("the certificate request cannot be used: {e}"))?;
        let asked = match request.params.distinguished_name.get(&DnType::CommonName) {
            Some(rcgen::DnValue::Utf8String(cn)) => cn.as_str(),
            Some(rcgen::DnValue::PrintableString(cn)) => cn.as_str(),
            _ => "",
        };
        if asked != store.as_str() {
            return Err(format!(
                "the certificate request names {asked:?}, not this store ({store})"
            ));
        }
        let params = &mut request.params;
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, "Chain HQ");
        name.push(DnType::CommonName, store.as_str());
        params.distinguished_name = name;
        params.subject_alt_names.clear();
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let now = now
            .replace_nanosecond(0)
            .map_err(|e| format!("the time: {e}"))?;
        let ends = (now + time::Duration::days(i64::from(self.days))).min(self.issuer_ends);
        if ends <= now {
            return Err("the store-issuing CA has run out: renew it with ops pki".to_owned());
        }
        (params.not_before, params.not_after) = (now, ends);
        let cert = request
            .signed_by(&self.issuer)
            .map_err(|e| format!("signing: {e}"))?;
        Ok(vec![cert.der().to_vec(), self.issuer_der.to_vec()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams};

    /// A store-issuing CA in a fresh directory, and its renewer.
    fn renewer(label: &str) -> (Renewer, PathBuf) {
        let dir = std::env::temp_dir().join(format!("hub-renew-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "Chain HQ store issuer");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let now = time::OffsetDateTime::now_utc();
        (params.not_before, params.not_after) = (now, now + time::Duration::days(3650));
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join("issuer.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("issuer.key"), key.serialize_pem()).unwrap();
        let config = RenewalConfig {
            issuer_cert: dir.join("issuer.pem"),
            issuer_key: dir.join("issuer.key"),
            days: 365,
        };
        let renewer = Renewer::load(&config, &dir.join("issuer.pem")).unwrap();
        (renewer, dir)
    }

    fn request(common_name: &str, key: &KeyPair) -> Vec<u8> {
        let mut params = CertificateParams::new(vec!["evil.example".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.serialize_request(key).unwrap().der().to_vec()
    }

    #[test]
    fn a_renewal_names_the_sessions_store_for_its_key_and_nothing_more() {
        let (renewer, dir) = renewer("sign");
        let s001 = StoreId::parse("S001").unwrap();
        let key = KeyPair::generate().unwrap();
        let now = time::OffsetDateTime::from_unix_timestamp(1_796_436_000).unwrap();
        let chain = renewer.sign(&s001, &request("S001", &key), now).unwrap();
        assert_eq!(chain.len(), 2);
        let (_, leaf) = x509_parser::parse_x509_certificate(&chain[0]).unwrap();
        let (_, issuer) = x509_parser::parse_x509_certificate(&chain[1]).unwrap();
        leaf.verify_signature(Some(issuer.public_key())).unwrap();
        assert_eq!(
            &*leaf.public_key().subject_public_key.data,
            key.public_key_raw()
        );
        let cn = leaf.subject().iter_common_name().next().unwrap();
        assert_eq!(cn.as_str().unwrap(), "S001");
        assert!(!leaf.is_ca(), "the request asked to be a CA");
        let names = leaf.subject_alternative_name().unwrap();
        assert!(names.is_none(), "the request asked for a DNS name");
        let eku = leaf.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        let validity = leaf.validity();
        assert_eq!(validity.not_before.timestamp(), 1_796_436_000);
        assert_eq!(
            validity.not_after.timestamp() - validity.not_before.timestamp(),
            365 * 86_400
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_request_for_another_store_or_not_a_request_is_refused() {
        let (renewer, dir) = renewer("refuse");
        let s001 = StoreId::parse("S001").unwrap();
        let key = KeyPair::generate().unwrap();
        let now = time::OffsetDateTime::from_unix_timestamp(1_796_436_000).unwrap();
        let other = renewer.sign(&s001, &request("S002", &key), now);
        assert!(other.unwrap_err().contains("not this store"));
        let garbage = renewer.sign(&s001, b"not a request", now);
        assert!(garbage.unwrap_err().contains("cannot be used"));
        let mut tampered = request("S001", &key);
        let last = tampered.len() - 1;
        tampered[last] ^= 1; // the signature
        assert!(renewer.sign(&s001, &tampered, now).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_store_issuer_that_does_not_chain_to_the_chains_ca_stops_the_hub_at_start() {
        let (_, dir) = renewer("chain");
        let other = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "another CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        std::fs::write(
            dir.join("other.pem"),
            params.self_signed(&other).unwrap().pem(),
        )
        .unwrap();
        let config = RenewalConfig {
            issuer_cert: dir.join("issuer.pem"),
            issuer_key: dir.join("issuer.key"),
            days: 365,
        };
        let refused = Renewer::load(&config, &dir.join("other.pem"));
        assert!(refused.is_err(), "an issuer under another CA");
        std::fs::write(dir.join("other.key"), other.serialize_pem()).unwrap();
        let wrong_key = RenewalConfig {
            issuer_key: dir.join("other.key"),
            ..config
        };
        assert!(
            Renewer::load(&wrong_key, &dir.join("issuer.pem")).is_err(),
            "another key"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
