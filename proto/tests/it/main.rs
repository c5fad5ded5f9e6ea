//! Contract tests of omni-proto: the compiled descriptor matches the API surface of
//! ARCHITECTURE.md §2, and event payloads speak proto3 JSON.

// A failing unwrap in a test is the test failing, with the value in the message.
#![allow(clippy::unwrap_used)]

mod descriptor;
mod event_json;
