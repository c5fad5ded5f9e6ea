//! Telemetry, set up once per process.
//!
//! `tracing` everywhere; human-readable logs by default and JSON with `LOG_FORMAT=json`; spans are
//! exported over OTLP/gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. The W3C trace-context
//! propagator is installed globally so gRPC metadata and AMQP headers carry one trace across
//! services. Metrics recorded through [`crate::metrics`] are exported over the same OTLP endpoint
//! (and always served as Prometheus text on the admin port). The returned guard flushes pending
//! spans and metrics when it is dropped at shutdown.

use std::collections::HashMap;

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{ConfigError, Env};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
    /// No log output, spans still recorded: for tests that inspect spans (`LOG_FORMAT=off`).
    Off,
}

#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    pub service_name: String,
    pub log_format: LogFormat,
    pub otlp_endpoint: Option<String>,
    /// `RUST_LOG`-style filter.
    pub filter: String,
}

impl TelemetryConfig {
    pub fn from_env(env: &Env, service_name: &str) -> Result<Self, ConfigError> {
        let log_format = match env.get("LOG_FORMAT").as_deref().map(str::trim) {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some("off") => LogFormat::Off,
            Some(other) => {
                return Err(ConfigError::new(
                    "LOG_FORMAT",
                    other,
                    "must be text, json or off",
                ));
            }
        };
        let otlp_endpoint = env
            .url_opt("OTEL_EXPORTER_OTLP_ENDPOINT", &["http", "https"])?
            .map(|s| s.expose().to_owned());
        let filter = env
            .get("RUST_LOG")
            .unwrap_or_else(|| "info,sqlx=warn,lapin=warn,h2=warn,tower=warn".to_owned());
        EnvFilter::try_new(&filter)
            .map_err(|e| ConfigError::new("RUST_LOG", &filter, e.to_string()))?;
        let service_name = env
            .get("OTEL_SERVICE_NAME")
            .unwrap_or_else(|| service_name.to_owned());
        Ok(Self {
            service_name,
            log_format,
            otlp_endpoint,
            filter,
        })
    }
}

/// Flushes and shuts the exporter down when dropped.
#[must_use = "dropping the guard stops span export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    meters: Option<SdkMeterProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.force_flush();
            let _ = provider.shutdown();
        }
        if let Some(meters) = self.meters.take() {
            let _ = meters.force_flush();
            let _ = meters.shutdown();
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("OTEL_EXPORTER_OTLP_ENDPOINT: cannot build the OTLP exporter: {0}")]
    Exporter(String),
    #[error("telemetry was already initialised in this process")]
    AlreadyInitialised,
}

/// Installs the global subscriber. Call once, from `main`.
pub fn init(config: &TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    let resource = || {
        Resource::builder()
            .with_service_name(config.service_name.clone())
            .build()
    };
    let provider = match &config.otlp_endpoint {
        None => None,
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .build()
                .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(resource())
                    .build(),
            )
        }
    };
    let meters = match &config.otlp_endpoint {
        None => None,
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .build()
                .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
            let meters = SdkMeterProvider::builder()
                .with_periodic_exporter(exporter)
                .with_resource(resource())
                .build();
            crate::metrics::install_meter_provider(&meters);
            Some(meters)
        }
    };
    let mut guard = install(config, provider)?;
    guard.meters = meters;
    Ok(guard)
}

/// Installs the global subscriber with a given provider (tests use an in-memory exporter).
pub fn install(
    config: &TelemetryConfig,
    provider: Option<SdkTracerProvider>,
) -> Result<TelemetryGuard, TelemetryError> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_new(&config.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt_layer = match config.log_format {
        LogFormat::Text => Some(tracing_subscriber::fmt::layer().boxed()),
        LogFormat::Json => Some(
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .boxed(),
        ),
        LogFormat::Off => None,
    };
    let otel_layer = provider.as_ref().map(|p| {
        opentelemetry::global::set_tracer_provider(p.clone());
        tracing_opentelemetry::layer().with_tracer(p.tracer(config.service_name.clone()))
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInitialised)?;
    Ok(TelemetryGuard {
        provider,
        meters: None,
    })
}

/// Writes the current span's trace context (`traceparent`, `tracestate`) into a carrier.
pub fn inject_current(carrier: &mut dyn Injector) {
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, carrier));
}

/// The current span's W3C `traceparent`, if there is a sampled trace to continue.
pub fn current_traceparent() -> Option<String> {
    let mut map = HashMap::new();
    inject_current(&mut map);
    map.remove("traceparent")
}

/// Makes `span` a child of the trace context found in `carrier` (a no-op when there is none).
pub fn set_parent_from(span: &tracing::Span, carrier: &dyn Extractor) {
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(carrier));
    let _ = span.set_parent(cx);
}

/// Makes `span` a child of a bare `traceparent` string (as carried in a CloudEvent).
pub fn set_parent_from_traceparent(span: &tracing::Span, traceparent: &str) {
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    set_parent_from(span, &carrier);
}

/// Reads trace context from HTTP/2 headers (gRPC metadata).
pub struct HeaderExtractor<'a>(pub &'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Writes trace context into gRPC request metadata, for calls to other services.
pub struct MetadataInjector<'a>(pub &'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(key, value);
        }
    }
}
