//! One trace across services and the metrics every server records.
//!
//! Spans go to an in-memory exporter installed once for this test binary (the global subscriber
//! can be set only once per process); each test finds its own spans by its own trace id.

use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use omni_platform::events::in_process::InProcessBus;
use omni_platform::events::rabbitmq::{RabbitMqBus, Topology};
use omni_platform::events::{Envelope, EventBus, EventHandler, HandlerError, Subscription};
use omni_platform::grpc::client::{CallContext, lazy_channel};
use omni_platform::grpc::{GrpcServices, serve};
use omni_platform::metrics;
use omni_platform::telemetry::{self, LogFormat, TelemetryConfig, TelemetryGuard};
use opentelemetry::trace::{SpanId, TraceContextExt, TraceId};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Waits for `condition` with a deadline instead of sleeping a guessed time.
async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let give_up = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < give_up,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[derive(Debug, Clone, Default)]
struct Spans(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Spans {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        self.0.lock().unwrap().extend(batch);
        std::future::ready(Ok(()))
    }
}

impl Spans {
    fn find(&self, name: &str, trace: TraceId) -> Option<SpanData> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .find(|s| s.name == name && s.span_context.trace_id() == trace)
            .cloned()
    }

    /// Spans are exported when they end, which may be after the caller got its answer.
    async fn wait_for(&self, name: &str, trace: TraceId) -> SpanData {
        eventually(&format!("a {name} span in trace {trace}"), || async {
            self.find(name, trace).is_some()
        })
        .await;
        self.find(name, trace).unwrap()
    }
}

fn exported_spans() -> Spans {
    static INSTALLED: OnceLock<(Spans, TelemetryGuard)> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let spans = Spans::default();
            let provider = SdkTracerProvider::builder()
                .with_simple_exporter(spans.clone())
                .build();
            let config = TelemetryConfig {
                service_name: "platform-test".to_owned(),
                log_format: LogFormat::Off,
                otlp_endpoint: None,
                filter: "info".to_owned(),
            };
            let guard = telemetry::install(&config, Some(provider))
                .expect("no other global subscriber in this test binary (unset TEST_LOG)");
            (spans, guard)
        })
        .0
        .clone()
}

fn ids(span: &tracing::Span) -> (TraceId, SpanId) {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    assert!(sc.is_valid(), "the test span has no OpenTelemetry context");
    (sc.trace_id(), sc.span_id())
}

#[tokio::test]
async fn a_grpc_call_continues_the_callers_trace_and_is_counted() {
    let spans = exported_spans();
    let server = serve(
        "127.0.0.1:0".parse().unwrap(),
        GrpcServices::new(),
        std::future::pending(),
    )
    .await
    .unwrap();
    let metrics_server = metrics::serve_metrics("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let channel = lazy_channel(
        &format!("http://{}", server.local_addr()),
        Duration::from_secs(5),
    )
    .unwrap();
    let mut health = HealthClient::with_interceptor(channel, CallContext::default());

    let caller = tracing::info_span!("caller");
    let (trace, caller_id) = ids(&caller);
    async {
        health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap();
        let missing = health
            .check(HealthCheckRequest {
                service: "no.such.Service".to_owned(),
            })
            .await
            .unwrap_err();
        assert_eq!(missing.code(), tonic::Code::NotFound);
    }
    .instrument(caller.clone())
    .await;

    let server_span = spans.wait_for("grpc.request", trace).await;
    assert_eq!(
        server_span.parent_span_id, caller_id,
        "the server span is a child of the client's span"
    );
    assert!(server_span.parent_span_is_remote);

    let text = metrics::scrape(metrics_server.local_addr()).await.unwrap();
    let value = |line_start: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(line_start))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {line_start} in\n{text}"))
    };
    let ok =
        r#"grpc_server_requests_total{code="OK",method="Check",service="grpc.health.v1.Health"}"#;
    let not_found = r#"grpc_server_requests_total{code="NOT_FOUND",method="Check",service="grpc.health.v1.Health"}"#;
    assert!(value(ok) >= 1);
    assert!(value(not_found) >= 1);
    assert!(
        value(
            r#"grpc_server_request_duration_seconds_count{method="Check",service="grpc.health.v1.Health"}"#
        ) >= 2
    );
    assert!(text.contains("# TYPE grpc_server_request_duration_seconds histogram"));

    metrics_server.shutdown().await;
    server.shutdown().await.unwrap();
}

/// Records the trace its handler ran in.
struct TraceRecorder(Arc<Mutex<Vec<TraceId>>>);

#[async_trait]
impl EventHandler for TraceRecorder {
    async fn handle(&self, _event: &Envelope) -> Result<(), HandlerError> {
        let cx = tracing::Span::current().context();
        self.0
            .lock()
            .unwrap()
            .push(cx.span().span_context().trace_id());
        Ok(())
    }
}

#[tokio::test]
async fn an_event_carries_the_trace_that_built_it_to_the_in_process_consumer() {
    let queue = omni_platform::testkit::unique_name("test.trace");
    consumer_continues_the_producers_trace(&InProcessBus::new(), queue).await;
}

#[tokio::test]
async fn an_event_carries_the_trace_that_built_it_through_rabbitmq() {
    let bus = RabbitMqBus::connect(
        &omni_platform::testkit::amqp_url(),
        Topology::unique("omni-test"),
        "orders",
    )
    .await
    .expect("RabbitMQ must be running (scripts/infra.sh)");
    let queue = omni_platform::testkit::unique_name("test.trace");
    consumer_continues_the_producers_trace(&bus, queue.clone()).await;
    bus.delete_topology(&[&queue]).await.unwrap();
}

/// The envelope takes the producer's trace when built; the consumer's span is its child.
async fn consumer_continues_the_producers_trace(bus: &dyn EventBus, queue: String) {
    let spans = exported_spans();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let consumer = bus
        .subscribe(
            Subscription::new(queue.clone(), ["order.placed"]),
            Arc::new(TraceRecorder(seen.clone())),
        )
        .await
        .unwrap();

    let producer = tracing::info_span!("place-order");
    let (trace, producer_id) = ids(&producer);
    let event = producer.in_scope(|| {
        Envelope::new("orders", "order.placed", "order-1", serde_json::json!({})).unwrap()
    });
    let traceparent = event.traceparent().expect("the envelope took the trace");
    assert!(traceparent.contains(&trace.to_string()), "{traceparent}");
    bus.publish(&[event]).await.unwrap();

    let consume = spans.wait_for("event.consume", trace).await;
    assert_eq!(consume.parent_span_id, producer_id);
    assert!(
        consume
            .attributes
            .iter()
            .any(|kv| kv.key.as_str() == "subject" && kv.value.as_str() == "order-1"),
        "{:?}",
        consume.attributes
    );
    assert_eq!(
        *seen.lock().unwrap(),
        [trace],
        "the handler ran in that trace"
    );
    assert!(
        metrics::global()
            .render()
            .contains(&format!("events_handled_total{{queue=\"{queue}\"}} 1"))
    );
    consumer.shutdown().await;
}

#[test]
fn an_envelope_built_outside_any_trace_has_no_traceparent() {
    let _ = exported_spans();
    let event = Envelope::new("orders", "order.placed", "o", serde_json::json!({})).unwrap();
    assert_eq!(event.traceparent(), None);
}
