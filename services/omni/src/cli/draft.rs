//! The order a channel describes on the command line (`order place`, `routing plan`), turned
//! into an `OrderDraft`. Only the shape is checked here (numbers, `lat,lon`); the service
//! validates values and names the offending field, so there is one set of rules.

use clap::Args;
use omni_proto::common::v1::{Address, GeoPoint, Identity, IdentityType, Money};
use omni_proto::orders::v1 as pb;

use crate::error::CliError;

/// Unit price used when a `--sku` gives none: the demo is about routing, not pricing.
const DEFAULT_UNIT_PRICE: i64 = 9_900;

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("fulfilment").required(true).args(["ship", "pickup"]))]
pub struct DraftArgs {
    /// Sales channel placing the order (web, app, marketplace …).
    #[arg(long)]
    pub channel: String,
    /// A line: SKU:QTY or SKU:QTY:UNIT_PRICE_MINOR (e.g. TEE-WHITE-M:2:9900). Repeat per line.
    #[arg(long = "sku", required = true, value_name = "SKU:QTY[:PRICE]")]
    pub lines: Vec<String>,
    /// Ship to this delivery point, "lat,lon".
    #[arg(long, value_name = "LAT,LON")]
    pub ship: Option<String>,
    /// Pick up at this store.
    #[arg(long, value_name = "STORE")]
    pub pickup: Option<String>,
    /// The customer: a member id, a phone number (+86…) or an e-mail address.
    #[arg(long)]
    pub member: Option<String>,
    /// Points to redeem (needs --member).
    #[arg(long, default_value_t = 0)]
    pub points: i64,
    /// Currency of the unit prices.
    #[arg(long, default_value = "CNY")]
    pub currency: String,
    /// Recipient printed on the shipping label (--ship only).
    #[arg(long, default_value = "Omni demo customer")]
    pub recipient: String,
    /// Checkout hold to convert into the order's reservation.
    #[arg(long)]
    pub hold: Option<String>,
}

impl DraftArgs {
    pub fn into_draft(self) -> Result<pb::OrderDraft, CliError> {
        let lines = self
            .lines
            .iter()
            .map(|raw| line(raw, &self.currency))
            .collect::<Result<Vec<_>, _>>()?;
        let method = match (&self.ship, &self.pickup) {
            (Some(point), None) => {
                let (lat, lon) = lat_lon(point)?;
                pb::fulfilment::Method::Ship(pb::ShipFulfilment {
                    address: Some(Address {
                        recipient: self.recipient.clone(),
                        lines: vec!["(delivery point given as coordinates)".to_owned()],
                        city: "-".to_owned(),
                        country_code: "CN".to_owned(),
                        ..Default::default()
                    }),
                    delivery_point: Some(GeoPoint { lat, lon }),
                })
            }
            (None, Some(store)) => pb::fulfilment::Method::Pickup(pb::PickupFulfilment {
                store_id: store.clone(),
            }),
            _ => return Err(CliError::usage("give exactly one of --ship or --pickup")),
        };
        Ok(pb::OrderDraft {
            channel_id: self.channel,
            member: self.member.as_deref().map(member_ref),
            lines,
            fulfilment: Some(pb::Fulfilment {
                method: Some(method),
            }),
            points_to_redeem: self.points,
            checkout_hold_id: self.hold.unwrap_or_default(),
        })
    }
}

/// `SKU:QTY` or `SKU:QTY:PRICE`.
fn line(raw: &str, currency: &str) -> Result<pb::OrderLineInput, CliError> {
    let bad = || CliError::usage(format!("--sku {raw:?}: expected SKU:QTY or SKU:QTY:PRICE"));
    let mut parts = raw.split(':');
    let (Some(sku), Some(qty)) = (parts.next(), parts.next()) else {
        return Err(bad());
    };
    let quantity = qty.trim().parse::<i32>().map_err(|_| bad())?;
    let price = match parts.next() {
        None => DEFAULT_UNIT_PRICE,
        Some(p) => p.trim().parse::<i64>().map_err(|_| bad())?,
    };
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(pb::OrderLineInput {
        sku: sku.trim().to_owned(),
        quantity,
        unit_price: Some(Money {
            minor_units: price,
            currency: currency.to_owned(),
        }),
    })
}

pub fn lat_lon(raw: &str) -> Result<(f64, f64), CliError> {
    let bad = || {
        CliError::usage(format!(
            "{raw:?}: expected \"lat,lon\" such as 31.23,121.47"
        ))
    };
    let (lat, lon) = raw.split_once(',').ok_or_else(bad)?;
    Ok((
        lat.trim().parse().map_err(|_| bad())?,
        lon.trim().parse().map_err(|_| bad())?,
    ))
}

/// How a person names a member on the command line.
pub fn identity_of(raw: &str) -> Option<Identity> {
    let kind = if raw.starts_with('+') {
        IdentityType::Phone
    } else if raw.contains('@') {
        IdentityType::Email
    } else {
        return None;
    };
    Some(Identity {
        r#type: kind as i32,
        value: raw.to_owned(),
    })
}

fn member_ref(raw: &str) -> pb::MemberRef {
    pb::MemberRef {
        member: Some(match identity_of(raw) {
            Some(identity) => pb::member_ref::Member::Identity(identity),
            None => pb::member_ref::Member::MemberId(raw.to_owned()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_take_an_optional_price() {
        let l = line("TEE-WHITE-M:2", "CNY").unwrap();
        assert_eq!((l.sku.as_str(), l.quantity), ("TEE-WHITE-M", 2));
        assert_eq!(l.unit_price.unwrap().minor_units, DEFAULT_UNIT_PRICE);
        assert_eq!(
            line("MUG:1:1500", "CNY")
                .unwrap()
                .unit_price
                .unwrap()
                .minor_units,
            1500
        );
        for bad in ["MUG", "MUG:two", "MUG:1:1:1", "MUG:1:cheap"] {
            assert!(matches!(line(bad, "CNY"), Err(CliError::Usage(_))), "{bad}");
        }
    }

    #[test]
    fn members_are_named_by_id_phone_or_email() {
        assert_eq!(
            identity_of("+8613800138000").map(|i| i.r#type),
            Some(IdentityType::Phone as i32)
        );
        assert_eq!(
            identity_of("li@example.com").map(|i| i.r#type),
            Some(IdentityType::Email as i32)
        );
        assert_eq!(identity_of("0190c7e2-5b0e-7c1a-9f00-000000000001"), None);
    }

    #[test]
    fn a_delivery_point_is_lat_comma_lon() {
        assert_eq!(lat_lon("31.23, 121.47").unwrap(), (31.23, 121.47));
        assert!(lat_lon("31.23").is_err());
        assert!(lat_lon("north,east").is_err());
    }
}
