//! Service-to-service mTLS: a server configured with `TLS_CLIENT_CA_FILE` serves only clients
//! presenting a certificate from that CA. Certificates are generated here, per test.

use std::path::PathBuf;
use std::time::Duration;

use omni_platform::config::Env;
use omni_platform::grpc::client::lazy_channel_with_tls;
use omni_platform::grpc::{GrpcServices, RunningServer, serve};
use omni_platform::testkit::unique_name;
use omni_platform::tls::{ClientTls, ServerTls};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// A certificate authority that can sign leaf certificates.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Self {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// `(certificate, key)` PEMs for `name`, usable as server and as client certificate, like
    /// the one certificate each service pod gets.
    fn leaf(&self, name: &str) -> (String, String) {
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// A directory of PEM files, removed when the test ends (also on panic).
struct PemDir(PathBuf);

impl PemDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(unique_name("omni_mtls"));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, name: &str, pem: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, pem).unwrap();
        path.to_string_lossy().into_owned()
    }
}

impl Drop for PemDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server on port 0 configured the way a service is: from `TLS_*` variables.
async fn mtls_server(ca: &Ca, dir: &PemDir) -> RunningServer {
    let (cert, key) = ca.leaf("inventory.omni.svc");
    let env = Env::from_pairs([
        ("TLS_CERT_FILE", dir.write("server.pem", &cert)),
        ("TLS_KEY_FILE", dir.write("server.key", &key)),
        ("TLS_CLIENT_CA_FILE", dir.write("ca.pem", &ca.pem)),
    ]);
    let tls = ServerTls::from_env(&env).unwrap().unwrap();
    assert!(tls.requires_client_certificates());
    serve(
        "127.0.0.1:0".parse().unwrap(),
        GrpcServices::new().tls(Some(tls)),
        std::future::pending(),
    )
    .await
    .unwrap()
}

fn channel(server: &RunningServer, tls: &ClientTls) -> Channel {
    let address = format!("https://127.0.0.1:{}", server.local_addr().port());
    lazy_channel_with_tls(&address, Duration::from_secs(5), Some(tls)).unwrap()
}

async fn health(channel: Channel) -> Result<i32, tonic::Status> {
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|r| r.into_inner().status)
}

/// The handshake itself refused the client, with the TLS alert saying why (with TLS 1.3 the
/// client learns it only on its first request, so the call fails rather than the connect).
fn assert_refused_by_tls(status: &tonic::Status, alert: &str) {
    assert!(
        matches!(status.code(), Code::Unknown | Code::Unavailable),
        "{status:?}"
    );
    let chain = format!("{status:?}");
    assert!(chain.contains(alert), "expected TLS alert {alert}: {chain}");
}

#[tokio::test]
async fn a_client_certificate_from_the_ca_is_served_and_no_certificate_is_refused() {
    let ca = Ca::new("omni test CA");
    let dir = PemDir::new();
    let server = mtls_server(&ca, &dir).await;
    // The address is an IP; the certificate names the service, as in Kubernetes.
    let trusting = ClientTls::from_pem(ca.pem.clone()).with_server_name("inventory.omni.svc");

    let anonymous = health(channel(&server, &trusting)).await;
    let refused = anonymous.expect_err("a client without a certificate must be refused");
    assert_refused_by_tls(&refused, "CertificateRequired");

    let (cert, key) = ca.leaf("orders.omni.svc");
    let with_certificate = trusting.clone().with_identity(cert, key);
    let status = health(channel(&server, &with_certificate)).await.unwrap();
    assert_eq!(status, ServingStatus::Serving as i32);

    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_certificate_from_another_ca_and_plaintext_are_refused() {
    let ca = Ca::new("omni test CA");
    let dir = PemDir::new();
    let server = mtls_server(&ca, &dir).await;

    let stranger = Ca::new("someone else's CA");
    let (cert, key) = stranger.leaf("orders.omni.svc");
    let impostor = ClientTls::from_pem(ca.pem.clone())
        .with_server_name("inventory.omni.svc")
        .with_identity(cert, key);
    let refused = health(channel(&server, &impostor)).await.unwrap_err();
    assert_refused_by_tls(&refused, "UnknownCA");

    let plaintext = tonic::transport::Endpoint::from_shared(format!(
        "http://127.0.0.1:{}",
        server.local_addr().port()
    ))
    .unwrap()
    .timeout(Duration::from_secs(5))
    .connect_lazy();
    assert!(
        health(plaintext).await.is_err(),
        "plaintext must not be served"
    );

    server.shutdown().await.unwrap();
}

#[test]
fn tls_requires_an_https_address() {
    let ca = Ca::new("omni test CA");
    let err = lazy_channel_with_tls(
        "http://127.0.0.1:50051",
        Duration::from_secs(1),
        Some(&ClientTls::from_pem(ca.pem)),
    )
    .unwrap_err();
    assert!(err.contains("https://"), "{err}");
}

#[test]
fn the_client_presents_the_server_certificate_unless_told_otherwise() {
    let ca = Ca::new("omni test CA");
    let dir = PemDir::new();
    let (cert, key) = ca.leaf("orders.omni.svc");
    let env = Env::from_pairs([
        ("TLS_CA_FILE", dir.write("ca.pem", &ca.pem)),
        ("TLS_CERT_FILE", dir.write("svc.pem", &cert)),
        ("TLS_KEY_FILE", dir.write("svc.key", &key)),
    ]);
    let tls = ClientTls::from_env(&env).unwrap().unwrap();
    assert!(format!("{tls:?}").contains("presents_certificate: true"));
    let only_ca = Env::from_pairs([("TLS_CA_FILE", dir.write("ca2.pem", &ca.pem))]);
    let tls = ClientTls::from_env(&only_ca).unwrap().unwrap();
    assert!(format!("{tls:?}").contains("presents_certificate: false"));
}
