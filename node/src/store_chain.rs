//! Whether a store's certificate chain passes the check headquarters' TLS makes of it: a chain
//! to the chain's CA, for client authentication, good now. The store asks it of a renewed
//! certificate before putting it in place; headquarters, of its store-issuing CA at start
//! (compiled into the hub by path, like `backup_file`).

use std::path::Path;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};

/// Checks `chain` (DER, the store's certificate first) against the CA certificates in `ca`.
pub fn verify(ca: &Path, chain: &[Vec<u8>]) -> anyhow::Result<()> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).with_context(|| ca.display().to_string())? {
        roots.add(cert?)?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
            .build()?;
    let (leaf, issuers) = chain.split_first().context("an empty certificate chain")?;
    let issuers: Vec<CertificateDer<'static>> = issuers
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    verifier
        .verify_client_cert(
            &CertificateDer::from(leaf.clone()),
            &issuers,
            UnixTime::now(),
        )
        .context("the certificate does not chain to the chain's CA")?;
    Ok(())
}
