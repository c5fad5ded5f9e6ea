//! The fact segments and reports are computed from: who bought, where, how much, when.

use chrono::{DateTime, Utc};
use omni_types::{ChannelId, Money};
use serde::{Deserialize, Serialize};

use super::member::MemberId;

/// One completed order (online or at the till). Returns are not purchases: figures here are what
/// was bought, as the business reports GMV.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purchase {
    /// `None` for a guest order: it counts in channel GMV and orders, not in member rates.
    pub member: Option<MemberId>,
    pub channel: ChannelId,
    pub amount: Money,
    pub at: DateTime<Utc>,
}
