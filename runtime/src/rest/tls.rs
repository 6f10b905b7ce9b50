//! Serving the API over TLS (rustls, with ring): the certificate chain and
//! key from PEM files, one TLS handshake per connection, then HTTP/1.1.

use super::{router, Shared};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::rustls::crypto;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
pub use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// Reads the PEM certificate chain and private key; the error names the
/// file and what is wrong with it (never the key's bytes).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| format!("rest.tls.certificate.file {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "rest.tls.certificate.file {}: holds no PEM certificate",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        format!(
            "rest.tls.key.file {}: no PEM private key ({e})",
            key.display()
        )
    })?;
    let config = ServerConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!("rest.tls.certificate.file and rest.tls.key.file do not go together: {e}")
        })?;
    Ok(Arc::new(config))
}

/// Serves the API over TLS on `listener` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    api: Shared,
    config: Arc<ServerConfig>,
) -> std::io::Result<()> {
    let acceptor = TlsAcceptor::from(config);
    let app = router(api);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("REST API: accepting a connection: {e}");
                continue;
            }
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let stream = match acceptor.accept(stream).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%peer, "REST API: TLS handshake failed: {e}");
                    return;
                }
            };
            let service = TowerToHyperService::new(app);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, "REST API connection: {e}");
            }
        });
    }
}
