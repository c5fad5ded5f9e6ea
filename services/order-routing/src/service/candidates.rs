//! The planner's candidates for one order, from inventory's locations, pool and availability.

use std::collections::BTreeMap;

use omni_types::{ChannelId, Sku};

use crate::clients::{InventoryPort, LocationInfo, PortError, ReserveLine};
use crate::domain::planner::Candidate;

fn candidate(l: &LocationInfo, in_pool: bool) -> Candidate {
    Candidate {
        location: l.id.clone(),
        kind: l.kind,
        point: l.point,
        capabilities: l.capabilities,
        active: l.active,
        capacity_left_today: None,
        in_channel_pool: in_pool,
        stock: BTreeMap::new(),
    }
}

/// Every known location, with live stock and capacity for `skus` where the channel may sell.
pub async fn live(
    inventory: &dyn InventoryPort,
    channel: &ChannelId,
    skus: &[Sku],
) -> Result<Vec<Candidate>, PortError> {
    let (locations, pool, mut availability) = futures::try_join!(
        inventory.locations(),
        inventory.pool(channel),
        inventory.availability(channel, skus)
    )?;
    Ok(locations
        .iter()
        .map(|l| {
            let mut c = candidate(l, pool.contains(&l.id));
            c.capacity_left_today = availability.capacity_left.get(&l.id).copied().flatten();
            if let Some(mut stock) = availability.available.remove(&l.id) {
                stock.retain(|sku, _| skus.contains(sku));
                c.stock = stock;
            }
            c
        })
        .collect())
}

/// Candidates that hold exactly what an earlier attempt of this order already reserved, so a
/// retry plans the same allocations and Reserve answers with that first reservation instead of
/// ALREADY_EXISTS. Capacity was counted by that reservation already.
pub async fn pinned(
    inventory: &dyn InventoryPort,
    channel: &ChannelId,
    held: &[ReserveLine],
) -> Result<Vec<Candidate>, PortError> {
    let (locations, pool) = futures::try_join!(inventory.locations(), inventory.pool(channel))?;
    Ok(locations
        .iter()
        .map(|l| {
            let mut c = candidate(l, pool.contains(&l.id));
            for line in held.iter().filter(|h| h.location == l.id) {
                c.stock.insert(line.sku.clone(), line.quantity);
            }
            c
        })
        .collect())
}
