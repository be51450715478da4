//! A throwaway PKI for `demo` and for `serve` without certificates: a CA, a server
//! certificate for loopback and a client certificate, made with rcgen in milliseconds.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// PEM certificates and keys (ECDSA P-256).
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca_pem: String,
    /// SAN IP 127.0.0.1 and DNS localhost, EKU serverAuth.
    pub server_cert_pem: String,
    pub server_key_pem: String,
    /// CN "admin", EKU clientAuth.
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

/// Where [`Pki::write_to`] put the files.
#[derive(Debug, Clone)]
pub struct PkiFiles {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

impl Pki {
    pub fn generate() -> Result<Pki, rcgen::Error> {
        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::default();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        // A name of its own, so two throwaway CAs never look like one to a verifier.
        ca.distinguished_name = name(&format!("netconf throwaway CA {nanos:08x}"));
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca, ca_key);

        let server_key = KeyPair::generate()?;
        let mut server = CertificateParams::default();
        server.distinguished_name = name("localhost");
        server.subject_alt_names = vec![
            SanType::IpAddress([127, 0, 0, 1].into()),
            SanType::DnsName("localhost".try_into()?),
        ];
        server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server.use_authority_key_identifier_extension = true;
        let server_cert = server.signed_by(&server_key, &issuer)?;

        let client_key = KeyPair::generate()?;
        let mut client = CertificateParams::default();
        client.distinguished_name = name("admin");
        client.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        client.use_authority_key_identifier_extension = true;
        let client_cert = client.signed_by(&client_key, &issuer)?;

        Ok(Pki {
            ca_pem: ca_cert.pem(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
        })
    }

    /// Writes ca.pem, server.pem, server.key, client.pem and client.key into `dir`
    /// (created if needed; keys readable by the owner only on Unix).
    pub fn write_to(&self, dir: &Path) -> io::Result<PkiFiles> {
        fs::create_dir_all(dir)?;
        let files = PkiFiles {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
        };
        fs::write(&files.ca, &self.ca_pem)?;
        fs::write(&files.server_cert, &self.server_cert_pem)?;
        fs::write(&files.client_cert, &self.client_cert_pem)?;
        write_private(&files.server_key, &self.server_key_pem)?;
        write_private(&files.client_key, &self.client_key_pem)?;
        Ok(files)
    }
}

fn write_private(path: &Path, pem: &str) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    io::Write::write_all(&mut options.open(path)?, pem.as_bytes())
}

/// The common name of a DER certificate's subject (the last CN if there are several), for
/// the RFC 7589 username of a session.
pub fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().last()?;
    cn.as_str().ok().map(str::to_owned)
}

/// A DER certificate in words: `subject CN=r1, issuer CN=Example CA`, or why it could not
/// be read.
pub fn describe(der: &[u8]) -> String {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => format!("subject {}, issuer {}", cert.subject(), cert.issuer()),
        Err(e) => format!("a certificate x509-parser cannot read ({e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_names_of_the_throwaway_certificates() {
        let pki = Pki::generate().unwrap();
        let der = |pem: &str| {
            let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
            block.contents
        };
        assert_eq!(
            common_name(&der(&pki.client_cert_pem)).as_deref(),
            Some("admin")
        );
        assert_eq!(
            common_name(&der(&pki.server_cert_pem)).as_deref(),
            Some("localhost")
        );
        assert_eq!(common_name(b"not a certificate"), None);
        let described = describe(&der(&pki.server_cert_pem));
        assert!(
            described.starts_with("subject CN=localhost, issuer CN=netconf throwaway CA"),
            "{described}"
        );
    }
}
