//! How an order's planner input and routing explanation are written to their text columns.
//!
//! Both list every candidate location, so over hundreds of locations they are most of an
//! order's row. Written as the structs' own serde form (stored form 1), a 5-line order over 200
//! locations stored 57 KB of planner input and 32 KB of explanation; building, copying and
//! compressing those bytes was a measurable share of an order's CPU in order-routing and in
//! PostgreSQL. Stored form 2 writes them as tables: a location is one array, its stock follows
//! one list of SKUs, a verdict is `[candidate, reason]`. The same values in a third (the input)
//! and a half (the explanation) of the bytes. Planner input form 3 leaves each location's kind
//! and coordinates to a shared [catalogue](super::location_catalogues) and keeps per order what
//! changes per order: flags, capacity and stock. Rows of older forms are still read, so orders
//! placed before stay replayable; a form newer than this build is refused by name, not misread.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use omni_types::{GeoPoint, LocationId, OrderId, Quantity, Sku};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::location_catalogues::{Catalogue, CatalogueFor, CataloguedLocation};
use super::{StoreError, to_json};
use crate::domain::order::LineId;
use crate::domain::planner::{
    Candidate, Capabilities, ConsideredCandidate, Explanation, LineExplanation, LineVerdict,
    LocationKind, PlanInput, Strategy, VerdictReason,
};
use crate::domain::simulate::StoredPlanInput;

const TABLE_FORM: u8 = 2;
const CATALOGUED_FORM: u8 = 3;

/// Which stored form a text is in (form 1 had no `v`), and the catalogue it refers to.
#[derive(Deserialize)]
struct FormProbe {
    v: Option<u8>,
    catalogue: Option<String>,
}

fn probe(text: &str, what: &str, newest: u8) -> Result<(u8, Option<String>), StoreError> {
    let probe: FormProbe = parse(text, what)?;
    match probe.v {
        None => Ok((1, probe.catalogue)),
        Some(v) if (TABLE_FORM..=newest).contains(&v) => Ok((v, probe.catalogue)),
        Some(v) => Err(StoreError::Corrupt(format!(
            "{what} is in stored form {v}, which this build cannot read (it reads 1 to {newest})"
        ))),
    }
}

fn parse<T: DeserializeOwned>(text: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
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

/// Every SKU any candidate holds, once, in order: the columns of the stock figures.
fn sku_columns(candidates: &[Candidate]) -> Vec<&Sku> {
    candidates
        .iter()
        .flat_map(|c| c.stock.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn units_of(c: &Candidate, skus: &[&Sku]) -> Vec<Option<u32>> {
    skus.iter().map(|s| c.stock.get(*s).copied()).collect()
}

const INPUT: &str = "stored planner input";

/// A candidate's per-order columns: flags, capacity left today and units of each SKU.
struct PerOrder {
    bits: u8,
    capacity: Option<u32>,
    units: Vec<Option<u32>>,
}

fn candidate(
    location: LocationId,
    kind: LocationKind,
    point: GeoPoint,
    row: PerOrder,
    skus: &[Sku],
) -> Result<Candidate, StoreError> {
    if row.units.len() != skus.len() {
        return Err(StoreError::Corrupt(format!(
            "{INPUT}: location {location} lists {} stock figures for {} SKUs",
            row.units.len(),
            skus.len()
        )));
    }
    Ok(Candidate {
        kind,
        point,
        capabilities: Capabilities {
            ships: flag(row.bits, 0),
            pickup: flag(row.bits, 1),
            ship_from_store: flag(row.bits, 2),
        },
        active: flag(row.bits, 3),
        in_channel_pool: flag(row.bits, 4),
        capacity_left_today: row.capacity,
        stock: skus
            .iter()
            .zip(row.units)
            .filter_map(|(sku, n)| n.map(|n| (sku.clone(), n)))
            .collect(),
        location,
    })
}

/// `[location, kind, lat, lon, flags, capacity left today, [units of each SKU or null]]`:
/// form 2's row.
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
struct TableInputIn {
    order: OrderId,
    input: PlanInput,
    skus: Vec<Sku>,
    locations: Vec<LocationRow<LocationId>>,
}

/// `[catalogue row, flags, capacity left today, [units of each SKU or null]]`: form 3's row.
#[derive(Serialize, Deserialize)]
struct CandidateRow(u32, u8, Option<u32>, Vec<Option<u32>>);

#[derive(Serialize)]
struct CataloguedInputOut<'a> {
    v: u8,
    order: &'a OrderId,
    input: &'a PlanInput,
    catalogue: &'a str,
    skus: &'a [&'a Sku],
    locations: Vec<CandidateRow>,
}

#[derive(Deserialize)]
struct CataloguedInputIn {
    order: OrderId,
    input: PlanInput,
    catalogue: String,
    skus: Vec<Sku>,
    locations: Vec<CandidateRow>,
}

/// Form 3, over the catalogue [`LocationCatalogues::for_candidates`] chose for the candidates.
///
/// [`LocationCatalogues::for_candidates`]: super::location_catalogues::LocationCatalogues::for_candidates
pub(super) fn planner_input_text(
    stored: &StoredPlanInput,
    catalogue: &CatalogueFor,
) -> Result<String, StoreError> {
    if catalogue.rows.len() != stored.candidates.len() {
        return Err(StoreError::Corrupt(format!(
            "{INPUT}: {} catalogue rows for {} candidates",
            catalogue.rows.len(),
            stored.candidates.len()
        )));
    }
    let skus = sku_columns(&stored.candidates);
    let locations = stored
        .candidates
        .iter()
        .zip(&catalogue.rows)
        .map(|(c, &row)| CandidateRow(row, flags(c), c.capacity_left_today, units_of(c, &skus)))
        .collect();
    to_json(&CataloguedInputOut {
        v: CATALOGUED_FORM,
        order: &stored.order,
        input: &stored.input,
        catalogue: catalogue.catalogue.id(),
        skus: &skus,
        locations,
    })
}

/// The catalogue a stored planner input refers to, if it is of a form that has one.
pub(super) fn catalogue_of(text: &str) -> Result<Option<String>, StoreError> {
    Ok(probe(text, INPUT, CATALOGUED_FORM)?.1)
}

/// Reads every form; `catalogues` must hold the one [`catalogue_of`] names.
pub(super) fn planner_input_from_text(
    text: &str,
    catalogues: &HashMap<String, Arc<Catalogue>>,
) -> Result<StoredPlanInput, StoreError> {
    match probe(text, INPUT, CATALOGUED_FORM)?.0 {
        1 => parse(text, INPUT),
        TABLE_FORM => from_table(parse(text, INPUT)?),
        _ => from_catalogued(parse(text, INPUT)?, catalogues),
    }
}

fn from_table(table: TableInputIn) -> Result<StoredPlanInput, StoreError> {
    let skus = table.skus;
    let candidates = table
        .locations
        .into_iter()
        .map(
            |LocationRow(location, kind, lat, lon, bits, capacity, units)| {
                let point = GeoPoint::parse(lat, lon).map_err(|e| {
                    StoreError::Corrupt(format!("{INPUT}: location {location}: {e}"))
                })?;
                let row = PerOrder {
                    bits,
                    capacity,
                    units,
                };
                candidate(location, kind, point, row, &skus)
            },
        )
        .collect::<Result<_, _>>()?;
    Ok(StoredPlanInput {
        order: table.order,
        input: table.input,
        candidates,
    })
}

fn from_catalogued(
    stored: CataloguedInputIn,
    catalogues: &HashMap<String, Arc<Catalogue>>,
) -> Result<StoredPlanInput, StoreError> {
    let catalogue = catalogues.get(&stored.catalogue).ok_or_else(|| {
        StoreError::Corrupt(format!(
            "{INPUT}: location catalogue {} was not read",
            stored.catalogue
        ))
    })?;
    let skus = stored.skus;
    let candidates = stored
        .locations
        .into_iter()
        .map(|CandidateRow(i, bits, capacity, units)| {
            let listed = catalogue.row(i).ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "{INPUT}: catalogue {} has no row {i}",
                    catalogue.id()
                ))
            })?;
            let point = listed
                .point()
                .map_err(|e| StoreError::Corrupt(format!("{INPUT}: {e}")))?;
            let CataloguedLocation(location, kind, ..) = listed;
            let row = PerOrder {
                bits,
                capacity,
                units,
            };
            candidate(location.clone(), *kind, point, row, &skus)
        })
        .collect::<Result<_, _>>()?;
    Ok(StoredPlanInput {
        order: stored.order,
        input: stored.input,
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
    let table: ExplanationIn = match probe(text, WHAT, TABLE_FORM)?.0 {
        1 => return parse(text, WHAT),
        _ => parse(text, WHAT)?,
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

    fn catalogued(original: &StoredPlanInput) -> (String, HashMap<String, Arc<Catalogue>>) {
        let catalogue = Catalogue::listing(&original.candidates).unwrap();
        let chosen = CatalogueFor {
            rows: catalogue.rows_of(&original.candidates).unwrap(),
            catalogue: Arc::new(catalogue),
            is_new: true,
        };
        let text = planner_input_text(original, &chosen).unwrap();
        let catalogue = Arc::into_inner(chosen.catalogue).unwrap();
        assert_eq!(
            catalogue_of(&text).unwrap().as_deref(),
            Some(catalogue.id())
        );
        let id = catalogue.id().to_owned();
        (text, HashMap::from([(id, Arc::new(catalogue))]))
    }

    /// Form 2 as the builds before the catalogues wrote it.
    fn form_2(stored: &StoredPlanInput) -> String {
        let skus = sku_columns(&stored.candidates);
        let locations: Vec<_> = stored
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
                    units_of(c, &skus),
                )
            })
            .collect();
        serde_json::json!({
            "v": 2, "order": stored.order, "input": stored.input, "skus": skus,
            "locations": locations,
        })
        .to_string()
    }

    #[test]
    fn a_planner_input_reads_back_exactly_as_it_was_stored() {
        for input in [
            ship_input(&[("A", 1), ("B", 2), ("C", 1)], (41.0, -3.5)),
            pickup_input(&[("A", 1)], "loc-0007"),
        ] {
            let original = stored(input);
            let (text, catalogues) = catalogued(&original);
            assert_eq!(
                planner_input_from_text(&text, &catalogues).unwrap(),
                original
            );
        }
    }

    #[test]
    fn planner_inputs_stored_in_earlier_forms_are_still_read() {
        let original = stored(ship_input(&[("A", 1), ("C", 1)], (41.0, -3.5)));
        let none = HashMap::new();
        let form_1 = serde_json::to_string(&original).unwrap();
        assert_eq!(planner_input_from_text(&form_1, &none).unwrap(), original);
        let form_2 = form_2(&original);
        assert_eq!(catalogue_of(&form_2).unwrap(), None);
        assert_eq!(planner_input_from_text(&form_2, &none).unwrap(), original);
    }

    #[test]
    fn a_planner_input_needs_its_catalogue_and_rows_the_catalogue_has() {
        let original = stored(ship_input(&[("A", 1)], (41.0, -3.5)));
        let (text, catalogues) = catalogued(&original);
        let e = planner_input_from_text(&text, &HashMap::new()).unwrap_err();
        assert!(e.to_string().contains("was not read"), "{e}");
        let broken = text.replacen("\"locations\":[[", "\"locations\":[[9999", 1);
        let e = planner_input_from_text(&broken, &catalogues).unwrap_err();
        assert!(e.to_string().contains("has no row 9999"), "{e}");
        // A catalogue that lists a location elsewhere cannot carry the order's input.
        let mut moved = original.clone();
        moved.candidates[0].point = GeoPoint::parse(1.0, 1.0).unwrap();
        let e = catalogues[catalogue_of(&text).unwrap().unwrap().as_str()]
            .rows_of(&moved.candidates)
            .unwrap_err();
        assert!(e.to_string().contains("not in catalogue"), "{e}");
    }

    #[test]
    fn the_stored_forms_take_well_under_half_the_space() {
        let input = stored(ship_input(&[("A", 1), ("B", 2), ("C", 1)], (41.0, -3.5)));
        let plan = planner::plan(&input.input, &input.candidates, &profile_with(|_| {})).unwrap();
        let input_sizes = (
            catalogued(&input).0.len(),
            serde_json::to_string(&input).unwrap().len(),
        );
        let explanation_sizes = (
            explanation_text(&plan.explanation).unwrap().len(),
            serde_json::to_string(&plan.explanation).unwrap().len(),
        );
        for (table, fields) in [input_sizes, explanation_sizes] {
            assert!(table * 2 < fields, "{table} bytes against {fields}");
        }
        assert!(
            catalogued(&input).0.len() * 3 < form_2(&input).len() * 2,
            "form 3 leaves the coordinates to the catalogue"
        );
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
        let e = planner_input_from_text(r#"{"v":4,"order":"x"}"#, &HashMap::new()).unwrap_err();
        assert!(e.to_string().contains("stored form 4"), "{e}");
        let e = planner_input_from_text(r#"{"v":0,"order":"x"}"#, &HashMap::new()).unwrap_err();
        assert!(e.to_string().contains("stored form 0"), "{e}");
        let e = explanation_from_text(r#"{"v":3}"#).unwrap_err();
        assert!(e.to_string().contains("stored form 3"), "{e}");
        let e = explanation_from_text(r#"{"v":9}"#).unwrap_err();
        assert!(e.to_string().contains("stored form 9"), "{e}");
    }

    #[test]
    fn a_location_whose_stock_does_not_match_the_sku_list_is_corrupt() {
        let original = stored(ship_input(&[("A", 1)], (41.0, -3.5)));
        let (text, catalogues) = catalogued(&original);
        let broken = text.replacen("[5,2,9]", "[5,2]", 1);
        assert_ne!(broken, text, "the fixture's first row changed");
        let e = planner_input_from_text(&broken, &catalogues).unwrap_err();
        assert!(e.to_string().contains("stock figures"), "{e}");
    }
}
