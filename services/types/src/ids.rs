use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ValueError;

fn check(
    value: &str,
    max: usize,
    allowed: &'static str,
    ok: impl Fn(char) -> bool,
) -> Result<(), ValueError> {
    if value.is_empty() {
        return Err(ValueError::Empty);
    }
    let len = value.chars().count();
    if len > max {
        return Err(ValueError::TooLong { max, len });
    }
    match value.chars().find(|c| !ok(*c)) {
        Some(found) => Err(ValueError::BadCharacter { allowed, found }),
        None => Ok(()),
    }
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $max:expr, $allowed:expr, $ok:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const MAX_LEN: usize = $max;

            pub fn parse(value: impl Into<String>) -> Result<Self, ValueError> {
                let value = value.into();
                check(&value, $max, $allowed, $ok)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ValueError;
            fn try_from(value: String) -> Result<Self, ValueError> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
    };
}

fn id_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
}

string_id!(
    /// A stock keeping unit. There is no catalogue: a SKU is known once a movement names it.
    Sku,
    64,
    "letters, digits, '.', '_' and '-'",
    |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
);

string_id!(
    /// A warehouse or store. Lower-case because it appears in routing keys and token scopes.
    LocationId,
    64,
    "lower-case letters, digits and '-'",
    id_char
);

string_id!(
    /// A sales channel (web shop, app, marketplace, POS). Same alphabet as locations, for the same reason.
    ChannelId,
    64,
    "lower-case letters, digits and '-'",
    id_char
);

/// An order's id: a UUID, chosen by order-routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OrderId(uuid::Uuid);

impl OrderId {
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7())
    }

    pub fn parse(value: &str) -> Result<Self, ValueError> {
        uuid::Uuid::parse_str(value)
            .map(Self)
            .map_err(|_| ValueError::Malformed(format!("must be a UUID, got {value:?}")))
    }

    pub fn as_uuid(&self) -> uuid::Uuid {
        self.0
    }
}

impl Default for OrderId {
    fn default() -> Self {
        Self::new()
    }
}

impl From<uuid::Uuid> for OrderId {
    fn from(value: uuid::Uuid) -> Self {
        Self(value)
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A reservation's id says who owns it: `order:<order id>` or `hold:<channel>:<cart id>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ReservationId {
    Order(OrderId),
    Hold { channel: ChannelId, cart: String },
}

impl ReservationId {
    /// Cart ids come from storefronts; the alphabet keeps them safe inside Redis keys and logs.
    pub const MAX_CART_LEN: usize = 128;

    pub fn parse(value: &str) -> Result<Self, ValueError> {
        if value.is_empty() {
            return Err(ValueError::Empty);
        }
        if let Some(order) = value.strip_prefix("order:") {
            return Ok(Self::Order(OrderId::parse(order)?));
        }
        if let Some(rest) = value.strip_prefix("hold:") {
            let (channel, cart) = rest.split_once(':').ok_or_else(|| {
                ValueError::Malformed(format!(
                    "a hold id is hold:<channel>:<cart id>, got {value:?}"
                ))
            })?;
            let channel = ChannelId::parse(channel)?;
            check(
                cart,
                Self::MAX_CART_LEN,
                "letters, digits, '.', '_' and '-'",
                |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'),
            )?;
            return Ok(Self::Hold {
                channel,
                cart: cart.to_owned(),
            });
        }
        Err(ValueError::Malformed(format!(
            "must start with order: or hold:, got {value:?}"
        )))
    }

    pub fn for_order(order: OrderId) -> Self {
        Self::Order(order)
    }

    pub fn is_checkout_hold(&self) -> bool {
        matches!(self, Self::Hold { .. })
    }
}

impl fmt::Display for ReservationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Order(id) => write!(f, "order:{id}"),
            Self::Hold { channel, cart } => write!(f, "hold:{channel}:{cart}"),
        }
    }
}

impl TryFrom<String> for ReservationId {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, ValueError> {
        Self::parse(&value)
    }
}

impl From<ReservationId> for String {
    fn from(value: ReservationId) -> String {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sku_accepts_the_documented_alphabet() {
        assert!(Sku::parse("ABC-123_x.9").is_ok());
        assert_eq!(Sku::parse(""), Err(ValueError::Empty));
        assert!(matches!(
            Sku::parse("a b"),
            Err(ValueError::BadCharacter { found: ' ', .. })
        ));
        assert!(matches!(
            Sku::parse("x".repeat(65)),
            Err(ValueError::TooLong { max: 64, len: 65 })
        ));
        assert!(Sku::parse("x".repeat(64)).is_ok());
    }

    #[test]
    fn location_ids_are_lower_case() {
        assert!(LocationId::parse("store-17").is_ok());
        assert!(LocationId::parse("Store-17").is_err());
        assert!(LocationId::parse("store.17").is_err());
    }

    #[test]
    fn reservation_ids_round_trip() {
        let order = OrderId::new();
        let id = ReservationId::parse(&format!("order:{order}")).unwrap();
        assert_eq!(id, ReservationId::Order(order));
        assert_eq!(id.to_string(), format!("order:{order}"));

        let hold = ReservationId::parse("hold:web:cart-42").unwrap();
        assert!(hold.is_checkout_hold());
        assert_eq!(hold.to_string(), "hold:web:cart-42");
    }

    #[test]
    fn reservation_ids_refuse_malformed_owners() {
        assert!(ReservationId::parse("order:not-a-uuid").is_err());
        assert!(ReservationId::parse("hold:web").is_err());
        assert!(ReservationId::parse("hold:Web:cart").is_err());
        assert!(ReservationId::parse("hold:web:ca rt").is_err());
        assert!(ReservationId::parse("cart:1").is_err());
        assert_eq!(ReservationId::parse(""), Err(ValueError::Empty));
    }
}
