//! Who may call what: one rule per RPC of `omni.inventory.v1.InventoryService`.
//!
//! | RPC | allowed |
//! |---|---|
//! | UpsertLocation, SetChannelPool, SetSafetyStock, CheckInvariants | admin |
//! | GetLocation, ListLocations | any verified caller |
//! | GetChannelPool | admin, service:orders, the channel itself |
//! | AdjustStock, ListMovements | admin, the store or warehouse whose location every line names |
//! | GetAvailability, WatchAvailability | admin, service:orders, stores, a channel for its own pool (`channel_id` must be its own) |
//! | Reserve, ConvertHold | `order:` ids: service:orders, admin; `hold:<channel>:` ids: that channel |
//! | ConfirmReservation, Commit | service:orders, admin |
//! | Release, ExtendHold, GetReservation | service:orders, admin, the channel owning a `hold:` id |

use omni_platform::auth::{Principal, deny};
use omni_types::ReservationId;
use tonic::Status;

/// What a rule needs to know about the request.
pub enum Rule<'a> {
    Admin,
    AnyCaller,
    ChannelPool {
        channel: &'a str,
    },
    AtLocations {
        locations: Vec<&'a str>,
    },
    Availability {
        channel: Option<&'a str>,
    },
    Reservation {
        id: &'a ReservationId,
        hold_owner_may: bool,
    },
    OrdersOnly,
}

/// `None` principal = the server runs without authentication (development): allowed.
pub fn authorize(
    principal: Option<&Principal>,
    method: &str,
    rule: Rule<'_>,
) -> Result<(), Status> {
    let Some(p) = principal else {
        return Ok(());
    };
    if p.is_admin() {
        return Ok(());
    }
    let (allowed, needed) = match rule {
        Rule::Admin => (false, "admin".to_owned()),
        Rule::AnyCaller => (true, String::new()),
        Rule::ChannelPool { channel } => (
            p.is_service("orders") || p.is_channel(channel),
            format!("channel:{channel}, service:orders or admin"),
        ),
        Rule::AtLocations { locations } => (
            !locations.is_empty()
                && locations
                    .iter()
                    .all(|l| matches!(p, Principal::Store(s) | Principal::Warehouse(s) if s == l)),
            "the store or warehouse of every location named, or admin".to_owned(),
        ),
        Rule::Availability { channel } => match (p, channel) {
            (Principal::Channel(own), Some(asked)) => {
                (own == asked, format!("channel_id = {own} (its own pool)"))
            }
            (Principal::Channel(own), None) => (
                false,
                format!("channel_id = {own}: a channel reads its own pool"),
            ),
            (Principal::Service(s), _) => (s == "orders", "service:orders".to_owned()),
            (Principal::Store(_), _) => (true, String::new()),
            _ => (
                false,
                "a channel, a store, service:orders or admin".to_owned(),
            ),
        },
        Rule::Reservation { id, hold_owner_may } => match id {
            ReservationId::Order(_) => (
                p.is_service("orders"),
                "service:orders (order reservations) or admin".to_owned(),
            ),
            ReservationId::Hold { channel, .. } => (
                (hold_owner_may && p.is_channel(channel.as_str())) || p.is_service("orders"),
                format!("channel:{channel} (its own checkout hold) or service:orders"),
            ),
        },
        Rule::OrdersOnly => (p.is_service("orders"), "service:orders or admin".to_owned()),
    };
    if allowed {
        Ok(())
    } else {
        Err(deny(p, method, &needed))
    }
}
