//! Remote keys over real TLS: a JWKS server on loopback with a certificate
//! from a CA made at test time. Trusted through `root_certificates`, refused
//! (503, the keys unavailable) without it: the HTTPS path works, and never
//! trusts a certificate it cannot verify.

#[path = "common/outside.rs"]
mod outside;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use jsonwebtoken::Algorithm;
use outside::*;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use serde_json::json;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tower::{Layer, ServiceExt, service_fn};
use tower_jwt_auth::{JwtAuthLayer, Key, NoCustomClaims, TrustedIssuer};

/// A CA (its PEM) and a certificate for 127.0.0.1 and localhost signed by it.
fn pki() -> (String, CertificateDer<'static>, PrivateKeyDer<'static>) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let key = PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
    (ca.pem(), leaf.der().clone(), key)
}

/// An HTTPS server answering the JWKS and a discovery document naming its
/// own base URL as the issuer; returns that base URL.
async fn https_jwks(cert: CertificateDer<'static>, key: PrivateKeyDer<'static>) -> String {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    let jwk = Key::from_public_pem("k1", Algorithm::ES256, ES256_PUB_PEM).unwrap();
    let jwks = json!({ "keys": [jwk.public_jwk().unwrap()] }).to_string();
    let discovery = json!({ "issuer": base, "jwks_uri": format!("{base}/jwks") }).to_string();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, jwks, discovery) = (acceptor.clone(), jwks.clone(), discovery.clone());
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let body = if req.uri().path() == "/jwks" {
                        jwks.clone()
                    } else {
                        discovery.clone()
                    };
                    async move { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body)))) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    base
}

async fn status(issuer: TrustedIssuer, iss: &str) -> StatusCode {
    let claims = keycloak_claims(iss, "api", "read", &[]);
    let token = sign(Algorithm::ES256, ES256_PEM, "k1", None, &claims);
    let svc = JwtAuthLayer::<NoCustomClaims>::trusting(issuer).layer(service_fn(
        |_req: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::<Bytes>::default()))
        },
    ));
    let req = Request::get("/")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::default())
        .unwrap();
    svc.oneshot(req).await.unwrap().status()
}

#[tokio::test]
async fn keys_are_fetched_over_tls_from_a_verified_server_only() {
    let (ca_pem, cert, key) = pki();
    let base = https_jwks(cert, key).await;

    // Discovery and the JWKS over HTTPS, the private CA trusted.
    let trusted = TrustedIssuer::discover(&base)
        .audience("api")
        .root_certificates(ca_pem.as_bytes())
        .build()
        .unwrap();
    assert_eq!(status(trusted.clone(), &base).await, StatusCode::OK);
    assert_eq!(trusted.fetch_count(), 2);

    // Without the CA, the server's certificate is not trusted: no keys, 503.
    let untrusted = TrustedIssuer::discover(&base)
        .audience("api")
        .build()
        .unwrap();
    assert_eq!(
        status(untrusted.clone(), &base).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(untrusted.prefetch().await.is_err());

    // Not PEM: a configuration error, at build time.
    assert!(
        TrustedIssuer::discover(&base)
            .audience("api")
            .root_certificates(b"not a certificate")
            .build()
            .is_err()
    );
}
