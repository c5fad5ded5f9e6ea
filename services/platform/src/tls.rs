//! Service-to-service mutual TLS, optional and off by default.
//!
//! Tokens say *who* calls; mTLS makes sure only holders of a certificate from our CA can open a
//! connection at all, so a leaked token is useless from outside the mesh. Both sides are read
//! from files (Kubernetes mounts them from a Secret) and checked at start, so a missing or
//! malformed file fails with the variable's name instead of at the first handshake.
//!
//! | variable | side | meaning |
//! |---|---|---|
//! | `TLS_CERT_FILE`, `TLS_KEY_FILE` | server | the server's certificate chain and PKCS#8/RSA/SEC1 key (PEM) |
//! | `TLS_CLIENT_CA_FILE` | server | CA whose certificates clients must present; unset = TLS without client authentication |
//! | `TLS_CA_FILE` | client | CA that signed the peers' server certificates; turns TLS on for outgoing calls |
//! | `TLS_CLIENT_CERT_FILE`, `TLS_CLIENT_KEY_FILE` | client | the certificate presented to peers; default `TLS_CERT_FILE`/`TLS_KEY_FILE` |
//! | `TLS_SERVER_NAME` | client | name checked in the peer's certificate when it is not the address's host |

use std::fmt;

use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::config::{ConfigError, Env};

/// What a server presents, and whom it lets in.
#[derive(Clone)]
pub struct ServerTls {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    client_ca_pem: Option<Vec<u8>>,
}

// The key never reaches a log line.
impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("requires_client_certificate", &self.client_ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// TLS with the given certificate chain and key; clients are not asked for a certificate
    /// until [`ServerTls::require_client_certificates`].
    pub fn from_pem(cert_pem: impl Into<Vec<u8>>, key_pem: impl Into<Vec<u8>>) -> Self {
        Self {
            cert_pem: cert_pem.into(),
            key_pem: key_pem.into(),
            client_ca_pem: None,
        }
    }

    /// Refuses any client that does not present a certificate signed by `ca_pem`.
    pub fn require_client_certificates(mut self, ca_pem: impl Into<Vec<u8>>) -> Self {
        self.client_ca_pem = Some(ca_pem.into());
        self
    }

    pub fn requires_client_certificates(&self) -> bool {
        self.client_ca_pem.is_some()
    }

    /// `TLS_CERT_FILE` + `TLS_KEY_FILE` (+ `TLS_CLIENT_CA_FILE`); `None` when neither is set.
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        let cert = env.get("TLS_CERT_FILE");
        let key = env.get("TLS_KEY_FILE");
        let client_ca = env.get("TLS_CLIENT_CA_FILE");
        let (cert, key) = match (cert, key) {
            (None, None) => {
                return match client_ca {
                    Some(path) => Err(ConfigError::new(
                        "TLS_CLIENT_CA_FILE",
                        &path,
                        "needs TLS_CERT_FILE and TLS_KEY_FILE: client certificates are only asked for over TLS",
                    )),
                    None => Ok(None),
                };
            }
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "TLS_KEY_FILE",
                    "",
                    "must be set when TLS_CERT_FILE is",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "TLS_CERT_FILE",
                    "",
                    "must be set when TLS_KEY_FILE is",
                ));
            }
            (Some(cert), Some(key)) => (cert, key),
        };
        let mut tls = Self::from_pem(
            read_pem("TLS_CERT_FILE", &cert, PemKind::Certificate)?,
            read_pem("TLS_KEY_FILE", &key, PemKind::PrivateKey)?,
        );
        if let Some(ca) = client_ca {
            tls = tls.require_client_certificates(read_pem(
                "TLS_CLIENT_CA_FILE",
                &ca,
                PemKind::Certificate,
            )?);
        }
        // Builds the acceptor once now so a key that does not parse stops the start.
        tonic::transport::Server::builder()
            .tls_config(tls.tonic_config())
            .map_err(|e| ConfigError::new("TLS_KEY_FILE", &key, e.to_string()))?;
        Ok(Some(tls))
    }

    pub(crate) fn tonic_config(&self) -> ServerTlsConfig {
        let config =
            ServerTlsConfig::new().identity(Identity::from_pem(&self.cert_pem, &self.key_pem));
        match &self.client_ca_pem {
            // With a client CA tonic requires the certificate (client_auth_optional = false).
            Some(ca) => config.client_ca_root(Certificate::from_pem(ca)),
            None => config,
        }
    }
}

/// How a client checks the servers it calls, and what it presents to them.
#[derive(Clone)]
pub struct ClientTls {
    ca_pem: Vec<u8>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
    server_name: Option<String>,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("presents_certificate", &self.identity.is_some())
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl ClientTls {
    /// Trusts servers whose certificate `ca_pem` signed; presents no certificate.
    pub fn from_pem(ca_pem: impl Into<Vec<u8>>) -> Self {
        Self {
            ca_pem: ca_pem.into(),
            identity: None,
            server_name: None,
        }
    }

    /// Presents this certificate to servers that require one.
    pub fn with_identity(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.identity = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// The name the server's certificate must carry, when the address is an IP or an alias.
    pub fn with_server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// `TLS_CA_FILE` (+ `TLS_CLIENT_CERT_FILE`/`TLS_CLIENT_KEY_FILE`, falling back to the
    /// server's `TLS_CERT_FILE`/`TLS_KEY_FILE`, + `TLS_SERVER_NAME`); `None` when no CA is set.
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        let Some(ca) = env.get("TLS_CA_FILE") else {
            return Ok(None);
        };
        let mut tls = Self::from_pem(read_pem("TLS_CA_FILE", &ca, PemKind::Certificate)?);
        let own = (
            env.get("TLS_CLIENT_CERT_FILE"),
            env.get("TLS_CLIENT_KEY_FILE"),
        );
        let (cert_var, key_var, cert, key) = match own {
            (Some(c), Some(k)) => (
                "TLS_CLIENT_CERT_FILE",
                "TLS_CLIENT_KEY_FILE",
                Some(c),
                Some(k),
            ),
            (None, None) => (
                "TLS_CERT_FILE",
                "TLS_KEY_FILE",
                env.get("TLS_CERT_FILE"),
                env.get("TLS_KEY_FILE"),
            ),
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "TLS_CLIENT_KEY_FILE",
                    "",
                    "must be set when TLS_CLIENT_CERT_FILE is",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "TLS_CLIENT_CERT_FILE",
                    "",
                    "must be set when TLS_CLIENT_KEY_FILE is",
                ));
            }
        };
        if let (Some(cert), Some(key)) = (cert, key) {
            tls = tls.with_identity(
                read_pem(cert_var, &cert, PemKind::Certificate)?,
                read_pem(key_var, &key, PemKind::PrivateKey)?,
            );
        }
        if let Some(name) = env.get("TLS_SERVER_NAME") {
            tls = tls.with_server_name(name);
        }
        Ok(Some(tls))
    }

    pub(crate) fn tonic_config(&self) -> ClientTlsConfig {
        let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca_pem));
        if let Some((cert, key)) = &self.identity {
            config = config.identity(Identity::from_pem(cert, key));
        }
        if let Some(name) = &self.server_name {
            config = config.domain_name(name.clone());
        }
        config
    }
}

#[derive(Clone, Copy)]
enum PemKind {
    Certificate,
    PrivateKey,
}

/// Reads a PEM file and checks it holds what the variable promises, so swapping the cert and
/// key variables is caught at start.
fn read_pem(variable: &str, path: &str, kind: PemKind) -> Result<Vec<u8>, ConfigError> {
    let pem = std::fs::read(path)
        .map_err(|e| ConfigError::new(variable, path, format!("cannot read: {e}")))?;
    let text = String::from_utf8_lossy(&pem);
    let found = match kind {
        PemKind::Certificate => text.contains("-----BEGIN CERTIFICATE-----"),
        PemKind::PrivateKey => text.contains("PRIVATE KEY-----"),
    };
    if found {
        Ok(pem)
    } else {
        let what = match kind {
            PemKind::Certificate => "no PEM certificate (-----BEGIN CERTIFICATE-----) in the file",
            PemKind::PrivateKey => {
                "no PEM private key (-----BEGIN ... PRIVATE KEY-----) in the file"
            }
        };
        Err(ConfigError::new(variable, path, what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn temp_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(crate::testkit::unique_name("omni_tls"));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn nothing_set_means_plaintext() {
        let env = Env::from_pairs::<_, &str, &str>([]);
        assert!(ServerTls::from_env(&env).unwrap().is_none());
        assert!(ClientTls::from_env(&env).unwrap().is_none());
    }

    #[test]
    fn half_a_pair_names_the_missing_variable() {
        let cases = [
            (vec![("TLS_CERT_FILE", "/x.pem")], "TLS_KEY_FILE"),
            (vec![("TLS_KEY_FILE", "/x.pem")], "TLS_CERT_FILE"),
            (vec![("TLS_CLIENT_CA_FILE", "/x.pem")], "TLS_CLIENT_CA_FILE"),
        ];
        for (vars, expected) in cases {
            let err = ServerTls::from_env(&Env::from_pairs(vars)).unwrap_err();
            assert_eq!(err.variable, expected, "{err}");
        }
    }

    #[test]
    fn a_missing_or_wrong_file_names_its_variable() {
        let dir = temp_dir();
        let key_text = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let key = write(&dir, "key.pem", key_text);
        let err = ServerTls::from_env(&Env::from_pairs([
            ("TLS_CERT_FILE", key.as_str()),
            ("TLS_KEY_FILE", key.as_str()),
        ]))
        .unwrap_err();
        assert_eq!(err.variable, "TLS_CERT_FILE", "a key is not a certificate");
        let err = ClientTls::from_env(&Env::from_pairs([(
            "TLS_CA_FILE",
            dir.join("absent.pem").to_string_lossy().as_ref(),
        )]))
        .unwrap_err();
        assert_eq!(err.variable, "TLS_CA_FILE");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn debug_output_hides_the_key() {
        let tls = ServerTls::from_pem("cert", "super-secret-key").require_client_certificates("ca");
        let shown = format!("{tls:?}");
        assert!(!shown.contains("super-secret-key"), "{shown}");
        assert!(
            shown.contains("requires_client_certificate: true"),
            "{shown}"
        );
    }
}
