//! One trace from the channel's PlaceOrder, through inventory's Reserve, across the RabbitMQ hop
//! to the member service's event handler (ARCHITECTURE §5, observability).

use std::sync::OnceLock;

use omni_platform::telemetry::{self, LogFormat, TelemetryConfig, TelemetryGuard};
use opentelemetry::trace::{TraceContextExt, TraceId};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::support::*;

/// The global subscriber can be installed once per process; every test in this binary then
/// reports its spans here, so the test below picks its own trace by id.
fn spans() -> &'static InMemorySpanExporter {
    static INSTALLED: OnceLock<(InMemorySpanExporter, TelemetryGuard)> = OnceLock::new();
    &INSTALLED
        .get_or_init(|| {
            let exporter = InMemorySpanExporter::default();
            let provider = SdkTracerProvider::builder()
                .with_simple_exporter(exporter.clone())
                .build();
            let config = TelemetryConfig {
                service_name: "omni-integration-tests".to_owned(),
                log_format: LogFormat::Text,
                otlp_endpoint: None,
                // Spans of the services at info; their log lines stay quiet unless they warn.
                filter: "warn,omni_platform=info,omni_inventory=info,omni_order_routing=info,\
                         omni_member=info,it=info"
                    .to_owned(),
            };
            let guard = telemetry::install(&config, Some(provider)).expect("install telemetry");
            (exporter, guard)
        })
        .0
}

fn attribute(span: &SpanData, key: &str) -> String {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
        .unwrap_or_default()
}

fn describe(span: &SpanData) -> String {
    format!(
        "{} {} method={} queue={} event={}",
        span.span_context.trace_id(),
        span.name,
        attribute(span, "rpc.method"),
        attribute(span, "messaging.destination"),
        attribute(span, "event_type"),
    )
}

fn is_call(span: &SpanData, method: &str) -> bool {
    span.name == "grpc.request" && attribute(span, "rpc.method").ends_with(method)
}

fn is_member_handler(span: &SpanData, event_type: &str) -> bool {
    attribute(span, "messaging.destination").ends_with("member.orders")
        && attribute(span, "event_type") == event_type
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_covers_place_order_reserve_and_the_member_handler() {
    let exporter = spans();
    let system = System::start().await;
    system.warehouse("wh-trace", (31.1000, 121.3000)).await;
    system.pool("web", &["wh-trace"]).await;
    system.receive("trace-sku", "wh-trace", 5).await;
    let member = system.enroll("web", "+8613900000009").await;

    // The channel's own span: the gRPC client injects its `traceparent`, so everything the
    // order causes belongs to this trace and no other test's.
    let journey = tracing::info_span!("channel.checkout");
    let trace = journey.context().span().span_context().trace_id();
    assert_ne!(trace, TraceId::INVALID, "the journey span is sampled");
    system
        .place(draft(
            "web",
            Some(&member),
            vec![line("trace-sku", 1, 10_000)],
            ship_to(CUSTOMER),
        ))
        .instrument(journey)
        .await
        .expect("placed");

    let same_trace = |all: &[SpanData]| -> Vec<String> {
        all.iter()
            .filter(|s| s.span_context.trace_id() == trace)
            .map(describe)
            .collect()
    };
    let found = tokio::time::timeout(EVENTUAL, async {
        loop {
            let all = exporter.get_finished_spans().unwrap_or_default();
            let in_trace = |f: &dyn Fn(&SpanData) -> bool| {
                all.iter()
                    .any(|s| s.span_context.trace_id() == trace && f(s))
            };
            if in_trace(&|s| is_call(s, "OrderService/PlaceOrder"))
                && in_trace(&|s| is_call(s, "InventoryService/Reserve"))
                && in_trace(&|s| is_member_handler(s, "omni.order.placed.v1"))
            {
                return;
            }
            // A poll interval; the condition above is what the test waits for.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await;
    if found.is_err() {
        let all = exporter.get_finished_spans().unwrap_or_default();
        let member_handlers: Vec<String> = all
            .iter()
            .filter(|s| is_member_handler(s, "omni.order.placed.v1"))
            .map(describe)
            .collect();
        panic!(
            "trace {trace} lacks the PlaceOrder, the Reserve or the member handler span.\n\
             spans in the trace:\n  {}\nmember order.placed handler spans (any trace):\n  {}",
            same_trace(&all).join("\n  "),
            member_handlers.join("\n  ")
        );
    }
    system.shutdown().await;
}
