//! What both consumer loops (RabbitMQ and in-process) report about each message: the span its
//! handler runs in — a child of the trace that wrote the event, so one trace covers
//! `PlaceOrder → event → points earned` — and the outcome counters.

use std::collections::HashMap;

use crate::metrics::Counter;
use crate::telemetry;

use super::envelope::Envelope;

static HANDLED: Counter = Counter::new(
    "events_handled_total",
    "Events a consumer handled successfully, by queue.",
);
static RETRIED: Counter = Counter::new(
    "events_retried_total",
    "Deliveries that failed and will be delivered again after a backoff, by queue.",
);
static DEAD_LETTERED: Counter = Counter::new(
    "events_dead_lettered_total",
    "Messages parked for an operator, by queue and reason (rejected, delivery_limit, malformed).",
);

/// Why a message went to its parking queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parked {
    /// The handler said retrying cannot help.
    Rejected,
    /// Every delivery failed.
    DeliveryLimit,
    /// The body was not an envelope (RabbitMQ only: in-process messages are always envelopes).
    Malformed,
}

impl Parked {
    fn as_str(self) -> &'static str {
        match self {
            Self::Rejected => "rejected",
            Self::DeliveryLimit => "delivery_limit",
            Self::Malformed => "malformed",
        }
    }
}

/// The span a handler runs in. `system` is `rabbitmq` or `in-process`.
pub(crate) fn consume_span(
    system: &'static str,
    queue: &str,
    envelope: &Envelope,
    delivery: u32,
) -> tracing::Span {
    let span = tracing::info_span!(
        "event.consume",
        otel.kind = "consumer",
        messaging.system = system,
        messaging.destination = queue,
        event_id = envelope.id(),
        event_type = envelope.event_type(),
        // The aggregate: order id, reservation id, member id… — what an operator searches by.
        subject = envelope.subject(),
        delivery,
    );
    if let Some(traceparent) = envelope.traceparent() {
        let mut carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
        if let Some(state) = envelope.tracestate() {
            carrier.insert("tracestate".to_owned(), state.to_owned());
        }
        telemetry::set_parent_from(&span, &carrier);
    }
    span
}

pub(crate) fn handled(queue: &str) {
    HANDLED.inc(&[("queue", queue)]);
}

pub(crate) fn retried(queue: &str) {
    RETRIED.inc(&[("queue", queue)]);
}

pub(crate) fn parked(queue: &str, why: Parked) {
    DEAD_LETTERED.inc(&[("queue", queue), ("reason", why.as_str())]);
}

/// The trace context of the span that is building an event, if it belongs to a trace.
pub(crate) fn current_context() -> (Option<String>, Option<String>) {
    let mut carrier = HashMap::new();
    telemetry::inject_current(&mut carrier);
    let traceparent = carrier.remove("traceparent");
    let tracestate = carrier.remove("tracestate").filter(|s| !s.is_empty());
    (traceparent, tracestate)
}
