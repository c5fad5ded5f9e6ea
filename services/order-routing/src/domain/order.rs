//! A channel's order request, parsed into a draft that is valid by construction.
//!
//! The transport layer copies the wire message into [`OrderDraftInput`] (plain strings and
//! integers) and calls [`OrderDraft::parse`]. Every problem is reported with the path of the field
//! that caused it (`lines[1].unit_price.currency`), all at once, so a channel fixes its request in
//! one round trip.
//!
//! Decisions worth knowing:
//! - **Duplicate SKU lines are refused**, not merged: two lines of one SKU may carry different
//!   prices, and merging would silently pick one. The planner also relies on one line per SKU so a
//!   location's stock is never counted twice.
//! - Lines are numbered by position (1-based [`LineId`]); cancels and returns name lines by number.
//! - One currency per order; totals are integer minor units and overflow is an input error.

use std::collections::BTreeMap;
use std::fmt;

use omni_types::{ChannelId, Currency, GeoPoint, LocationId, Money, Quantity, ReservationId, Sku};
use serde::{Deserialize, Serialize};

/// Most lines one order may carry; also bounds the planner's per-line bit sets.
pub const MAX_LINES: usize = 100;
/// Largest unit price accepted, in minor units: catches unit mix-ups (cents sent as micros).
pub const MAX_UNIT_PRICE_MINOR: i64 = 1_000_000_000_000;
/// Most points one order may redeem.
pub const MAX_POINTS_TO_REDEEM: u64 = 100_000_000;
const MAX_ADDRESS_FIELD: usize = 200;
const MAX_IDENTITY_VALUE: usize = 256;
const MAX_IDENTITY_KIND: usize = 32;

/// A line's number within its order, starting at 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LineId(pub u32);

impl fmt::Display for LineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The order request as it arrives, before any check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderDraftInput {
    pub channel: String,
    pub member: Option<MemberRefInput>,
    pub lines: Vec<OrderLineInput>,
    pub fulfilment: Option<FulfilmentInput>,
    pub points_to_redeem: i64,
    pub checkout_hold: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MemberRefInput {
    Id(String),
    Identity { kind: String, value: String },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderLineInput {
    pub sku: String,
    pub qty: i64,
    pub unit_price_minor: i64,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FulfilmentInput {
    Ship {
        address: AddressInput,
        lat: f64,
        lon: f64,
    },
    Pickup {
        store: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AddressInput {
    pub recipient: String,
    pub line1: String,
    pub line2: String,
    pub city: String,
    pub postal_code: String,
    pub country: String,
}

/// Who the order is for: a member id, or an identity the member service resolves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberRef {
    Id(uuid::Uuid),
    Identity { kind: String, value: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub line_id: LineId,
    pub sku: Sku,
    pub qty: Quantity,
    pub unit_price: Money,
}

impl OrderLine {
    /// Cannot overflow: parse checked every line total.
    pub fn total_minor(&self) -> i64 {
        self.unit_price
            .minor_units
            .saturating_mul(self.qty.as_i64())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub recipient: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Fulfilment {
    Ship { address: Address, point: GeoPoint },
    Pickup { store: LocationId },
}

/// A valid order request. Built only by [`OrderDraft::parse`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderDraft {
    channel: ChannelId,
    member: Option<MemberRef>,
    lines: Vec<OrderLine>,
    fulfilment: Fulfilment,
    points_to_redeem: u64,
    checkout_hold: Option<ReservationId>,
    total: Money,
}

/// One thing wrong with the request, named by its field path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

/// The request cannot be accepted as sent; nothing was done. Fix the named fields and resend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid order: {}", .violations.iter().map(|v| format!("{}: {}", v.field, v.description)).collect::<Vec<_>>().join("; "))]
pub struct InvalidOrder {
    pub violations: Vec<FieldViolation>,
}

#[derive(Default)]
struct Violations(Vec<FieldViolation>);

impl Violations {
    fn add(&mut self, field: impl Into<String>, description: impl fmt::Display) {
        self.0.push(FieldViolation {
            field: field.into(),
            description: description.to_string(),
        });
    }

    fn check<T, E: fmt::Display>(
        &mut self,
        field: impl Into<String>,
        r: Result<T, E>,
    ) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.add(field, e);
                None
            }
        }
    }
}

impl OrderDraft {
    pub fn parse(input: OrderDraftInput) -> Result<Self, InvalidOrder> {
        let mut v = Violations::default();
        let channel = v.check("channel", ChannelId::parse(input.channel));
        let member = input.member.and_then(|m| parse_member(m, &mut v));
        let lines = parse_lines(input.lines, &mut v);
        let fulfilment = match input.fulfilment {
            None => {
                v.add("fulfilment", "must be ship or pickup");
                None
            }
            Some(f) => parse_fulfilment(f, &mut v),
        };
        let points_to_redeem = match u64::try_from(input.points_to_redeem) {
            Ok(p) if p <= MAX_POINTS_TO_REDEEM => Some(p),
            _ => {
                v.add(
                    "points_to_redeem",
                    format!(
                        "must be between 0 and {MAX_POINTS_TO_REDEEM}, got {}",
                        input.points_to_redeem
                    ),
                );
                None
            }
        };
        let checkout_hold = match input.checkout_hold.filter(|h| !h.is_empty()) {
            None => Some(None),
            Some(h) => parse_hold(&h, channel.as_ref(), &mut v).map(Some),
        };
        match (
            channel,
            lines,
            fulfilment,
            points_to_redeem,
            checkout_hold,
            v.0.is_empty(),
        ) {
            (
                Some(channel),
                Some((lines, total)),
                Some(fulfilment),
                Some(points_to_redeem),
                Some(checkout_hold),
                true,
            ) => Ok(Self {
                channel,
                member,
                lines,
                fulfilment,
                points_to_redeem,
                checkout_hold,
                total,
            }),
            _ => Err(InvalidOrder { violations: v.0 }),
        }
    }

    pub fn channel(&self) -> &ChannelId {
        &self.channel
    }
    pub fn member(&self) -> Option<&MemberRef> {
        self.member.as_ref()
    }
    pub fn lines(&self) -> &[OrderLine] {
        &self.lines
    }
    pub fn fulfilment(&self) -> &Fulfilment {
        &self.fulfilment
    }
    pub fn points_to_redeem(&self) -> u64 {
        self.points_to_redeem
    }
    pub fn checkout_hold(&self) -> Option<&ReservationId> {
        self.checkout_hold.as_ref()
    }
    /// Sum of every line's `qty × unit_price`.
    pub fn total(&self) -> Money {
        self.total
    }
    pub fn currency(&self) -> Currency {
        self.total.currency
    }
}

fn parse_member(input: MemberRefInput, v: &mut Violations) -> Option<MemberRef> {
    match input {
        MemberRefInput::Id(id) => v
            .check(
                "member.id",
                uuid::Uuid::parse_str(&id).map_err(|_| format!("must be a UUID, got {id:?}")),
            )
            .map(MemberRef::Id),
        MemberRefInput::Identity { kind, value } => {
            let kind_ok = !kind.is_empty()
                && kind.len() <= MAX_IDENTITY_KIND
                && kind.chars().all(|c| c.is_ascii_lowercase() || c == '_');
            if !kind_ok {
                v.add(
                    "member.identity.kind",
                    format!(
                        "must be 1-{MAX_IDENTITY_KIND} lower-case letters or '_', got {kind:?}"
                    ),
                );
            }
            let value_ok = !value.trim().is_empty()
                && value.chars().count() <= MAX_IDENTITY_VALUE
                && !value.chars().any(char::is_control);
            if !value_ok {
                v.add(
                    "member.identity.value",
                    format!("must be 1-{MAX_IDENTITY_VALUE} printable characters"),
                );
            }
            (kind_ok && value_ok).then_some(MemberRef::Identity { kind, value })
        }
    }
}

fn parse_lines(input: Vec<OrderLineInput>, v: &mut Violations) -> Option<(Vec<OrderLine>, Money)> {
    if input.is_empty() {
        v.add("lines", "an order needs at least one line");
        return None;
    }
    if input.len() > MAX_LINES {
        v.add(
            "lines",
            format!("at most {MAX_LINES} lines per order, got {}", input.len()),
        );
        return None;
    }
    let before = v.0.len();
    let mut lines = Vec::with_capacity(input.len());
    let mut first_of_sku: BTreeMap<Sku, usize> = BTreeMap::new();
    let mut order_currency: Option<Currency> = None;
    let mut total: i64 = 0;
    for (i, raw) in input.into_iter().enumerate() {
        let sku = v.check(format!("lines[{i}].sku"), Sku::parse(raw.sku));
        if let Some(sku) = &sku {
            if let Some(first) = first_of_sku.get(sku) {
                v.add(
                    format!("lines[{i}].sku"),
                    format!("duplicates lines[{first}]; send one line per SKU"),
                );
            } else {
                first_of_sku.insert(sku.clone(), i);
            }
        }
        let qty = v.check(format!("lines[{i}].qty"), Quantity::parse(raw.qty));
        let currency = v.check(
            format!("lines[{i}].unit_price.currency"),
            Currency::parse(&raw.currency),
        );
        if let (Some(c), Some(first)) = (currency, order_currency)
            && c != first
        {
            v.add(
                format!("lines[{i}].unit_price.currency"),
                format!("an order has one currency: {first}, got {c}"),
            );
        }
        order_currency = order_currency.or(currency);
        let price_ok = (0..=MAX_UNIT_PRICE_MINOR).contains(&raw.unit_price_minor);
        if !price_ok {
            v.add(
                format!("lines[{i}].unit_price.minor_units"),
                format!(
                    "must be between 0 and {MAX_UNIT_PRICE_MINOR}, got {}",
                    raw.unit_price_minor
                ),
            );
        }
        if let (Some(sku), Some(qty), Some(currency), true) = (sku, qty, currency, price_ok) {
            match raw
                .unit_price_minor
                .checked_mul(qty.as_i64())
                .and_then(|t| total.checked_add(t))
            {
                Some(t) => total = t,
                None => v.add(format!("lines[{i}]"), "order total does not fit in 64 bits"),
            }
            lines.push(OrderLine {
                line_id: LineId(i as u32 + 1),
                sku,
                qty,
                unit_price: Money::new(raw.unit_price_minor, currency),
            });
        }
    }
    match order_currency {
        Some(currency) if v.0.len() == before => Some((lines, Money::new(total, currency))),
        _ => None,
    }
}

fn parse_fulfilment(input: FulfilmentInput, v: &mut Violations) -> Option<Fulfilment> {
    match input {
        FulfilmentInput::Pickup { store } => v
            .check("fulfilment.pickup.store", LocationId::parse(store))
            .map(|store| Fulfilment::Pickup { store }),
        FulfilmentInput::Ship { address, lat, lon } => {
            let point = v.check("fulfilment.ship.point", GeoPoint::parse(lat, lon));
            let address = parse_address(address, v);
            Some(Fulfilment::Ship {
                address: address?,
                point: point?,
            })
        }
    }
}

fn parse_address(a: AddressInput, v: &mut Violations) -> Option<Address> {
    let before = v.0.len();
    let mut text = |name: &str, value: String, required: bool| -> Option<String> {
        let value = value.trim().to_owned();
        if value.is_empty() {
            if required {
                v.add(
                    format!("fulfilment.ship.address.{name}"),
                    "must not be empty",
                );
            }
            return None;
        }
        if value.chars().count() > MAX_ADDRESS_FIELD || value.chars().any(char::is_control) {
            v.add(
                format!("fulfilment.ship.address.{name}"),
                format!("must be at most {MAX_ADDRESS_FIELD} printable characters"),
            );
            return None;
        }
        Some(value)
    };
    let recipient = text("recipient", a.recipient, true);
    let line1 = text("line1", a.line1, true);
    let line2 = text("line2", a.line2, false);
    let city = text("city", a.city, true);
    let postal_code = text("postal_code", a.postal_code, false).unwrap_or_default();
    let country_ok = a.country.len() == 2 && a.country.bytes().all(|b| b.is_ascii_uppercase());
    if !country_ok {
        v.add(
            "fulfilment.ship.address.country",
            format!(
                "must be an ISO 3166-1 alpha-2 code such as CN, got {:?}",
                a.country
            ),
        );
    }
    if v.0.len() != before {
        return None;
    }
    Some(Address {
        recipient: recipient?,
        line1: line1?,
        line2,
        city: city?,
        postal_code,
        country: a.country,
    })
}

fn parse_hold(
    hold: &str,
    channel: Option<&ChannelId>,
    v: &mut Violations,
) -> Option<ReservationId> {
    let id = v.check("checkout_hold", ReservationId::parse(hold))?;
    match (&id, channel) {
        (ReservationId::Hold { channel: owner, .. }, Some(channel)) if owner != channel => {
            v.add(
                "checkout_hold",
                format!("belongs to channel {owner}, not {channel}"),
            );
            None
        }
        (ReservationId::Order(_), _) => {
            v.add(
                "checkout_hold",
                "must be a checkout hold (hold:<channel>:<cart>)",
            );
            None
        }
        _ => Some(id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn line(sku: &str, qty: i64, price: i64, currency: &str) -> OrderLineInput {
        OrderLineInput {
            sku: sku.into(),
            qty,
            unit_price_minor: price,
            currency: currency.into(),
        }
    }

    fn valid() -> OrderDraftInput {
        OrderDraftInput {
            channel: "web".into(),
            member: Some(MemberRefInput::Identity {
                kind: "phone".into(),
                value: "+8613800000000".into(),
            }),
            lines: vec![line("A-1", 2, 1_050, "CNY"), line("B-2", 1, 300, "CNY")],
            fulfilment: Some(FulfilmentInput::Ship {
                address: AddressInput {
                    recipient: "Li Lei".into(),
                    line1: "1 Nanjing Rd".into(),
                    line2: String::new(),
                    city: "Shanghai".into(),
                    postal_code: "200001".into(),
                    country: "CN".into(),
                },
                lat: 31.23,
                lon: 121.47,
            }),
            points_to_redeem: 100,
            checkout_hold: Some("hold:web:cart-1".into()),
        }
    }

    fn fields(input: OrderDraftInput) -> Vec<String> {
        OrderDraft::parse(input)
            .unwrap_err()
            .violations
            .into_iter()
            .map(|v| v.field)
            .collect()
    }

    #[test]
    fn parses_a_valid_order_and_totals_in_minor_units() {
        let draft = OrderDraft::parse(valid()).unwrap();
        assert_eq!(draft.total().minor_units, 2 * 1_050 + 300);
        assert_eq!(draft.currency().as_str(), "CNY");
        assert_eq!(draft.lines()[1].line_id, LineId(2));
        assert_eq!(draft.lines()[0].total_minor(), 2_100);
        assert!(draft.checkout_hold().unwrap().is_checkout_hold());
        assert_eq!(draft.points_to_redeem(), 100);
    }

    type Mutation = fn(&mut OrderDraftInput);

    #[test]
    fn names_the_field_of_every_problem() {
        let cases: Vec<(Mutation, Vec<&str>)> = vec![
            (|o| o.channel = "Web".into(), vec!["channel"]),
            (
                |o| o.lines[1].currency = "EUR".into(),
                vec!["lines[1].unit_price.currency"],
            ),
            (
                |o| o.lines[1].currency = "eur".into(),
                vec!["lines[1].unit_price.currency"],
            ),
            (|o| o.lines[0].qty = 0, vec!["lines[0].qty"]),
            (
                |o| o.lines[0].unit_price_minor = -1,
                vec!["lines[0].unit_price.minor_units"],
            ),
            (|o| o.lines[1].sku = "A-1".into(), vec!["lines[1].sku"]),
            (|o| o.lines[0].sku = "a b".into(), vec!["lines[0].sku"]),
            (|o| o.lines.clear(), vec!["lines"]),
            (|o| o.fulfilment = None, vec!["fulfilment"]),
            (|o| o.points_to_redeem = -5, vec!["points_to_redeem"]),
            (
                |o| o.checkout_hold = Some("hold:app:cart-1".into()),
                vec!["checkout_hold"],
            ),
            (
                |o| o.member = Some(MemberRefInput::Id("x".into())),
                vec!["member.id"],
            ),
            (
                |o| {
                    o.fulfilment = Some(FulfilmentInput::Pickup {
                        store: "S 1".into(),
                    })
                },
                vec!["fulfilment.pickup.store"],
            ),
            (
                |o| {
                    if let Some(FulfilmentInput::Ship { address, lat, .. }) = &mut o.fulfilment {
                        address.country = "China".into();
                        address.city = " ".into();
                        *lat = 91.0;
                    }
                },
                vec![
                    "fulfilment.ship.point",
                    "fulfilment.ship.address.city",
                    "fulfilment.ship.address.country",
                ],
            ),
        ];
        for (i, (mutate, expected)) in cases.into_iter().enumerate() {
            let mut input = valid();
            mutate(&mut input);
            assert_eq!(fields(input), expected, "case {i}");
        }
    }

    #[test]
    fn enforces_the_line_limit() {
        let mut input = valid();
        input.lines = (0..=MAX_LINES)
            .map(|i| line(&format!("S{i}"), 1, 1, "CNY"))
            .collect();
        assert_eq!(fields(input), vec!["lines"]);
        let mut input = valid();
        input.lines = (0..MAX_LINES)
            .map(|i| line(&format!("S{i}"), 1, 1, "CNY"))
            .collect();
        assert!(OrderDraft::parse(input).is_ok());
    }

    #[test]
    fn refuses_a_total_that_overflows() {
        let mut input = valid();
        input.lines = (0..MAX_LINES)
            .map(|i| line(&format!("S{i}"), 100_000, MAX_UNIT_PRICE_MINOR, "CNY"))
            .collect();
        let err = OrderDraft::parse(input).unwrap_err();
        assert!(err.to_string().contains("does not fit"), "{err}");
    }

    #[test]
    fn error_message_lists_field_paths() {
        let mut input = valid();
        input.lines[1].currency = "EUR".into();
        let err = OrderDraft::parse(input).unwrap_err().to_string();
        assert!(
            err.contains("lines[1].unit_price.currency: an order has one currency"),
            "{err}"
        );
    }
}
