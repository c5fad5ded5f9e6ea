//! Calling another service: a lazily connected channel with a deadline, and an interceptor that
//! carries the service token and the current trace context on every call.

use std::time::Duration;

use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

use crate::telemetry;
use crate::tls::ClientTls;

/// A channel to `address` (`http://host:port`). It connects on first use and reconnects by
/// itself, so a peer that starts later or restarts is not a start-up failure.
pub fn lazy_channel(address: &str, request_timeout: Duration) -> Result<Channel, String> {
    lazy_channel_with_tls(address, request_timeout, None)
}

/// [`lazy_channel`] over TLS when `tls` is set (`TLS_CA_FILE`); the address must then be
/// `https://`, because tonic only starts TLS for that scheme and a silent plaintext fallback
/// would send the token in the clear.
pub fn lazy_channel_with_tls(
    address: &str,
    request_timeout: Duration,
    tls: Option<&ClientTls>,
) -> Result<Channel, String> {
    let mut endpoint = Endpoint::from_shared(address.to_owned())
        .map_err(|e| format!("{address} is not a valid endpoint: {e}"))?;
    if let Some(tls) = tls {
        if !address.starts_with("https://") {
            return Err(format!(
                "{address} must be an https:// address when TLS_CA_FILE is set"
            ));
        }
        endpoint = endpoint
            .tls_config(tls.tonic_config())
            .map_err(|e| format!("TLS settings for {address}: {e}"))?;
    }
    let endpoint = endpoint
        .connect_timeout(Duration::from_secs(2))
        .timeout(request_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    Ok(endpoint.connect_lazy())
}

/// Adds `authorization: Bearer <token>` (when set) and `traceparent` to outgoing calls.
#[derive(Clone, Default)]
pub struct CallContext {
    authorization: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl std::fmt::Debug for CallContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallContext")
            .field("token", &self.authorization.as_ref().map(|_| "***"))
            .finish()
    }
}

impl CallContext {
    pub fn with_token(token: Option<&str>) -> Result<Self, String> {
        let authorization = token
            .map(|t| {
                MetadataValue::try_from(format!("Bearer {t}"))
                    .map_err(|_| "the token contains characters not allowed in metadata".to_owned())
            })
            .transpose()?;
        Ok(Self { authorization })
    }
}

impl Interceptor for CallContext {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        telemetry::inject_current(&mut telemetry::MetadataInjector(request.metadata_mut()));
        Ok(request)
    }
}
