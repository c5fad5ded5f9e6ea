//! What order-routing counts beyond the per-RPC metrics every server records.

use omni_platform::metrics::Gauge;

static PICKUP_QUEUE: Gauge = Gauge::new(
    "orders_pickup_queue_length",
    "Open pickups (to prepare, awaiting transfer, ready) per store, as of the store's last full \
     ListPickups.",
);

/// Sets a store's queue length from a listing that held its whole open queue.
pub fn pickup_queue(store: &str, open: usize) {
    PICKUP_QUEUE.set(open as f64, &[("store", store)]);
}
