//! How an order's planner input and routing explanation are written to their text columns.
//!
//! Both list every candidate location, so over hundreds of locations they are most of an
//! order's row. Written as the structs' own serde form (stored form 1), a 5-line order over 200
//! locations stored 57 KB of planner input and 32 KB of explanation; building, encrypting,
//! copying and compressing those bytes was a measurable share of an order's CPU in
//! order-routing and in PostgreSQL. Stored form 2 writes them as tables: a location is one
//! array, its stock follows one list of SKUs, a verdict is `[candidate, reason]`. The same
//! values in a third (the input) and a half (the explanation) of the bytes. Rows of form 1 are
//! still read, so orders placed before stay replayable; a form newer than this build is
//! refused by name, not misread.

use std::collections::BTreeSet;

use omni_types::{GeoPoint, LocationId, OrderId, Quantity, Sku};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{StoreError, to_json};
use crate::domain::order::LineId;
use crate::domain::planner::{
    Candidate, Capabilities, ConsideredCandidate, Explanation, LineExplanation, LineVerdict,
    LocationKind, PlanInput, Strategy, VerdictReason,
};
use crate::domain::simulate::StoredPlanInput;

const TABLE_FORM: u8 = 2;

/// Which stored form a text is in: form 1 had no `v`.
#[derive(Deserialize)]
struct FormProbe {
    v: Option<u8>,
}

fn form_of(text: &str, what: &str) -> Result<u8, StoreError> {
    let probe: FormProbe =
        serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))?;
    match probe.v {
        None => Ok(1),
        Some(TABLE_FORM) => Ok(TABLE_FORM),
        Some(v) => Err(StoreError::Corrupt(format!(
            "{what} is in stored form {v}, which this build cannot read (it reads 1 and {TABLE_FORM})"
        ))),
    }
}

/// A stored text as it was read: in the structs' own form (1) or as a table (2).
enum Stored<Fields, Table> {
    Fields(Fields),
    Table(Table),
}

fn read<Fields: DeserializeOwned, Table: DeserializeOwned>(
    text: &str,
    what: &str,
) -> Result<Stored<Fields, Table>, StoreError> {
    let read = if form_of(text, what)? == 1 {
        serde_json::from_str(text).map(Stored::Fields)
    } else {
        serde_json::from_str(text).map(Stored::Table)
    };
    read.map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// A candidate's booleans as one number: bit 0 ships, 1 pickup, 2 ship-from-store, 3 active,
/// 4 in the channel's pool.
fn flags(c: &Candidate) -> u8 {
    u8::from(c.capabilities.ships)
        | u8::from(c.capabilities.pickup) << 1
        | u8::from(c.capabilities.ship_from_store) << 2
        | u8::from(c.active) << 3
        | u8::from(c.in_channel_pool) << 4
}

fn flag(bits: u8, n: u8) -> bool {
    bits & (1 << n) != 0
}

#[derive(Serialize)]
struct PlannerInputOut<'a> {
    v: u8,
    order: &'a OrderId,
    input: &'a PlanInput,
    skus: &'a [&'a Sku],
    /// `[location, kind, lat, lon, flags, capacity left today, [units of each SKU or null]]`
    locations: Vec<LocationRow<&'a LocationId>>,
}

/// A location's row: `&LocationId` when written, `LocationId` when read.
#[derive(Serialize, Deserialize)]
struct LocationRow<Id>(
    Id,
    LocationKind,
    f64,
    f64,
    u8,
    Option<u32>,
    Vec<Option<u32>>,
);

#[derive(Deserialize)]
struct PlannerInputIn {
    order: OrderId,
    input: PlanInput,
    skus: Vec<Sku>,
    locations: Vec<LocationRow<LocationId>>,
}

pub(super) fn planner_input_text(stored: &StoredPlanInput) -> Result<String, StoreError> {
    let skus: Vec<&Sku> = stored
        .candidates
        .iter()
        .flat_map(|c| c.stock.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let locations = stored
        .candidates
        .iter()
        .map(|c| {
            LocationRow(
                &c.location,
                c.kind,
                c.point.lat(),
                c.point.lon(),
                flags(c),
                c.capacity_left_today,
                skus.iter().map(|s| c.stock.get(*s).copied()).collect(),
            )
        })
        .collect();
    to_json(&PlannerInputOut {
        v: TABLE_FORM,
        order: &stored.order,
        input: &stored.input,
        skus: &skus,
        locations,
    })
}

pub(super) fn planner_input_from_text(text: &str) -> Result<StoredPlanInput, StoreError> {
    const WHAT: &str = "stored planner input";
    let table: PlannerInputIn = match read(text, WHAT)? {
        Stored::Fields(stored) => return Ok(stored),
        Stored::Table(table) => table,
    };
    let skus = table.skus;
    let candidates = table
        .locations
        .into_iter()
        .map(
            |LocationRow(location, kind, lat, lon, bits, capacity, units)| {
                if units.len() != skus.len() {
                    return Err(StoreError::Corrupt(format!(
                        "{WHAT}: location {location} lists {} stock figures for {} SKUs",
                        units.len(),
                        skus.len()
                    )));
                }
                let point = GeoPoint::parse(lat, lon).map_err(|e| {
                    StoreError::Corrupt(format!("{WHAT}: location {location}: {e}"))
                })?;
                Ok(Candidate {
                    kind,
                    point,
                    capabilities: Capabilities {
                        ships: flag(bits, 0),
                        pickup: flag(bits, 1),
                        ship_from_store: flag(bits, 2),
                    },
                    active: flag(bits, 3),
                    in_channel_pool: flag(bits, 4),
                    capacity_left_today: capacity,
                    stock: skus
                        .iter()
                        .zip(units)
                        .filter_map(|(sku, n)| n.map(|n| (sku.clone(), n)))
                        .collect(),
                    location,
                })
            },
        )
        .collect::<Result<_, _>>()?;
    Ok(StoredPlanInput {
        order: table.order,
        input: table.input,
        candidates,
    })
}

#[derive(Serialize)]
struct ExplanationOut<'a> {
    v: u8,
    strategy: Strategy,
    summary: &'a str,
    /// `[location, distance km, location verdict or null]`
    candidates: Vec<(&'a LocationId, f64, Option<VerdictReason>)>,
    lines: Vec<LineOut<'a>>,
}

#[derive(Serialize)]
struct LineOut<'a> {
    line_id: LineId,
    sku: &'a Sku,
    qty: &'a Quantity,
    /// `[candidate index, reason]`
    verdicts: Vec<(u32, VerdictReason)>,
}

#[derive(Deserialize)]
struct ExplanationIn {
    strategy: Strategy,
    summary: String,
    candidates: Vec<(LocationId, f64, Option<VerdictReason>)>,
    lines: Vec<LineIn>,
}

#[derive(Deserialize)]
struct LineIn {
    line_id: LineId,
    sku: Sku,
    qty: Quantity,
    verdicts: Vec<(u32, VerdictReason)>,
}

pub(super) fn explanation_text(e: &Explanation) -> Result<String, StoreError> {
    to_json(&ExplanationOut {
        v: TABLE_FORM,
        strategy: e.strategy,
        summary: &e.summary,
        candidates: e
            .candidates
            .iter()
            .map(|c| (&c.location, c.distance_km, c.location_verdict))
            .collect(),
        lines: e
            .lines
            .iter()
            .map(|l| LineOut {
                line_id: l.line_id,
                sku: &l.sku,
                qty: &l.qty,
                verdicts: l.verdicts.iter().map(|v| (v.candidate, v.reason)).collect(),
            })
            .collect(),
    })
}

pub(super) fn explanation_from_text(text: &str) -> Result<Explanation, StoreError> {
    const WHAT: &str = "stored routing explanation";
    let table: ExplanationIn = match read(text, WHAT)? {
        Stored::Fields(explanation) => return Ok(explanation),
        Stored::Table(table) => table,
    };
    Ok(Explanation {
        strategy: table.strategy,
        summary: table.summary,
        candidates: table
            .candidates
            .into_iter()
            .map(
                |(location, distance_km, location_verdict)| ConsideredCandidate {
                    location,
                    distance_km,
                    location_verdict,
                },
            )
            .collect(),
        lines: table
            .lines
            .into_iter()
            .map(|l| LineExplanation {
                line_id: l.line_id,
                sku: l.sku,
                qty: l.qty,
                verdicts: l
                    .verdicts
                    .into_iter()
                    .map(|(candidate, reason)| LineVerdict { candidate, reason })
                    .collect(),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::planner::tests::{
        candidate, pickup_input, profile_with, ship_input, store, warehouse,
    };
    use crate::domain::planner::{self, Candidate};

    /// 200 locations of both kinds, with and without stock, capacity, pool or activity, for a
    /// three-line order: what a busy retailer's order sees.
    fn candidates() -> Vec<Candidate> {
        (0..200)
            .map(|i| {
                let id = format!("loc-{i:04}");
                let (lat, lon) = (40.0 + f64::from(i) * 0.037, -3.0 - f64::from(i) * 0.011);
                let base = if i % 3 == 0 {
                    warehouse(&id, lat, lon)
                } else {
                    store(&id, lat, lon)
                };
                let mut c = match i % 4 {
                    0 => candidate(base, &[("A", 5), ("B", 2), ("C", 9)]),
                    1 => candidate(base, &[("A", 1)]),
                    2 => candidate(base, &[("B", 3), ("C", 1)]),
                    _ => candidate(base, &[]),
                };
                c.capacity_left_today = (i % 5 == 0).then_some(i % 7);
                c.active = i % 11 != 0;
                c.in_channel_pool = i % 13 != 0;
                c.capabilities.ship_from_store = c.capabilities.ship_from_store && i % 2 == 0;
                c
            })
            .collect()
    }

    fn stored(input: PlanInput) -> StoredPlanInput {
        StoredPlanInput::new(OrderId::new(), input, candidates())
    }

    #[test]
    fn a_planner_input_reads_back_exactly_as_it_was_stored() {
        for input in [
            ship_input(&[("A", 1), ("B", 2), ("C", 1)], (41.0, -3.5)),
            pickup_input(&[("A", 1)], "loc-0007"),
        ] {
            let original = stored(input);
            let text = planner_input_text(&original).unwrap();
            assert_eq!(planner_input_from_text(&text).unwrap(), original);
        }
    }

    #[test]
    fn planner_inputs_stored_before_the_table_form_are_still_read() {
        let original = stored(ship_input(&[("A", 1), ("C", 1)], (41.0, -3.5)));
        let form_1 = serde_json::to_string(&original).unwrap();
        assert_eq!(planner_input_from_text(&form_1).unwrap(), original);
    }

    #[test]
    fn the_table_forms_take_well_under_half_the_space() {
        let input = stored(ship_input(&[("A", 1), ("B", 2), ("C", 1)], (41.0, -3.5)));
        let plan = planner::plan(&input.input, &input.candidates, &profile_with(|_| {})).unwrap();
        let input_sizes = (
            planner_input_text(&input).unwrap().len(),
            serde_json::to_string(&input).unwrap().len(),
        );
        let explanation_sizes = (
            explanation_text(&plan.explanation).unwrap().len(),
            serde_json::to_string(&plan.explanation).unwrap().len(),
        );
        for (table, fields) in [input_sizes, explanation_sizes] {
            assert!(table * 2 < fields, "{table} bytes against {fields}");
        }
    }

    #[test]
    fn an_explanation_reads_back_exactly_and_form_1_is_still_read() {
        let input = stored(ship_input(&[("A", 1), ("B", 2), ("C", 1)], (41.0, -3.5)));
        let explanation =
            match planner::plan(&input.input, &input.candidates, &profile_with(|_| {})) {
                Ok(plan) => plan.explanation,
                Err(e) => panic!("the fixture must be routable: {e}"),
            };
        assert!(
            explanation
                .lines
                .iter()
                .flat_map(|l| &l.verdicts)
                .any(|v| matches!(v.reason, VerdictReason::OutOfStock { .. })),
            "the fixture should carry a verdict with data"
        );
        let text = explanation_text(&explanation).unwrap();
        assert_eq!(explanation_from_text(&text).unwrap(), explanation);
        let form_1 = serde_json::to_string(&explanation).unwrap();
        assert_eq!(explanation_from_text(&form_1).unwrap(), explanation);
    }

    #[test]
    fn a_stored_form_newer_than_this_build_is_refused_by_name() {
        let e = planner_input_from_text(r#"{"v":3,"order":"x"}"#).unwrap_err();
        assert!(e.to_string().contains("stored form 3"), "{e}");
        let e = explanation_from_text(r#"{"v":9}"#).unwrap_err();
        assert!(e.to_string().contains("stored form 9"), "{e}");
    }

    #[test]
    fn a_location_whose_stock_does_not_match_the_sku_list_is_corrupt() {
        let original = stored(ship_input(&[("A", 1)], (41.0, -3.5)));
        let text = planner_input_text(&original).unwrap();
        let broken = text.replacen("[5,2,9]", "[5,2]", 1);
        assert_ne!(broken, text, "the fixture's first row changed");
        let e = planner_input_from_text(&broken).unwrap_err();
        assert!(e.to_string().contains("stock figures"), "{e}");
    }
}
