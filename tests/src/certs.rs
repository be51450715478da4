//! A throwaway X.509 PKI for tests and the demo, generated with rcgen in a few milliseconds.
//!
//! RFC 7589 makes mutual X.509 authentication the default for NETCONF over TLS, so every TLS
//! test needs a CA, a server certificate and a client certificate. The shapes here follow what
//! real peers insist on (see `INTEROP.md`, "Certificates"):
//!
//! * the CA has `basicConstraints: CA` and `keyUsage: keyCertSign` (webpki refuses anything
//!   else as a trust anchor for a chain);
//! * the server certificate carries `subjectAltName = IP:127.0.0.1, DNS:localhost` and
//!   `extendedKeyUsage = serverAuth`, so clients may dial either name on loopback;
//! * the client certificate has `CN=admin` (the user name a cert-to-name mapping yields) and
//!   `extendedKeyUsage = clientAuth` (libnetconf2 rejects a server certificate used as a client
//!   one: "unsuitable certificate purpose").
//!
//! All keys are ECDSA P-256: generation is cheap, so each test can own a fresh PKI and nothing
//! is shared through the file system unless a test asks for it with [`Pki::write_to_dir`].
//!
//! The rustls helpers always build on the *ring* provider explicitly. They never rely on a
//! process-wide default provider, because which default gets installed first would otherwise
//! depend on test ordering and on which crates happen to be linked.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use netconf_proto::tls::{ClientTlsOptions, PemSource, ServerTlsOptions};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Common name of the client certificate: the NETCONF user a cert-to-name mapping yields.
pub const CLIENT_COMMON_NAME: &str = "admin";

/// One self-contained PKI: a CA and the server and client certificates it signed.
///
/// PEM forms are public fields (for writing files or handing to external peers); DER forms come
/// from the accessors, already wrapped in the `rustls_pki_types` types rustls wants.
#[derive(Clone, Debug)]
pub struct Pki {
    /// The CA certificate (PEM). Trust anchor for both sides.
    pub ca_pem: String,
    /// The CA private key (PKCS#8 PEM), for tests that want to sign more certificates.
    pub ca_key_pem: String,
    /// Server certificate (PEM): SAN IP 127.0.0.1 and DNS localhost, EKU serverAuth.
    pub server_cert_pem: String,
    /// Server private key (PKCS#8 PEM).
    pub server_key_pem: String,
    /// Client certificate (PEM): CN "admin", EKU clientAuth.
    pub client_cert_pem: String,
    /// Client private key (PKCS#8 PEM).
    pub client_key_pem: String,
    ca_der: CertificateDer<'static>,
    server_cert_der: CertificateDer<'static>,
    server_key_der: Vec<u8>,
    client_cert_der: CertificateDer<'static>,
    client_key_der: Vec<u8>,
}

/// Where [`Pki::write_to_dir`] put each file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PkiFiles {
    /// `ca.pem`: the CA certificate.
    pub ca_cert: PathBuf,
    /// `server.pem`: the server certificate.
    pub server_cert: PathBuf,
    /// `server.key`: the server private key (PKCS#8 PEM).
    pub server_key: PathBuf,
    /// `client.pem`: the client certificate.
    pub client_cert: PathBuf,
    /// `client.key`: the client private key (PKCS#8 PEM).
    pub client_key: PathBuf,
}

impl Pki {
    /// Generates a fresh CA with a server and a client certificate.
    ///
    /// # Panics
    /// Only if rcgen fails to generate or sign with a P-256 key, which would mean the crypto
    /// backend itself is broken: not a condition a test could recover from.
    pub fn generate() -> Pki {
        Self::generate_named("netconf-tests CA")
    }

    /// Generates a second, independent PKI whose CA shares nothing with any other.
    ///
    /// For "wrong CA is refused" tests: a peer configured from this PKI must fail to
    /// authenticate against a peer configured from [`Pki::generate`], in either direction.
    pub fn generate_untrusted() -> Pki {
        Self::generate_named("netconf-tests untrusted CA")
    }

    /// Alias of [`Pki::generate_untrusted`], reading better at call sites such as
    /// `let other = Pki::other_ca();`.
    pub fn other_ca() -> Pki {
        Self::generate_untrusted()
    }

    fn generate_named(ca_common_name: &str) -> Pki {
        Self::try_generate(ca_common_name).expect("rcgen could not generate a test PKI")
    }

    fn try_generate(ca_common_name: &str) -> Result<Pki, rcgen::Error> {
        // The CA: self-signed, allowed to sign certificates and nothing else that matters here.
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name = name(ca_common_name);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let ca_key_pem = ca_key.serialize_pem();
        let issuer = Issuer::new(ca_params, ca_key);

        // The server: reachable as 127.0.0.1 and as localhost.
        let server_key = KeyPair::generate()?;
        let mut server_params = CertificateParams::default();
        server_params.distinguished_name = name("localhost");
        server_params.subject_alt_names = vec![
            SanType::IpAddress([127, 0, 0, 1].into()),
            SanType::DnsName("localhost".try_into()?),
        ];
        server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server_params.use_authority_key_identifier_extension = true;
        let server_cert = server_params.signed_by(&server_key, &issuer)?;

        // The client: the NETCONF user "admin".
        let client_key = KeyPair::generate()?;
        let mut client_params = CertificateParams::default();
        client_params.distinguished_name = name(CLIENT_COMMON_NAME);
        client_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        client_params.use_authority_key_identifier_extension = true;
        let client_cert = client_params.signed_by(&client_key, &issuer)?;

        Ok(Pki {
            ca_pem: ca_cert.pem(),
            ca_key_pem,
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
            ca_der: ca_cert.der().clone(),
            server_cert_der: server_cert.der().clone(),
            server_key_der: server_key.serialize_der(),
            client_cert_der: client_cert.der().clone(),
            client_key_der: client_key.serialize_der(),
        })
    }

    /// The CA certificate (DER).
    pub fn ca_cert_der(&self) -> CertificateDer<'static> {
        self.ca_der.clone()
    }

    /// The server certificate (DER).
    pub fn server_cert_der(&self) -> CertificateDer<'static> {
        self.server_cert_der.clone()
    }

    /// The server private key (PKCS#8 DER).
    pub fn server_key_der(&self) -> PrivateKeyDer<'static> {
        PrivatePkcs8KeyDer::from(self.server_key_der.clone()).into()
    }

    /// The client certificate (DER).
    pub fn client_cert_der(&self) -> CertificateDer<'static> {
        self.client_cert_der.clone()
    }

    /// The client private key (PKCS#8 DER).
    pub fn client_key_der(&self) -> PrivateKeyDer<'static> {
        PrivatePkcs8KeyDer::from(self.client_key_der.clone()).into()
    }

    /// The server's chain as sent on the wire: the leaf alone (the peer holds the CA).
    pub fn server_chain(&self) -> Vec<CertificateDer<'static>> {
        vec![self.server_cert_der()]
    }

    /// The client's chain as sent on the wire: the leaf alone (the peer holds the CA).
    pub fn client_chain(&self) -> Vec<CertificateDer<'static>> {
        vec![self.client_cert_der()]
    }

    /// A root store holding exactly this PKI's CA.
    pub fn root_store(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots
            .add(self.ca_cert_der())
            .expect("a CA certificate rcgen just made is a valid trust anchor");
        roots
    }

    /// Writes `ca.pem`, `server.pem`, `server.key`, `client.pem` and `client.key` into `dir`
    /// (which must exist), for peers configured by file name: the CLI, libnetconf2, ncclient.
    ///
    /// Key files are created with mode 0600 on Unix, since some tools refuse readable keys.
    pub fn write_to_dir(&self, dir: &Path) -> io::Result<PkiFiles> {
        let files = PkiFiles {
            ca_cert: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
        };
        fs::write(&files.ca_cert, &self.ca_pem)?;
        fs::write(&files.server_cert, &self.server_cert_pem)?;
        write_private(&files.server_key, &self.server_key_pem)?;
        fs::write(&files.client_cert, &self.client_cert_pem)?;
        write_private(&files.client_key, &self.client_key_pem)?;
        Ok(files)
    }

    /// A server config presenting this PKI's server certificate.
    ///
    /// With `require_client_auth`, clients must present a certificate signed by this PKI's CA
    /// (the RFC 7589 default); without it, client authentication is not even requested.
    pub fn server_config(&self, require_client_auth: bool) -> Arc<ServerConfig> {
        server_config_trusting(self, require_client_auth.then_some(self))
    }

    /// A client config trusting this PKI's CA, presenting this PKI's client certificate when
    /// `with_client_cert` is true.
    pub fn client_config(&self, with_client_cert: bool) -> Arc<ClientConfig> {
        client_config_trusting(self, with_client_cert.then_some(self))
    }

    /// The adapters' server options for this PKI, all in memory: its server certificate and
    /// key, and its CA as the one client certificates must chain to (the RFC 7589 default).
    ///
    /// Every adapter re-exports this type, so one helper serves the blocking, tokio and smol
    /// servers alike.
    pub fn server_tls_options(&self) -> ServerTlsOptions {
        ServerTlsOptions::new(
            PemSource::pem(self.server_cert_pem.clone()),
            PemSource::pem(self.server_key_pem.clone()),
            PemSource::pem(self.ca_pem.clone()),
        )
    }

    /// The adapters' client options for this PKI, all in memory: trust its CA and present
    /// its client certificate (`CN=admin`).
    pub fn client_tls_options(&self) -> ClientTlsOptions {
        ClientTlsOptions::new()
            .ca_pem(self.ca_pem.clone())
            .client_cert_pem(self.client_cert_pem.clone(), self.client_key_pem.clone())
    }
}

/// A server config that presents `identity`'s server certificate and, when `client_ca` is
/// given, requires a client certificate signed by `client_ca`'s CA.
///
/// Mixing two PKIs is how "the server refuses a client certificate from another CA" is tested:
/// the client then trusts the right server but presents the wrong certificate.
pub fn server_config_trusting(identity: &Pki, client_ca: Option<&Pki>) -> Arc<ServerConfig> {
    let provider = ring_provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the safe default protocol versions");
    let builder = match client_ca {
        Some(ca) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(ca.root_store()), provider)
                    .build()
                    .expect("a one-CA root store makes a valid client verifier");
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(identity.server_chain(), identity.server_key_der())
        .expect("the server key matches the server certificate");
    Arc::new(config)
}

/// A client config that trusts `trust`'s CA and, when `identity` is given, presents
/// `identity`'s client certificate.
///
/// Mixing two PKIs is how "the client refuses a server from another CA" and "the server
/// refuses a client from another CA" are tested.
pub fn client_config_trusting(trust: &Pki, identity: Option<&Pki>) -> Arc<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(ring_provider())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the safe default protocol versions")
        .with_root_certificates(trust.root_store());
    let config = match identity {
        Some(id) => builder
            .with_client_auth_cert(id.client_chain(), id.client_key_der())
            .expect("the client key matches the client certificate"),
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

/// The ring crypto provider, as an explicit value (never the process default).
pub fn ring_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "netconf-rs tests");
    dn.push(DnType::CommonName, common_name);
    dn
}

/// Writes a private key readable by its owner only (on Unix).
fn write_private(path: &Path, contents: &str) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    io::Write::write_all(&mut options.open(path)?, contents.as_bytes())
}
