//! Building rustls configurations for NETCONF over TLS from PEM certificates and keys.
//!
//! RFC 7589 requires mutual X.509 authentication: by default a client presents a
//! certificate and verifies the server's against the given CA roots, and a server requires
//! and verifies a client certificate. Callers who need more (custom verifiers, session
//! resumption, ...) pass their own `ClientConfig` / `ServerConfig` instead.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use thiserror::Error;

/// Where PEM data comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum PemSource {
    File(PathBuf),
    Memory(Vec<u8>),
}

impl PemSource {
    pub fn file(path: impl AsRef<Path>) -> Self {
        PemSource::File(path.as_ref().to_owned())
    }

    pub fn pem(data: impl Into<Vec<u8>>) -> Self {
        PemSource::Memory(data.into())
    }

    fn read(&self) -> Result<(std::borrow::Cow<'_, [u8]>, String), TlsConfigError> {
        match self {
            PemSource::File(path) => std::fs::read(path)
                .map(|d| (d.into(), path.display().to_string()))
                .map_err(|e| TlsConfigError::Read {
                    path: path.clone(),
                    error: e.to_string(),
                }),
            PemSource::Memory(d) => Ok((d.as_slice().into(), "PEM data".into())),
        }
    }

    fn certificates(
        &self,
        what: &'static str,
    ) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
        let (data, name) = self.read()?;
        let certs = CertificateDer::pem_slice_iter(&data)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsConfigError::Pem {
                what,
                source_name: name.clone(),
                error: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(TlsConfigError::Pem {
                what,
                source_name: name,
                error: "no CERTIFICATE block".into(),
            });
        }
        Ok(certs)
    }

    fn private_key(&self) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
        let (data, name) = self.read()?;
        PrivateKeyDer::from_pem_slice(&data).map_err(|e| TlsConfigError::Pem {
            what: "private key",
            source_name: name,
            error: e.to_string(),
        })
    }
}

impl fmt::Debug for PemSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PemSource::File(p) => f.debug_tuple("File").field(p).finish(),
            // Never print key material.
            PemSource::Memory(d) => write!(f, "Memory({} bytes)", d.len()),
        }
    }
}

/// Why a TLS configuration could not be built.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TlsConfigError {
    #[error("cannot read {path}: {error}")]
    Read { path: PathBuf, error: String },
    #[error("bad {what} in {source_name}: {error}")]
    Pem {
        what: &'static str,
        source_name: String,
        error: String,
    },
    #[error("no CA certificate given: the server's certificate cannot be verified")]
    NoRoots,
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
    #[error("client certificate verifier: {0}")]
    Verifier(String),
    #[error("no TLS crypto provider: enable the `ring` or `aws-lc-rs` feature, or install a process default")]
    NoProvider,
    #[error("invalid TLS server name {0:?}")]
    InvalidServerName(String),
}

/// The crypto provider chosen by crate features (`ring` preferred), else the process default.
pub fn crypto_provider() -> Result<Arc<CryptoProvider>, TlsConfigError> {
    #[cfg(feature = "ring")]
    {
        Ok(Arc::new(rustls::crypto::ring::default_provider()))
    }
    #[cfg(all(feature = "aws-lc-rs", not(feature = "ring")))]
    {
        Ok(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
    }
    #[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
    {
        CryptoProvider::get_default()
            .cloned()
            .ok_or(TlsConfigError::NoProvider)
    }
}

pub(crate) fn root_store(sources: &[PemSource]) -> Result<RootCertStore, TlsConfigError> {
    let mut roots = RootCertStore::empty();
    for source in sources {
        for cert in source.certificates("CA certificate")? {
            roots.add(cert)?;
        }
    }
    if roots.is_empty() {
        return Err(TlsConfigError::NoRoots);
    }
    Ok(roots)
}

/// How a client authenticates the server and itself.
#[derive(Debug, Clone, Default)]
pub struct ClientTlsOptions {
    /// CA certificates that may sign the server's certificate.
    pub ca: Vec<PemSource>,
    /// Our certificate chain and private key (RFC 7589 requires one).
    pub identity: Option<(PemSource, PemSource)>,
    /// The name to verify the server certificate against; defaults to the host connected to
    /// (an IP address is matched against the certificate's IP SANs).
    pub server_name: Option<String>,
    /// A complete rustls configuration that replaces everything above but `server_name`.
    pub config: Option<Arc<ClientConfig>>,
}

impl ClientTlsOptions {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn ca_file(mut self, path: impl AsRef<Path>) -> Self {
        self.ca.push(PemSource::file(path));
        self
    }

    pub fn ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca.push(PemSource::pem(pem));
        self
    }

    pub fn client_cert_files(mut self, cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Self {
        self.identity = Some((PemSource::file(cert), PemSource::file(key)));
        self
    }

    pub fn client_cert_pem(mut self, cert: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Self {
        self.identity = Some((PemSource::pem(cert), PemSource::pem(key)));
        self
    }

    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    pub fn rustls_config(mut self, config: Arc<ClientConfig>) -> Self {
        self.config = Some(config);
        self
    }

    /// The rustls configuration these options describe.
    pub fn build(&self) -> Result<Arc<ClientConfig>, TlsConfigError> {
        if let Some(config) = &self.config {
            return Ok(config.clone());
        }
        let builder = ClientConfig::builder_with_provider(crypto_provider()?)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(root_store(&self.ca)?);
        let config = match &self.identity {
            Some((cert, key)) => builder.with_client_auth_cert(
                cert.certificates("client certificate")?,
                key.private_key()?,
            )?,
            None => builder.with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }

    /// The name to verify: `server_name` if set, else `host`.
    pub fn server_name_for(&self, host: &str) -> Result<ServerName<'static>, TlsConfigError> {
        let name = self.server_name.as_deref().unwrap_or(host);
        let name = name.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(name.to_owned())
            .map_err(|_| TlsConfigError::InvalidServerName(name.to_owned()))
    }
}

/// How a server authenticates itself and its clients.
#[derive(Debug, Clone)]
pub struct ServerTlsOptions {
    /// Our certificate chain and private key.
    pub identity: (PemSource, PemSource),
    /// CA certificates that may sign client certificates.
    pub client_ca: Vec<PemSource>,
    /// Whether a client certificate is required (RFC 7589: yes).
    pub require_client_cert: bool,
    /// The most plaintext one TLS record carries (default [`CLIENT_FRIENDLY_RECORD`]).
    ///
    /// Why not the TLS maximum of 16 KiB: the most used NETCONF client (ncclient) reads 4096
    /// bytes each time its socket turns readable, so the rest of a larger record stays
    /// inside OpenSSL where its loop never looks, and a large reply never completes. Records
    /// that fit one such read cost about 1% more bytes on the wire and keep every client of
    /// that kind working. `None` uses the TLS maximum.
    pub max_record_plaintext: Option<usize>,
    /// A complete rustls configuration that replaces everything above.
    pub config: Option<Arc<ServerConfig>>,
}

/// Record plaintext size that a client reading 4096 bytes per readiness event drains whole.
/// rustls counts the 5-byte record header in its fragment size.
pub const CLIENT_FRIENDLY_RECORD: usize = 4096;

impl ServerTlsOptions {
    /// Options with our identity, requiring client certificates signed by `client_ca`.
    pub fn new(cert: PemSource, key: PemSource, client_ca: PemSource) -> Self {
        ServerTlsOptions {
            identity: (cert, key),
            client_ca: vec![client_ca],
            require_client_cert: true,
            max_record_plaintext: Some(CLIENT_FRIENDLY_RECORD),
            config: None,
        }
    }

    /// Options that take a prepared rustls configuration.
    pub fn from_rustls(config: Arc<ServerConfig>) -> Self {
        ServerTlsOptions {
            identity: (PemSource::pem(Vec::new()), PemSource::pem(Vec::new())),
            client_ca: Vec::new(),
            require_client_cert: true,
            max_record_plaintext: None,
            config: Some(config),
        }
    }

    /// The rustls configuration these options describe.
    pub fn build(&self) -> Result<Arc<ServerConfig>, TlsConfigError> {
        if let Some(config) = &self.config {
            return Ok(config.clone());
        }
        let provider = crypto_provider()?;
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = if self.client_ca.is_empty() && !self.require_client_cert {
            builder.with_no_client_auth()
        } else {
            let roots = Arc::new(root_store(&self.client_ca)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
            let verifier = if self.require_client_cert {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| TlsConfigError::Verifier(e.to_string()))?,
            )
        };
        let (cert, key) = &self.identity;
        let mut config = builder
            .with_single_cert(cert.certificates("server certificate")?, key.private_key()?)?;
        config.max_fragment_size = self.max_record_plaintext;
        Ok(Arc::new(config))
    }
}
