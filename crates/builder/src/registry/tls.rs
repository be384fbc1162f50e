//! TLS for registries: rustls with the `ring` provider (builds without cmake or OpenSSL
//! headers), the system's roots plus an optional CA file (a private registry's own CA).

use crate::error::{Error, Result};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::path::Path;
use std::sync::Arc;

pub(super) fn client_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable system certificates are skipped: one bad file must not stop every pull.
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let bad = |m: String| Error::input(path.display().to_string(), m, Some("give a PEM file with the registry's CA certificate".into()));
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(format!("cannot read the CA file: {e}")))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("not a PEM certificate: {e}")))?;
        if certs.is_empty() {
            return Err(bad("no certificate in the CA file".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| bad(format!("unusable certificate: {e}")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Registry { reference: "TLS".into(), status: None, code: None, message: format!("TLS setup failed: {e}"), hint: None })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
