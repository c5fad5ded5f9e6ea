//! CloudEvents 1.0 envelope in structured JSON mode (`application/cloudevents+json`).
//!
//! Every event on the bus, in the outbox and in a parking queue is one of these, so a consumer
//! written in any language needs nothing but the CloudEvents spec and `docs/asyncapi.yaml`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::names;

/// Content type of a structured-mode CloudEvent on the wire (AMQP `content_type`).
pub const CONTENT_TYPE: &str = "application/cloudevents+json";
const SPEC_VERSION: &str = "1.0";
const DATA_CONTENT_TYPE: &str = "application/json";
/// AMQP short strings (routing keys) cannot be longer.
const MAX_ROUTING_KEY_LEN: usize = 255;
/// Ids from other publishers (a WMS) need not be UUIDs, but must fit an AMQP `message_id`
/// and an outbox/inbox key.
const MAX_ID_LEN: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// The event name cannot be a routing key: fix the caller.
    #[error("invalid event name {name:?}: {reason}")]
    InvalidEventName { name: String, reason: &'static str },
    /// The payload could not be turned into JSON: fix the payload type.
    #[error("event data is not serialisable: {0}")]
    UnserialisableData(#[source] serde_json::Error),
    /// Bytes from the wire are not one of our envelopes: park the message, retrying cannot help.
    #[error("malformed envelope: {0}")]
    Malformed(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    specversion: String,
    /// UUID v7: unique, and time-ordered so ids sort like the outbox.
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    source: String,
    time: DateTime<Utc>,
    /// The aggregate the event is about (order id, sku@location …), for per-aggregate ordering.
    subject: String,
    datacontenttype: String,
    data: serde_json::Value,
    /// Extension: the routing key the event was published with. `type` drops the parameter of
    /// `fulfilment.requested.<location>`, and a parked message loses its key to the DLX, so
    /// replay needs it from here.
    routingkey: String,
    /// Extension: per-aggregate sequence number, so a consumer can spot an event that arrived
    /// before the one it follows and retry it later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sequence: Option<u64>,
    /// Extension (W3C distributed tracing): also copied into the AMQP headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    traceparent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tracestate: Option<String>,
}

impl Envelope {
    /// A new event. `event_name` is the routing key (`order.placed`,
    /// `fulfilment.requested.store-17`); `source` is the publishing service's short name.
    ///
    /// `time` is taken from the wall clock: it only documents when the event was built. Code
    /// with an injected clock sets it with [`Envelope::at`].
    ///
    /// The trace context of the current span is attached, so the event — written to the outbox
    /// in the transaction of that span — carries the trace to its consumers without each
    /// service remembering to do it.
    pub fn new(
        source: &str,
        event_name: &str,
        subject: &str,
        data: impl Serialize,
    ) -> Result<Self, EnvelopeError> {
        validate_routing_key(event_name)?;
        let data = serde_json::to_value(data).map_err(EnvelopeError::UnserialisableData)?;
        let (traceparent, tracestate) = super::observe::current_context();
        Ok(Self {
            specversion: SPEC_VERSION.to_owned(),
            id: uuid::Uuid::now_v7().to_string(),
            event_type: format!("omni.{}.v1", names::event_name_of(event_name)),
            source: source.to_owned(),
            time: Utc::now(),
            subject: subject.to_owned(),
            datacontenttype: DATA_CONTENT_TYPE.to_owned(),
            data,
            routingkey: event_name.to_owned(),
            sequence: None,
            traceparent,
            tracestate,
        })
    }

    /// Sets the event time from the caller's clock.
    pub fn at(mut self, time: DateTime<Utc>) -> Self {
        self.time = time;
        self
    }

    pub fn with_sequence(mut self, sequence: u64) -> Self {
        self.sequence = Some(sequence);
        self
    }

    /// Attaches the W3C `traceparent` of the span that caused the event, so the consumer's work
    /// joins the same trace.
    pub fn with_traceparent(mut self, traceparent: impl Into<String>) -> Self {
        self.traceparent = Some(traceparent.into());
        self
    }

    pub fn with_tracestate(mut self, tracestate: impl Into<String>) -> Self {
        self.tracestate = Some(tracestate.into());
        self
    }

    pub fn id(&self) -> &str {
        &self.id
    }
    /// CloudEvents `type`, e.g. `omni.order.placed.v1`.
    pub fn event_type(&self) -> &str {
        &self.event_type
    }
    pub fn source(&self) -> &str {
        &self.source
    }
    pub fn time(&self) -> DateTime<Utc> {
        self.time
    }
    pub fn subject(&self) -> &str {
        &self.subject
    }
    pub fn routing_key(&self) -> &str {
        &self.routingkey
    }
    /// Event name without the routing parameter, e.g. `fulfilment.requested`.
    pub fn event_name(&self) -> &str {
        names::event_name_of(&self.routingkey)
    }
    pub fn sequence(&self) -> Option<u64> {
        self.sequence
    }
    pub fn traceparent(&self) -> Option<&str> {
        self.traceparent.as_deref()
    }
    pub fn tracestate(&self) -> Option<&str> {
        self.tracestate.as_deref()
    }
    pub fn data(&self) -> &serde_json::Value {
        &self.data
    }

    /// The payload as the consumer's type. A mismatch is a poison message, not a retry.
    pub fn data_as<T: DeserializeOwned>(&self) -> Result<T, EnvelopeError> {
        T::deserialize(&self.data).map_err(|e| EnvelopeError::Malformed(e.to_string()))
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serialising a struct of strings, numbers and a `Value` cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn to_json_string(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let envelope: Self =
            serde_json::from_slice(bytes).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        if envelope.specversion != SPEC_VERSION {
            return Err(EnvelopeError::Malformed(format!(
                "unsupported specversion {:?}",
                envelope.specversion
            )));
        }
        validate_routing_key(&envelope.routingkey)
            .map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        if envelope.id.is_empty() || envelope.id.len() > MAX_ID_LEN {
            return Err(EnvelopeError::Malformed(format!(
                "id must be 1 to {MAX_ID_LEN} bytes"
            )));
        }
        Ok(envelope)
    }
}

/// Routing keys are dot-separated words; `*` and `#` are binding wildcards and must never
/// appear in a published key.
fn validate_routing_key(key: &str) -> Result<(), EnvelopeError> {
    let invalid = |reason| EnvelopeError::InvalidEventName {
        name: key.to_owned(),
        reason,
    };
    if key.is_empty() || key.len() > MAX_ROUTING_KEY_LEN {
        return Err(invalid("must be 1 to 255 bytes"));
    }
    for word in key.split('.') {
        if word.is_empty() {
            return Err(invalid("empty word between dots"));
        }
        if !word
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(invalid("words are [a-z0-9_-]"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn sample() -> Envelope {
        Envelope::new(
            "orders",
            "order.placed",
            "0190d5c8-0000-7000-8000-000000000001",
            serde_json::json!({"total": 1200}),
        )
        .unwrap()
    }

    #[test]
    fn new_envelope_follows_cloudevents_and_our_naming() {
        let e = sample();
        let json: serde_json::Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["type"], "omni.order.placed.v1");
        assert_eq!(json["source"], "orders");
        assert_eq!(json["datacontenttype"], "application/json");
        assert_eq!(json["data"]["total"], 1200);
        assert_eq!(uuid::Uuid::parse_str(e.id()).unwrap().get_version_num(), 7);
        assert!(
            json.get("sequence").is_none(),
            "absent extensions are omitted"
        );
    }

    #[test]
    fn fulfilment_type_drops_the_location_but_the_routing_key_keeps_it() {
        let e = Envelope::new("orders", "fulfilment.requested.wh-1", "o1", ()).unwrap();
        assert_eq!(e.event_type(), "omni.fulfilment.requested.v1");
        assert_eq!(e.routing_key(), "fulfilment.requested.wh-1");
        assert_eq!(e.event_name(), "fulfilment.requested");
    }

    #[test]
    fn round_trips_through_json_with_extensions() {
        let t = Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap();
        let e = sample()
            .at(t)
            .with_sequence(3)
            .with_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .with_tracestate("k=v");
        let back = Envelope::from_json(&e.to_json()).unwrap();
        assert_eq!(back, e);
        let json: serde_json::Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(json["time"], "2025-03-01T12:00:00Z");
        assert_eq!(json["sequence"], 3);
    }

    #[test]
    fn rejects_keys_that_are_not_routing_keys() {
        for bad in ["", "order..placed", "order.#", "Order.placed", "a.*", "x y"] {
            assert!(
                matches!(
                    Envelope::new("orders", bad, "s", ()),
                    Err(EnvelopeError::InvalidEventName { .. })
                ),
                "{bad:?} should be refused"
            );
        }
        assert!(Envelope::new("orders", &"a".repeat(256), "s", ()).is_err());
    }

    #[test]
    fn from_json_refuses_other_spec_versions_and_garbage() {
        let mut json: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
        json["specversion"] = "0.3".into();
        let bytes = serde_json::to_vec(&json).unwrap();
        assert!(matches!(
            Envelope::from_json(&bytes),
            Err(EnvelopeError::Malformed(_))
        ));
        assert!(Envelope::from_json(b"not json").is_err());
    }

    #[test]
    fn data_as_reads_the_payload_and_reports_mismatch_as_malformed() {
        #[derive(Deserialize)]
        struct Placed {
            total: i64,
        }
        let e = sample();
        assert_eq!(e.data_as::<Placed>().unwrap().total, 1200);
        assert!(matches!(
            e.data_as::<Vec<u8>>(),
            Err(EnvelopeError::Malformed(_))
        ));
    }
}
