//! Verifying a device that called home (RFC 8071 section 3.1: the client identifies the
//! server before anything else).
//!
//! A dialled connection checks the certificate against the name we dialled. A device that
//! calls home has no such name: we only know the address it came from, and device
//! certificates rarely name their (often NATed) address. So, as the ietf-netconf-client
//! YANG module's call-home `ca-certs`/`ee-certs` do, the certificate must chain to our
//! CA roots, names are not checked unless a `server_name` is configured, and the caller's
//! check then sees the end-entity certificate and decides, all inside the handshake: a
//! device refused there never receives our client certificate, let alone a NETCONF byte.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, Error, SignatureScheme};

use super::options::{crypto_provider, root_store, ClientTlsOptions, TlsConfigError};

/// The caller's decision on a device's end-entity certificate, once it chains to the roots.
pub type DeviceCheck = Arc<dyn Fn(&CertificateDer<'_>) -> bool + Send + Sync>;

impl ClientTlsOptions {
    /// The rustls configuration for accepting call home: the device's certificate must
    /// chain to [`ClientTlsOptions::ca`] (and name `server_name`, if one is set), then
    /// `check` decides on it. A `rustls_config` cannot be combined with this: its verifier
    /// would be bypassed.
    pub fn build_call_home(&self, check: DeviceCheck) -> Result<Arc<ClientConfig>, TlsConfigError> {
        if self.config.is_some() {
            return Err(TlsConfigError::Verifier(
                "call home verifies devices against `ca`; a custom rustls_config would bypass \
                 it (use ca_file/ca_pem)"
                    .into(),
            ));
        }
        let provider = crypto_provider()?;
        let roots = Arc::new(root_store(&self.ca)?);
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| TlsConfigError::Verifier(e.to_string()))?;
        let name_checked = self.server_name.is_some();
        let mut config = (*self.build()?).clone();
        config
            .dangerous()
            .set_certificate_verifier(Arc::new(CallHomeVerifier {
                webpki,
                name_checked,
                check,
            }));
        Ok(Arc::new(config))
    }
}

struct CallHomeVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    name_checked: bool,
    check: DeviceCheck,
}

impl std::fmt::Debug for CallHomeVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallHomeVerifier")
            .field("name_checked", &self.name_checked)
            .finish_non_exhaustive()
    }
}

impl ServerCertVerifier for CallHomeVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(_) => {}
            // The chain is good; only the name differs, and no name was asked for.
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.name_checked => {}
            Err(e) => return Err(e),
        }
        if (self.check)(end_entity) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}
