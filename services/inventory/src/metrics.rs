//! What inventory counts beyond the per-RPC metrics every server records: reservation outcomes
//! (the oversells prevented among them) and the drift the reconciler finds.

use omni_platform::metrics::{Counter, Gauge};

use crate::service::{InventoryError, ReserveReply};
use crate::store::Drift;

static RESERVATIONS: Counter = Counter::new(
    "inventory_reservations_total",
    "Reserve calls by outcome: held (new hold), replayed (same id answered again), refused.",
);
static REFUSED: Counter = Counter::new(
    "inventory_reservations_refused_total",
    "Reserve calls refused, by reason (the ErrorInfo reason, or the gRPC code).",
);
static OVERSELL_REFUSED: Counter = Counter::new(
    "inventory_oversell_refused_total",
    "Reservations refused for INSUFFICIENT_STOCK: oversells prevented.",
);
static DRIFT: Gauge = Gauge::new(
    "inventory_drift_counters",
    "Counters the last reconciler pass found wrong, by store (redis, postgres) and field.",
);
static DRIFT_REPAIRED: Counter = Counter::new(
    "inventory_drift_repaired_total",
    "Counters the reconciler repaired, by store and field.",
);

/// Counts one `Reserve` answer.
pub fn reserve_answered(result: &Result<ReserveReply, InventoryError>) {
    match result {
        Ok(reply) if reply.replayed => RESERVATIONS.inc(&[("outcome", "replayed")]),
        Ok(_) => RESERVATIONS.inc(&[("outcome", "held")]),
        Err(error) => {
            RESERVATIONS.inc(&[("outcome", "refused")]);
            let reason = refusal_reason(error);
            REFUSED.inc(&[("reason", reason)]);
            if matches!(error, InventoryError::Insufficient(_)) {
                OVERSELL_REFUSED.inc(&[]);
            }
        }
    }
}

fn refusal_reason(error: &InventoryError) -> &'static str {
    match error {
        InventoryError::Insufficient(_) => "INSUFFICIENT_STOCK",
        InventoryError::CapacityExhausted(_) => "CAPACITY_EXHAUSTED",
        InventoryError::InactiveLocations(_) => "LOCATION_INACTIVE",
        InventoryError::InProgress(_) => "IN_PROGRESS",
        InventoryError::State { .. } => "INVALID_STATE",
        InventoryError::IdReused(_) => "ALREADY_EXISTS",
        InventoryError::Invalid(_) => "INVALID_ARGUMENT",
        InventoryError::UnknownLocation { .. } | InventoryError::UnknownReservation(_) => {
            "NOT_FOUND"
        }
        InventoryError::Unavailable(_) => "UNAVAILABLE",
        InventoryError::Internal(_) => "INTERNAL",
    }
}

const STORES: [&str; 2] = ["redis", "postgres"];
const FIELDS: [&str; 3] = ["on_hand", "reserved", "safety_stock"];

/// Records one reconciler pass. Every (store, field) pair is set, so a drift that was repaired
/// goes back to 0 instead of showing its last value forever.
pub fn reconciled(drifts: &[Drift]) {
    for store in STORES {
        for field in FIELDS {
            let found = drifts
                .iter()
                .filter(|d| d.store == store && d.field == field)
                .count();
            DRIFT.set(found as f64, &[("store", store), ("field", field)]);
        }
    }
    for d in drifts.iter().filter(|d| d.repaired) {
        DRIFT_REPAIRED.inc(&[("store", d.store), ("field", d.field)]);
    }
}
