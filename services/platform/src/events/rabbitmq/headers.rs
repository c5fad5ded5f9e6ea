//! AMQP message properties and headers: how an [`Envelope`] is put on the wire, and trace
//! context carried in headers so non-Rust consumers can join the trace without parsing JSON.

use lapin::{
    BasicProperties,
    types::{AMQPValue, FieldTable, LongString, ShortString},
};
use opentelemetry::propagation::{Extractor, Injector};

use crate::events::envelope::{CONTENT_TYPE, Envelope};

/// Writes OpenTelemetry propagation fields (`traceparent`, `tracestate`) into AMQP headers.
pub struct HeaderInjector<'a>(pub &'a mut FieldTable);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let Ok(key) = ShortString::try_new(key) {
            self.0
                .insert(key, AMQPValue::LongString(LongString::from(value)));
        }
    }
}

/// Reads OpenTelemetry propagation fields from AMQP headers.
pub struct HeaderExtractor<'a>(pub &'a FieldTable);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        header_str(self.0, key)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.inner().keys().map(ShortString::as_str).collect()
    }
}

pub(crate) fn header_str<'a>(headers: &'a FieldTable, key: &str) -> Option<&'a str> {
    match headers.inner().get(key)? {
        AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok(),
        AMQPValue::ShortString(s) => Some(s.as_str()),
        _ => None,
    }
}

pub(crate) fn header_int(headers: &FieldTable, key: &str) -> Option<i64> {
    match headers.inner().get(key)? {
        AMQPValue::ShortShortInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortShortUInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortUInt(v) => Some(i64::from(*v)),
        AMQPValue::LongInt(v) => Some(i64::from(*v)),
        AMQPValue::LongUInt(v) => Some(i64::from(*v)),
        AMQPValue::LongLongInt(v) => Some(*v),
        _ => None,
    }
}

/// Properties of a published event.
pub(crate) fn properties_for(envelope: &Envelope) -> BasicProperties {
    let mut headers = FieldTable::default();
    let mut injector = HeaderInjector(&mut headers);
    if let Some(tp) = envelope.traceparent() {
        injector.set("traceparent", tp.to_owned());
    }
    if let Some(ts) = envelope.tracestate() {
        injector.set("tracestate", ts.to_owned());
    }
    let props = BasicProperties::default()
        // 2 = persistent: written to disk by the broker, so a broker restart keeps it.
        .with_delivery_mode(2)
        .with_content_type(ShortString::from(CONTENT_TYPE))
        .with_headers(headers);
    // Lets consumers and operators dedupe and find the event without parsing the body.
    // (Envelope ids are at most 128 bytes, so this always fits a short string.)
    match ShortString::try_new(envelope.id()) {
        Ok(id) => props.with_message_id(id),
        Err(_) => props,
    }
}

/// Headers the broker adds when dead-lettering; a replayed message starts a fresh life.
pub(crate) fn without_death_headers(props: &BasicProperties) -> BasicProperties {
    let mut clean = FieldTable::default();
    if let Some(headers) = props.headers() {
        for (k, v) in headers {
            let k_str = k.as_str();
            if !(k_str == "x-death"
                || k_str.starts_with("x-first-death-")
                || k_str.starts_with("x-last-death-")
                || k_str == "x-delivery-count")
            {
                clean.insert(k.clone(), v.clone());
            }
        }
    }
    props.clone().with_headers(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_carry_id_persistence_and_trace_context() {
        let e = Envelope::new("orders", "order.placed", "o1", ())
            .unwrap()
            .with_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .with_tracestate("a=b");
        let props = properties_for(&e);
        assert_eq!(*props.delivery_mode(), Some(2));
        assert_eq!(
            props.message_id().as_ref().map(ShortString::as_str),
            Some(e.id())
        );
        assert_eq!(
            props.content_type().as_ref().map(ShortString::as_str),
            Some(CONTENT_TYPE)
        );
        let headers = props.headers().clone().unwrap();
        let extractor = HeaderExtractor(&headers);
        assert_eq!(extractor.get("traceparent"), e.traceparent());
        assert_eq!(extractor.get("tracestate"), Some("a=b"));
        let mut keys = extractor.keys();
        keys.sort_unstable();
        assert_eq!(keys, ["traceparent", "tracestate"]);
    }

    #[test]
    fn replay_strips_dead_letter_bookkeeping_only() {
        let mut headers = FieldTable::default();
        headers.insert("x-death".into(), AMQPValue::Void);
        headers.insert("x-first-death-reason".into(), AMQPValue::Void);
        headers.insert("x-delivery-count".into(), AMQPValue::LongInt(3));
        headers.insert("traceparent".into(), AMQPValue::LongString("tp".into()));
        let props = BasicProperties::default().with_headers(headers);
        let clean = without_death_headers(&props);
        let keys: Vec<_> = clean
            .headers()
            .clone()
            .unwrap()
            .inner()
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, [ShortString::from("traceparent")]);
    }
}
