//! Which reservations cannot be served once a physical count or a till sale leaves less on hand
//! than is reserved (ARCHITECTURE §2, "POS and WMS adjustments").

use std::cmp::Reverse;

use chrono::{DateTime, Utc};
use omni_types::ReservationId;

/// A HELD reservation's claim on the (sku, location) whose stock fell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldOnKey {
    pub id: ReservationId,
    pub created_at: DateTime<Utc>,
    /// Units it still holds on this key.
    pub qty: u32,
}

/// Chooses the reservations to give up until what stays reserved fits in `on_hand`.
///
/// Checkout holds go before orders (a cart has not been paid for), and within each kind the newest
/// goes first (the oldest customer waited longest). Ties on time fall back to the id so the answer
/// is the same on every replica.
pub fn unservable_reservations(on_hand: i64, held: &[HeldOnKey]) -> Vec<ReservationId> {
    let mut reserved: i64 = held.iter().map(|h| i64::from(h.qty)).sum();
    let mut order: Vec<&HeldOnKey> = held.iter().collect();
    order.sort_by_key(|h| {
        (
            !h.id.is_checkout_hold(),
            Reverse(h.created_at),
            Reverse(h.id.to_string()),
        )
    });
    let mut chosen = Vec::new();
    for h in order {
        if reserved <= on_hand {
            break;
        }
        reserved -= i64::from(h.qty);
        chosen.push(h.id.clone());
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use omni_types::OrderId;

    fn held(id: ReservationId, secs: i64, qty: u32) -> HeldOnKey {
        HeldOnKey {
            id,
            created_at: DateTime::from_timestamp(secs, 0).unwrap(),
            qty,
        }
    }

    fn hold(cart: &str) -> ReservationId {
        ReservationId::parse(&format!("hold:web:{cart}")).unwrap()
    }

    #[test]
    fn nothing_is_chosen_while_stock_covers_the_reservations() {
        let h = [held(hold("a"), 1, 2), held(hold("b"), 2, 3)];
        assert!(unservable_reservations(5, &h).is_empty());
    }

    #[test]
    fn holds_go_before_orders_and_newest_first() {
        let old_order = ReservationId::for_order(OrderId::new());
        let new_order = ReservationId::for_order(OrderId::new());
        let h = [
            held(old_order.clone(), 1, 2),
            held(new_order.clone(), 5, 2),
            held(hold("old"), 2, 1),
            held(hold("new"), 4, 1),
        ];
        // reserved 6, on hand 3: both holds (-2 → 4), then the newest order (-2 → 2).
        assert_eq!(
            unservable_reservations(3, &h),
            vec![hold("new"), hold("old"), new_order.clone()]
        );
        assert_eq!(unservable_reservations(5, &h), vec![hold("new")]);
        assert_eq!(unservable_reservations(-1, &h).len(), 4);
    }
}
