//! In-memory peers honouring the inventory and member contracts the saga relies on, with
//! switches to inject failures.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use omni_order_routing::clients::{
    Availability, IdentityRef, InventoryPort, LocationInfo, MemberPort, PortError,
    ReservationState, ReservationView, ReserveError, ReserveLine, ShortLine,
};
use omni_order_routing::domain::planner::{Capabilities, LocationKind};
use omni_platform::clock::{Clock, ManualClock};
use omni_types::{ChannelId, GeoPoint, LocationId, OrderId, ReservationId, Sku};
use tokio::sync::Semaphore;

#[derive(Debug, Clone)]
pub struct FakeReservation {
    pub lines: Vec<ReserveLine>,
    pub state: ReservationState,
    pub expires_at: Option<DateTime<Utc>>,
    pub confirmed: bool,
}

#[derive(Default)]
struct InventoryState {
    locations: Vec<LocationInfo>,
    on_hand: BTreeMap<(Sku, LocationId), u32>,
    reservations: HashMap<String, FakeReservation>,
}

pub struct FakeInventory {
    clock: ManualClock,
    state: Mutex<InventoryState>,
    /// When set, each Reserve waits for a permit: a test holds a PlaceOrder mid-saga.
    pub gate: Mutex<Option<Arc<Semaphore>>>,
    /// When set, each ConfirmReservation waits for a permit: the order is durable, not yet
    /// confirmed.
    pub confirm_gate: Mutex<Option<Arc<Semaphore>>>,
    /// Units of stock another buyer takes just before the next N reserves check.
    pub steal_before_reserve: AtomicUsize,
    pub reserve_calls: AtomicUsize,
}

pub fn loc(id: &str) -> LocationId {
    LocationId::parse(id).unwrap()
}

pub fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}

impl FakeInventory {
    pub fn new(clock: ManualClock) -> Self {
        Self {
            clock,
            state: Mutex::new(InventoryState::default()),
            gate: Mutex::new(None),
            confirm_gate: Mutex::new(None),
            steal_before_reserve: AtomicUsize::new(0),
            reserve_calls: AtomicUsize::new(0),
        }
    }

    pub fn add_location(&self, id: &str, kind: LocationKind, lat: f64, lon: f64) {
        let capabilities = match kind {
            LocationKind::Warehouse => Capabilities {
                ships: true,
                pickup: false,
                ship_from_store: false,
            },
            LocationKind::Store => Capabilities {
                ships: false,
                pickup: true,
                ship_from_store: true,
            },
        };
        self.state.lock().unwrap().locations.push(LocationInfo {
            id: loc(id),
            kind,
            point: GeoPoint::parse(lat, lon).unwrap(),
            capabilities,
            active: true,
            pickup_hold: Some(Duration::from_secs(2 * 3600)),
        });
    }

    pub fn move_location(&self, id: &str, lat: f64, lon: f64) {
        let mut state = self.state.lock().unwrap();
        let location = state
            .locations
            .iter_mut()
            .find(|l| l.id == loc(id))
            .unwrap();
        location.point = GeoPoint::parse(lat, lon).unwrap();
    }

    pub fn set_stock(&self, s: &str, l: &str, units: u32) {
        self.state
            .lock()
            .unwrap()
            .on_hand
            .insert((sku(s), loc(l)), units);
    }

    pub fn reservation(&self, id: OrderId) -> Option<FakeReservation> {
        self.expire();
        self.state
            .lock()
            .unwrap()
            .reservations
            .get(&ReservationId::for_order(id).to_string())
            .cloned()
    }

    pub fn held_total(&self) -> u32 {
        self.expire();
        let st = self.state.lock().unwrap();
        st.reservations
            .values()
            .filter(|r| r.state == ReservationState::Held)
            .flat_map(|r| r.lines.iter().map(|l| l.quantity))
            .sum()
    }

    /// The reaper: unconfirmed holds past their expiry end EXPIRED.
    fn expire(&self) {
        let now = self.clock.now();
        let mut st = self.state.lock().unwrap();
        for r in st.reservations.values_mut() {
            if r.state == ReservationState::Held
                && !r.confirmed
                && r.expires_at.is_some_and(|e| e <= now)
            {
                r.state = ReservationState::Expired;
            }
        }
    }

    fn available(st: &InventoryState, s: &Sku, l: &LocationId) -> u32 {
        let on_hand = st
            .on_hand
            .get(&(s.clone(), l.clone()))
            .copied()
            .unwrap_or(0);
        let held: u32 = st
            .reservations
            .values()
            .filter(|r| r.state == ReservationState::Held)
            .flat_map(|r| r.lines.iter())
            .filter(|x| &x.sku == s && &x.location == l)
            .map(|x| x.quantity)
            .sum();
        on_hand.saturating_sub(held)
    }

    fn view(id: &ReservationId, r: &FakeReservation) -> ReservationView {
        ReservationView {
            id: id.clone(),
            state: r.state,
            confirmed: r.confirmed,
            held: if r.state == ReservationState::Held {
                r.lines.clone()
            } else {
                Vec::new()
            },
        }
    }
}

#[async_trait]
impl InventoryPort for FakeInventory {
    async fn locations(&self) -> Result<Arc<[LocationInfo]>, PortError> {
        Ok(self.state.lock().unwrap().locations.clone().into())
    }

    async fn pool(&self, _channel: &ChannelId) -> Result<Arc<BTreeSet<LocationId>>, PortError> {
        Ok(Arc::new(
            self.state
                .lock()
                .unwrap()
                .locations
                .iter()
                .map(|l| l.id.clone())
                .collect(),
        ))
    }

    async fn availability(
        &self,
        _channel: &ChannelId,
        skus: &[Sku],
    ) -> Result<Availability, PortError> {
        self.expire();
        let st = self.state.lock().unwrap();
        let mut out = Availability::default();
        for l in &st.locations {
            for s in skus {
                let units = Self::available(&st, s, &l.id);
                if units > 0 {
                    out.available
                        .entry(l.id.clone())
                        .or_default()
                        .insert(s.clone(), units);
                }
            }
            out.capacity_left.insert(l.id.clone(), None);
        }
        Ok(out)
    }

    async fn reserve(
        &self,
        id: &ReservationId,
        lines: &[ReserveLine],
        ttl: Duration,
    ) -> Result<ReservationView, ReserveError> {
        self.reserve_calls.fetch_add(1, Ordering::SeqCst);
        let gate = self.gate.lock().unwrap().clone();
        if let Some(gate) = gate {
            gate.acquire().await.unwrap().forget();
        }
        self.expire();
        let mut st = self.state.lock().unwrap();
        if let Some(existing) = st.reservations.get(&id.to_string()) {
            let mut a = existing.lines.clone();
            let mut b = lines.to_vec();
            a.sort();
            b.sort();
            if a != b {
                return Err(ReserveError::Other(PortError::Conflict(id.to_string())));
            }
            return Ok(Self::view(id, existing));
        }
        if self.steal_before_reserve.load(Ordering::SeqCst) > 0 {
            self.steal_before_reserve.fetch_sub(1, Ordering::SeqCst);
            for l in lines {
                if let Some(units) = st.on_hand.get_mut(&(l.sku.clone(), l.location.clone())) {
                    *units = units.saturating_sub(l.quantity);
                }
            }
        }
        let short: Vec<ShortLine> = lines
            .iter()
            .filter(|l| Self::available(&st, &l.sku, &l.location) < l.quantity)
            .map(|l| ShortLine {
                kind: "INSUFFICIENT_STOCK".into(),
                subject: format!("sku/{}/location/{}", l.sku, l.location),
            })
            .collect();
        if !short.is_empty() {
            return Err(ReserveError::Short(short));
        }
        let r = FakeReservation {
            lines: lines.to_vec(),
            state: ReservationState::Held,
            expires_at: Some(self.clock.now() + chrono::Duration::from_std(ttl).unwrap()),
            confirmed: false,
        };
        let view = Self::view(id, &r);
        st.reservations.insert(id.to_string(), r);
        Ok(view)
    }

    async fn convert_hold(
        &self,
        _hold: &ReservationId,
        id: &ReservationId,
        lines: &[ReserveLine],
        ttl: Duration,
    ) -> Result<ReservationView, ReserveError> {
        self.reserve(id, lines, ttl).await
    }

    async fn confirm(&self, id: &ReservationId) -> Result<(), PortError> {
        let gate = self.confirm_gate.lock().unwrap().clone();
        if let Some(gate) = gate {
            gate.acquire().await.unwrap().forget();
        }
        self.expire();
        let mut st = self.state.lock().unwrap();
        let r = st
            .reservations
            .get_mut(&id.to_string())
            .ok_or(PortError::NotFound {
                what: id.to_string(),
            })?;
        if r.state != ReservationState::Held {
            return Err(PortError::Refused {
                reason: "RESERVATION_NOT_HELD".into(),
                detail: String::new(),
            });
        }
        r.confirmed = true;
        r.expires_at = None;
        Ok(())
    }

    async fn release(&self, id: &ReservationId, _reason: &str) -> Result<(), PortError> {
        let mut st = self.state.lock().unwrap();
        if let Some(r) = st.reservations.get_mut(&id.to_string())
            && r.state == ReservationState::Held
        {
            r.state = ReservationState::Released;
        }
        Ok(())
    }

    async fn get_reservation(
        &self,
        id: &ReservationId,
    ) -> Result<Option<ReservationView>, PortError> {
        self.expire();
        Ok(self
            .state
            .lock()
            .unwrap()
            .reservations
            .get(&id.to_string())
            .map(|r| Self::view(id, r)))
    }
}

#[derive(Default)]
pub struct FakeMember {
    pub down: AtomicBool,
    pub members: Mutex<HashMap<String, uuid::Uuid>>,
    pub balances: Mutex<HashMap<uuid::Uuid, u64>>,
    /// order → (points, confirmed)
    pub redemptions: Mutex<HashMap<uuid::Uuid, (u64, bool)>>,
}

impl FakeMember {
    fn check_up(&self) -> Result<(), PortError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(PortError::Unavailable {
                peer: "member",
                detail: "connection refused".into(),
            });
        }
        Ok(())
    }

    pub fn enroll(&self, phone: &str, points: u64) -> uuid::Uuid {
        let id = uuid::Uuid::new_v4();
        self.members.lock().unwrap().insert(phone.to_owned(), id);
        self.balances.lock().unwrap().insert(id, points);
        id
    }
}

#[async_trait]
impl MemberPort for FakeMember {
    async fn resolve(&self, identity: &IdentityRef) -> Result<uuid::Uuid, PortError> {
        self.check_up()?;
        self.members
            .lock()
            .unwrap()
            .get(&identity.value)
            .copied()
            .ok_or(PortError::NotFound {
                what: identity.value.clone(),
            })
    }

    async fn redeem(
        &self,
        member: uuid::Uuid,
        order: uuid::Uuid,
        points: u64,
        _channel: &ChannelId,
        _ttl: Duration,
    ) -> Result<(), PortError> {
        self.check_up()?;
        if self.redemptions.lock().unwrap().contains_key(&order) {
            return Ok(());
        }
        let mut balances = self.balances.lock().unwrap();
        let balance = balances.entry(member).or_default();
        if *balance < points {
            return Err(PortError::Refused {
                reason: "INSUFFICIENT_POINTS".into(),
                detail: format!("balance {balance}"),
            });
        }
        *balance -= points;
        self.redemptions
            .lock()
            .unwrap()
            .insert(order, (points, false));
        Ok(())
    }

    async fn confirm_redemption(&self, order: uuid::Uuid) -> Result<(), PortError> {
        self.check_up()?;
        match self.redemptions.lock().unwrap().get_mut(&order) {
            Some(r) => {
                r.1 = true;
                Ok(())
            }
            None => Err(PortError::NotFound {
                what: order.to_string(),
            }),
        }
    }
}
