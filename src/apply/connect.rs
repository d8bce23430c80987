//! One connection to TARGET (tokio-postgres), with TLS through rustls: the same sslmode and
//! sslrootcert meanings as libpq, so pg_dump and apply see the server the same way.

use crate::endpoint::ConnParams;
use anyhow::{anyhow, bail, Context, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, Config};

/// One open connection, and what it takes to cancel its running statement from outside.
pub struct Target {
    pub client: Client,
    /// None over a Unix socket, which carries no TLS (and whose path rustls would refuse as
    /// a server name before connecting).
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
}

impl Target {
    /// Asks the server to cancel the statement running on this connection (a new connection
    /// carrying the cancel key, as psql's Ctrl-C does); bounded by the connect timeout.
    pub async fn cancel(&self) -> Result<()> {
        let token = self.client.cancel_token();
        let cancel = async {
            match &self.tls {
                Some(tls) => token.cancel_query(tls.clone()).await,
                None => token.cancel_query(tokio_postgres::NoTls).await,
            }
        };
        tokio::time::timeout(Duration::from_secs(10), cancel)
            .await
            .map_err(|_| anyhow!("the cancel request got no answer within 10 s"))?
            .map_err(|e| anyhow!("{}", crate::apply::pg_error_text(&e)))
    }
}

/// Opens the connection; the connection task is spawned on the runtime.
pub async fn connect(p: &ConnParams) -> Result<Target> {
    let mut cfg = Config::new();
    let host = p.resolved("host").unwrap_or_else(|| {
        if std::path::Path::new("/var/run/postgresql").is_dir() {
            "/var/run/postgresql".into()
        } else {
            "localhost".into()
        }
    });
    cfg.host(&host);
    if let Some(port) = p.resolved("port") {
        cfg.port(
            port.parse()
                .with_context(|| format!("port {port:?} is not a number"))?,
        );
    }
    let user = p
        .resolved("user")
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "postgres".into());
    cfg.user(&user);
    cfg.dbname(p.resolved("dbname").unwrap_or_else(|| user.clone()));
    if let Some(pw) = p.resolved_password() {
        cfg.password(pw);
    }
    cfg.application_name("pgalign");
    let timeout = p
        .resolved("connect_timeout")
        .and_then(|t| t.parse().ok())
        .unwrap_or(30);
    cfg.connect_timeout(Duration::from_secs(timeout));
    // A server or network that goes silent mid-apply is noticed within about a minute and a
    // half, not after the kernel's two hours: every wait is bounded.
    cfg.keepalives(true)
        .keepalives_idle(Duration::from_secs(30))
        .keepalives_interval(Duration::from_secs(10))
        .keepalives_retries(5);
    let mode = p.resolved("sslmode").unwrap_or_else(|| "prefer".into());
    let root = p.resolved("sslrootcert");
    let (ssl_mode, verify) = match mode.as_str() {
        "disable" => (SslMode::Disable, Verify::None),
        "allow" | "prefer" => (SslMode::Prefer, Verify::None),
        // As libpq: require verifies the chain when a root certificate file is given.
        "require" if root.is_some() => (SslMode::Require, Verify::Chain),
        "require" => (SslMode::Require, Verify::None),
        "verify-ca" => (SslMode::Require, Verify::Chain),
        "verify-full" => (SslMode::Require, Verify::Full),
        other => bail!(
            "unknown sslmode {other:?} (disable, allow, prefer, require, verify-ca, verify-full)"
        ),
    };
    cfg.ssl_mode(ssl_mode);
    let failed = |e: tokio_postgres::Error| anyhow!("{}", crate::apply::pg_error_text(&e));
    if host.starts_with('/') {
        let (client, conn) = cfg.connect(tokio_postgres::NoTls).await.map_err(failed)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        return Ok(Target { client, tls: None });
    }
    let tls = tls_config(verify, root.as_deref())?;
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls);
    let (client, conn) = cfg.connect(tls.clone()).await.map_err(failed)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(Target {
        client,
        tls: Some(tls),
    })
}

#[derive(Clone, Copy)]
enum Verify {
    None,
    Chain,
    Full,
}

fn tls_config(verify: Verify, root: Option<&str>) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    match root {
        Some(path) if path != "system" => {
            let pem = std::fs::read(path).with_context(|| format!("reading sslrootcert {path}"))?;
            let mut n = 0;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.with_context(|| format!("reading certificates in {path}"))?;
                roots
                    .add(cert)
                    .with_context(|| format!("a certificate in {path} is not usable"))?;
                n += 1;
            }
            if n == 0 {
                bail!("sslrootcert {path} holds no PEM certificate");
            }
        }
        _ => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("setting up TLS")?;
    let roots = Arc::new(roots);
    let config = match verify {
        Verify::Full => builder.with_root_certificates(roots).with_no_client_auth(),
        Verify::Chain => {
            let inner =
                rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
                    .build()
                    .context("setting up certificate verification")?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly(inner)))
                .with_no_client_auth()
        }
        Verify::None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unverified(provider)))
            .with_no_client_auth(),
    };
    Ok(config)
}

/// `verify-ca`: the chain must lead to a trusted root; the host name is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `require` / `prefer` without a root certificate: encrypted, not authenticated (as libpq).
#[derive(Debug)]
struct Unverified(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
