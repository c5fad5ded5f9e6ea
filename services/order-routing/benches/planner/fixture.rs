//! A deterministic routing problem of the size the issue names: a 10-line order over 1,000
//! candidate locations. Shared (by `#[path]`) with the `bench planner` scenario of `omni-bench`,
//! so the criterion mean and the load generator's percentiles describe the same work.

use std::collections::BTreeMap;

use omni_order_routing::domain::order::LineId;
use omni_order_routing::domain::planner::{
    Candidate, Capabilities, Destination, LocationKind, PlanInput, PlanLine,
};
use omni_order_routing::domain::profile::RoutingProfile;
use omni_types::{ChannelId, GeoPoint, LocationId, Quantity, Sku};

pub const CANDIDATES: usize = 1_000;
pub const LINES: usize = 10;
/// One in this many candidates is a warehouse; the rest are stores that ship from store.
const WAREHOUSE_EVERY: usize = 20;

/// xorshift64*: a fixed sequence without a `rand` dependency, so every run plans the same order.
struct Sequence(u64);

impl Sequence {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How the stock is spread decides which branch of the planner runs.
#[derive(Debug, Clone, Copy)]
pub enum Spread {
    /// A few locations hold every line: the exact single-location search wins.
    SomeHoldAll,
    /// Each location holds about a third of the lines: no single location serves the order, so
    /// the greedy cover runs (and hits `max_splits` often, which is also real work).
    Scattered,
}

pub struct Problem {
    pub order: PlanInput,
    pub candidates: Vec<Candidate>,
    pub profile: RoutingProfile,
}

fn sku(i: usize) -> Sku {
    Sku::parse(format!("BENCH-SKU-{i:02}")).expect("fixture SKUs are valid")
}

/// Builds the problem; `seed` varies the geography and stock, never the sizes.
pub fn problem(spread: Spread, seed: u64) -> Problem {
    let mut rng = Sequence(seed.max(1));
    let skus: Vec<Sku> = (0..LINES).map(sku).collect();
    let candidates = (0..CANDIDATES)
        .map(|i| {
            let kind = if i % WAREHOUSE_EVERY == 0 {
                LocationKind::Warehouse
            } else {
                LocationKind::Store
            };
            let point = GeoPoint::parse(30.0 + 10.0 * rng.unit(), 110.0 + 10.0 * rng.unit())
                .expect("fixture coordinates are in range");
            let holds_all = matches!(spread, Spread::SomeHoldAll) && i % 97 == 0;
            let mut stock = BTreeMap::new();
            for s in &skus {
                if holds_all || rng.unit() < 0.3 {
                    stock.insert(s.clone(), 1 + (rng.next() % 20) as u32);
                }
            }
            Candidate {
                location: LocationId::parse(format!("loc-{i:04}"))
                    .expect("fixture location ids are valid"),
                kind,
                point,
                capabilities: Capabilities {
                    ships: kind == LocationKind::Warehouse,
                    pickup: kind == LocationKind::Store,
                    ship_from_store: kind == LocationKind::Store,
                },
                active: true,
                capacity_left_today: Some(100),
                in_channel_pool: true,
                stock,
            }
        })
        .collect();
    let lines = skus
        .into_iter()
        .enumerate()
        .map(|(i, sku)| PlanLine {
            line_id: LineId(i as u32 + 1),
            sku,
            qty: Quantity::parse(1).expect("1 is a valid quantity"),
        })
        .collect();
    let point = GeoPoint::parse(35.0, 115.0).expect("fixture coordinates are in range");
    let order = PlanInput::new(lines, Destination::Ship { point })
        .expect("fixture lines are unique and within limits");
    let channel = ChannelId::parse("bench").expect("fixture channel id is valid");
    Problem {
        order,
        candidates,
        profile: RoutingProfile::default_for(channel),
    }
}
