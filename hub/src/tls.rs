//! The hub's side of mutual TLS: its certificate, the chain's CA as the only trust anchor for
//! store certificates, and the store id read from an authenticated client certificate.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use protocol::StoreId;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The crypto provider: ring, and nothing else (DESIGN.md).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub fn load_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "no certificate in {}", path.display());
    Ok(certs)
}

pub fn load_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path)
        .with_context(|| format!("reading the private key {}", path.display()))
}

/// Server config for QUIC: TLS 1.3, the sync ALPN, and client certificates required and
/// verified against the chain's CA (unknown issuer or expired certificate: handshake fails).
pub fn server_config(ca: &Path, cert: &Path, key: &Path) -> anyhow::Result<quinn::ServerConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for ca_cert in load_certs(ca)? {
        roots.add(ca_cert).context("adding the CA certificate")?;
    }
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .context("building the client certificate verifier")?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(load_certs(cert)?, load_key(key)?)
        .context("the hub certificate and key do not match")?;
    tls.alpn_protocols = vec![protocol::sync::ALPN.to_vec()];
    // Room to resume the sessions of a few thousand stores, so a reconnect skips certificates.
    tls.session_storage = rustls::server::ServerSessionMemoryCache::new(8192);
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(tls)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
    let mut transport = quinn::TransportConfig::default();
    // Stores ping every 2 s; a store silent for 8 s is gone (and shown as not connected).
    transport.max_idle_timeout(Some(std::time::Duration::from_secs(8).try_into()?));
    // Path MTU probes cost kilobytes per connection and buy little for batches this small.
    transport.mtu_discovery_config(None);
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// A verified store certificate: whom it speaks for, and when it is good (ms since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub store: StoreId,
    pub not_before_ms: u64,
    pub not_after_ms: u64,
}

impl Peer {
    /// Why headquarters will not sync with this certificate at `now_ms`, if it will not:
    /// revoked (issued before the store's revocation) or out of date.
    pub fn refusal(
        &self,
        revocation: Option<&crate::storage::Revocation>,
        now_ms: u64,
    ) -> Option<String> {
        if let Some(r) = revocation.filter(|r| self.not_before_ms < r.at_ms) {
            return Some(format!(
                "headquarters revoked this store's certificate ({}, by {}): enrol the store again",
                r.reason, r.by
            ));
        }
        (now_ms > self.not_after_ms).then(|| {
            let at = protocol::calendar::StoreCalendar::default().local_time(self.not_after_ms);
            format!(
                "this store's certificate ran out at {} (Shanghai time): renew it",
                at.format("%Y-%m-%d %H:%M:%S")
            )
        })
    }
}

/// The store a verified client certificate speaks for, and its validity.
pub fn peer_of(certificate: &CertificateDer<'_>) -> anyhow::Result<Peer> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate)
        .context("parsing the client certificate")?;
    let ms = |t: x509_parser::time::ASN1Time| u64::try_from(t.timestamp()).unwrap_or(0) * 1000;
    Ok(Peer {
        store: store_of(certificate)?,
        not_before_ms: ms(parsed.validity().not_before),
        not_after_ms: ms(parsed.validity().not_after),
    })
}

/// The store a verified client certificate speaks for: its subject's common name.
pub fn store_of(certificate: &CertificateDer<'_>) -> anyhow::Result<StoreId> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate)
        .context("parsing the client certificate")?;
    let cn = parsed
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .context("the client certificate has no common name")?;
    let store = StoreId::parse(cn).with_context(|| format!("certificate common name {cn:?}"))?;
    anyhow::ensure!(
        store != StoreId::hq(),
        "a store certificate may not claim HQ"
    );
    Ok(store)
}

/// A UDP socket with a 4 MiB receive buffer: with the default 208 KiB, a burst of store
/// reconnects drops packets and some wait a second for a retransmit (DESIGN.md, measured).
pub fn udp_socket(address: std::net::SocketAddr) -> anyhow::Result<std::net::UdpSocket> {
    let domain = socket2::Domain::for_address(address);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    socket.set_recv_buffer_size(4 * 1024 * 1024)?;
    socket.set_send_buffer_size(4 * 1024 * 1024)?;
    socket
        .bind(&address.into())
        .with_context(|| format!("binding UDP {address}"))?;
    Ok(socket.into())
}
