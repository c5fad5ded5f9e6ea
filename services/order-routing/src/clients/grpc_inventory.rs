//! [`InventoryPort`] over gRPC: `omni.inventory.v1.InventoryService`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use omni_platform::grpc::client::{CallContext, lazy_channel_with_tls};
use omni_platform::tls::ClientTls;
use omni_proto::inventory::v1 as pb;
use omni_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use omni_types::{ChannelId, GeoPoint, LocationId, ReservationId, Sku};
use tonic::codegen::InterceptedService;
use tonic::transport::Channel;
use tonic_types::StatusExt;

use super::retry::{to_port_error, with_retries};
use super::{
    Availability, InventoryPort, LocationInfo, PortError, ReservationState, ReservationView,
    ReserveError, ReserveLine, ShortLine,
};
use crate::domain::planner::{Capabilities, LocationKind};

const PEER: &str = "inventory";
/// Locations and channel pools change rarely (an operator edits them); a few seconds of
/// staleness saves two calls per order, and a location switched inactive is still refused by
/// Reserve itself.
const LOCATION_CACHE_TTL: Duration = Duration::from_secs(5);
const PAGE_SIZE: i32 = 500;

type Client = InventoryServiceClient<InterceptedService<Channel, CallContext>>;
type Pool = Arc<BTreeSet<LocationId>>;

/// A snapshot shared by every order that plans while it is fresh, and when it was taken.
type Cached<T> = Mutex<Option<(Instant, Arc<T>)>>;

pub struct GrpcInventory {
    client: Client,
    locations: Cached<[LocationInfo]>,
    /// Channel pools change as rarely as locations, and are kept as briefly.
    pools: Mutex<BTreeMap<ChannelId, (Instant, Pool)>>,
}

impl GrpcInventory {
    /// `address` like `http://127.0.0.1:50051`; every call is bounded by `deadline`.
    pub fn new(
        address: &str,
        context: CallContext,
        deadline: Duration,
        tls: Option<&ClientTls>,
    ) -> Result<Self, String> {
        let channel = lazy_channel_with_tls(address, deadline, tls)?;
        Ok(Self {
            client: InventoryServiceClient::with_interceptor(channel, context),
            locations: Mutex::new(None),
            pools: Mutex::new(BTreeMap::new()),
        })
    }

    fn cached(&self) -> Option<Arc<[LocationInfo]>> {
        let guard = self.locations.lock().unwrap_or_else(|p| p.into_inner());
        guard
            .as_ref()
            .filter(|(at, _)| at.elapsed() < LOCATION_CACHE_TTL)
            .map(|(_, l)| Arc::clone(l))
    }
}

fn ttl(d: Duration) -> omni_proto::pbjson_types::Duration {
    omni_proto::pbjson_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: 0,
    }
}

fn location_info(l: pb::Location) -> Option<LocationInfo> {
    let id = LocationId::parse(l.id).ok()?;
    let position = l.position.unwrap_or_default();
    let caps = l.capabilities.unwrap_or_default();
    Some(LocationInfo {
        id,
        kind: if l.kind == pb::LocationKind::Store as i32 {
            LocationKind::Store
        } else {
            LocationKind::Warehouse
        },
        point: GeoPoint::parse(position.lat, position.lon).ok()?,
        capabilities: Capabilities {
            ships: caps.ships,
            pickup: caps.pickup,
            ship_from_store: caps.ship_from_store,
        },
        active: l.active,
        pickup_hold: l
            .pickup_hold
            .and_then(|d| u64::try_from(d.seconds).ok())
            .filter(|s| *s > 0)
            .map(Duration::from_secs),
    })
}

fn add_units(out: &mut Availability, sku: &Sku, location: &LocationId, available: i64) {
    if available > 0 {
        let units = u32::try_from(available).unwrap_or(u32::MAX);
        out.available
            .entry(location.clone())
            .or_default()
            .insert(sku.clone(), units);
    }
}

fn add_rows(out: &mut Availability, levels: Vec<pb::StockLevel>) {
    for level in levels.into_iter().filter(|l| l.available > 0) {
        if let (Ok(sku), Ok(location)) =
            (Sku::parse(level.sku), LocationId::parse(level.location_id))
        {
            add_units(out, &sku, &location, level.available);
        }
    }
}

/// Each SKU and location is parsed once, and a cell with nothing to sell costs no allocation.
fn add_grid(out: &mut Availability, grid: &pb::AvailabilityGrid) -> Result<(), PortError> {
    grid.check_shape().map_err(|e| PortError::Unavailable {
        peer: PEER,
        detail: format!("malformed availability answer: {e}"),
    })?;
    let locations: Vec<Option<LocationId>> = grid
        .location_ids
        .iter()
        .map(|l| LocationId::parse(l.as_str()).ok())
        .collect();
    let width = locations.len();
    for (i, sku) in grid.skus.iter().enumerate() {
        let Ok(sku) = Sku::parse(sku.as_str()) else {
            continue;
        };
        let row = &grid.available[i * width..(i + 1) * width];
        for (location, &available) in locations.iter().zip(row) {
            if let Some(location) = location {
                add_units(out, &sku, location, available);
            }
        }
    }
    Ok(())
}

fn reserve_lines(lines: &[ReserveLine]) -> Vec<pb::ReserveLine> {
    lines
        .iter()
        .map(|l| pb::ReserveLine {
            sku: l.sku.to_string(),
            location_id: l.location.to_string(),
            quantity: i32::try_from(l.quantity).unwrap_or(i32::MAX),
        })
        .collect()
}

fn view(r: pb::Reservation) -> Result<ReservationView, PortError> {
    let id = ReservationId::parse(&r.id)
        .map_err(|e| PortError::Invalid(format!("inventory answered reservation id {e}")))?;
    let state = match pb::ReservationStatus::try_from(r.status) {
        Ok(pb::ReservationStatus::Held) => ReservationState::Held,
        Ok(pb::ReservationStatus::Committed) => ReservationState::Committed,
        Ok(pb::ReservationStatus::Expired) => ReservationState::Expired,
        _ => ReservationState::Released,
    };
    let held = r
        .lines
        .into_iter()
        .filter(|l| l.held_quantity > 0)
        .filter_map(|l| {
            Some(ReserveLine {
                sku: Sku::parse(l.sku).ok()?,
                location: LocationId::parse(l.location_id).ok()?,
                quantity: u32::try_from(l.held_quantity).ok()?,
            })
        })
        .collect();
    Ok(ReservationView {
        id,
        state,
        confirmed: r.confirmed,
        held,
    })
}

fn reserve_error(what: &str, status: tonic::Status) -> ReserveError {
    if status.code() == tonic::Code::FailedPrecondition
        && let Some(failure) = status.get_details_precondition_failure()
    {
        let short: Vec<ShortLine> = failure
            .violations
            .into_iter()
            .filter(|v| v.r#type == "INSUFFICIENT_STOCK" || v.r#type == "CAPACITY_EXHAUSTED")
            .map(|v| ShortLine {
                kind: v.r#type,
                subject: v.subject,
            })
            .collect();
        if !short.is_empty() {
            return ReserveError::Short(short);
        }
    }
    ReserveError::Other(to_port_error(PEER, what, status))
}

#[async_trait]
impl InventoryPort for GrpcInventory {
    async fn locations(&self) -> Result<Arc<[LocationInfo]>, PortError> {
        if let Some(cached) = self.cached() {
            return Ok(cached);
        }
        let mut all = Vec::new();
        let mut page_token = String::new();
        loop {
            let request = pb::ListLocationsRequest {
                page_size: PAGE_SIZE,
                page_token: page_token.clone(),
                kind: 0,
                include_inactive: true,
            };
            let page = with_retries(|| {
                let mut c = self.client.clone();
                let r = request.clone();
                async move { c.list_locations(r).await }
            })
            .await
            .map_err(|s| to_port_error(PEER, "locations", s))?
            .into_inner();
            all.extend(page.locations.into_iter().filter_map(location_info));
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        let all: Arc<[LocationInfo]> = all.into();
        *self.locations.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), Arc::clone(&all)));
        Ok(all)
    }

    async fn pool(&self, channel: &ChannelId) -> Result<Arc<BTreeSet<LocationId>>, PortError> {
        if let Some((at, pool)) = self
            .pools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(channel)
            && at.elapsed() < LOCATION_CACHE_TTL
        {
            return Ok(Arc::clone(pool));
        }
        let request = pb::GetChannelPoolRequest {
            channel_id: channel.to_string(),
        };
        let pool = with_retries(|| {
            let mut c = self.client.clone();
            let r = request.clone();
            async move { c.get_channel_pool(r).await }
        })
        .await
        .map_err(|s| to_port_error(PEER, format!("pool of {channel}"), s))?
        .into_inner()
        .pool
        .unwrap_or_default();
        let pool: Arc<BTreeSet<LocationId>> = Arc::new(
            pool.location_ids
                .into_iter()
                .filter_map(|id| LocationId::parse(id).ok())
                .collect(),
        );
        self.pools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(channel.clone(), (Instant::now(), Arc::clone(&pool)));
        Ok(pool)
    }

    async fn availability(
        &self,
        channel: &ChannelId,
        skus: &[Sku],
    ) -> Result<Availability, PortError> {
        let request = pb::GetAvailabilityRequest {
            skus: skus.iter().map(ToString::to_string).collect(),
            location_ids: Vec::new(),
            channel_id: Some(channel.to_string()),
            layout: pb::AvailabilityLayout::Grid.into(),
        };
        let answer = with_retries(|| {
            let mut c = self.client.clone();
            let r = request.clone();
            async move { c.get_availability(r).await }
        })
        .await
        .map_err(|s| to_port_error(PEER, "availability", s))?
        .into_inner();
        let mut out = Availability::default();
        match &answer.grid {
            Some(grid) => add_grid(&mut out, grid)?,
            // An inventory older than layout GRID answers in rows.
            None => add_rows(&mut out, answer.levels),
        }
        for cap in answer.capacities {
            if let Ok(location) = LocationId::parse(cap.location_id) {
                let left = (!cap.unlimited).then_some(cap.capacity_left_today);
                out.capacity_left.insert(location, left);
            }
        }
        Ok(out)
    }

    async fn reserve(
        &self,
        id: &ReservationId,
        lines: &[ReserveLine],
        ttl_: Duration,
    ) -> Result<ReservationView, ReserveError> {
        let request = pb::ReserveRequest {
            reservation_id: id.to_string(),
            lines: reserve_lines(lines),
            ttl: Some(ttl(ttl_)),
            count_capacity: true,
        };
        let answer = with_retries(|| {
            let mut c = self.client.clone();
            let r = request.clone();
            async move { c.reserve(r).await }
        })
        .await
        .map_err(|s| reserve_error(&id.to_string(), s))?
        .into_inner();
        let r = answer.reservation.ok_or_else(|| {
            ReserveError::Other(PortError::Invalid("Reserve answered no reservation".into()))
        })?;
        Ok(view(r)?)
    }

    async fn convert_hold(
        &self,
        hold: &ReservationId,
        id: &ReservationId,
        lines: &[ReserveLine],
        ttl_: Duration,
    ) -> Result<ReservationView, ReserveError> {
        let request = pb::ConvertHoldRequest {
            hold_id: hold.to_string(),
            reservation_id: id.to_string(),
            lines: reserve_lines(lines),
            ttl: Some(ttl(ttl_)),
            count_capacity: true,
        };
        let answer = with_retries(|| {
            let mut c = self.client.clone();
            let r = request.clone();
            async move { c.convert_hold(r).await }
        })
        .await
        .map_err(|s| reserve_error(&hold.to_string(), s))?
        .into_inner();
        let r = answer.reservation.ok_or_else(|| {
            ReserveError::Other(PortError::Invalid(
                "ConvertHold answered no reservation".into(),
            ))
        })?;
        Ok(view(r)?)
    }

    async fn confirm(&self, id: &ReservationId) -> Result<(), PortError> {
        let request = pb::ConfirmReservationRequest {
            reservation_id: id.to_string(),
        };
        with_retries(|| {
            let mut c = self.client.clone();
            let r = request.clone();
            async move { c.confirm_reservation(r).await }
        })
        .await
        .map_err(|s| to_port_error(PEER, id.to_string(), s))?;
        Ok(())
    }

    async fn release(&self, id: &ReservationId, reason: &str) -> Result<(), PortError> {
        let request = pb::ReleaseRequest {
            reservation_id: id.to_string(),
            lines: Vec::new(),
            reason: reason.to_owned(),
            idempotency_key: format!("{id}:saga-release"),
        };
        with_retries(|| {
            let mut c = self.client.clone();
            let r = request.clone();
            async move { c.release(r).await }
        })
        .await
        .map_err(|s| to_port_error(PEER, id.to_string(), s))?;
        Ok(())
    }

    async fn get_reservation(
        &self,
        id: &ReservationId,
    ) -> Result<Option<ReservationView>, PortError> {
        let request = pb::GetReservationRequest {
            reservation_id: id.to_string(),
        };
        match with_retries(|| {
            let mut c = self.client.clone();
            let r = request.clone();
            async move { c.get_reservation(r).await }
        })
        .await
        {
            Ok(answer) => answer.into_inner().reservation.map(view).transpose(),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
            Err(status) => Err(to_port_error(PEER, id.to_string(), status)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(available: Vec<i64>) -> pb::AvailabilityGrid {
        let cells = available.len();
        pb::AvailabilityGrid {
            skus: vec!["SKU-A".into(), "SKU-B".into()],
            location_ids: vec!["wh-1".into(), "not a location id".into(), "store-1".into()],
            on_hand: vec![9; cells],
            reserved: vec![0; cells],
            safety_stock: vec![0; cells],
            available,
        }
    }

    #[test]
    fn a_grid_gives_the_units_of_each_cell_with_something_to_sell() {
        let mut out = Availability::default();
        add_grid(&mut out, &grid(vec![4, 5, 0, 0, 6, 2])).unwrap();
        let units = |location: &str, sku: &str| {
            out.available
                .get(&LocationId::parse(location).unwrap())
                .and_then(|skus| skus.get(&Sku::parse(sku).unwrap()))
                .copied()
        };
        assert_eq!(units("wh-1", "SKU-A"), Some(4));
        assert_eq!(
            units("store-1", "SKU-A"),
            None,
            "nothing to sell is left out"
        );
        assert_eq!(units("wh-1", "SKU-B"), None);
        assert_eq!(units("store-1", "SKU-B"), Some(2));
        assert_eq!(
            out.available.len(),
            2,
            "the unparseable location is skipped"
        );
    }

    #[test]
    fn a_grid_with_a_short_column_is_an_unavailable_peer_not_a_plan() {
        let mut out = Availability::default();
        let error = add_grid(&mut out, &grid(vec![1, 2, 3])).unwrap_err();
        assert!(
            matches!(&error, PortError::Unavailable { peer: "inventory", detail } if detail.contains("6 counters, got 3")),
            "{error:?}"
        );
        assert!(out.available.is_empty());
    }
}
