//! The PlaceOrder saga (ARCHITECTURE §2, §3 hazards):
//! validate → claim the idempotency key → plan → Reserve (or ConvertHold) → RedeemPoints →
//! persist order + routing record + outbox events in one transaction → confirm → answer.
//!
//! A failure ends in one of three ways:
//! - **definite** (no stock, no points, member down): what was held is released, the key is
//!   forgotten, the caller gets the reason;
//! - **ambiguous** (a peer or the database failed mid-write): nothing is undone (holds expire by
//!   themselves), the key's lease is given up so the caller's retry takes over at once and looks
//!   up `order:<id>` before planning;
//! - **crash**: nothing at all; the lease runs out and a later retry takes over.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use omni_types::{ChannelId, OrderId, ReservationId};
use sea_orm::TransactionTrait;

use super::error::{ServiceError, Violation};
use super::profile_cache::LiveProfile;
use super::record::{AllocationMeta, Confirmations, OrderRecord, PickupRecord};
use super::{Orders, candidates, chrono_duration, sha256_hex};
use crate::clients::{
    IdentityRef, PortError, ReservationState, ReservationView, ReserveError, ReserveLine,
};
use crate::domain::order::{Fulfilment, MemberRef, OrderDraft, OrderDraftInput};
use crate::domain::pickup::PickupAttempts;
use crate::domain::planner::{self, Plan, PlanError, PlanInput};
use crate::domain::profile::RoutingProfile;
use crate::domain::simulate::StoredPlanInput;
use crate::domain::state::OrderState;
use crate::events::outgoing::{self, EventContext};
use crate::store::confirmation_flags::ConfirmationFlags;
use crate::store::orders::RowVersion;
use crate::store::placed_order::{self, PlacedOrder};
use crate::store::placements::{self, Claim, Placement};
use crate::store::routing_records::RoutingRecord;
use crate::store::{orders, profiles};

const MAX_KEY_LEN: usize = 128;

enum Failure {
    Definite(ServiceError),
    Ambiguous(ServiceError),
    Crash(ServiceError),
}

/// PlanOrder's answer: a plan, or why there is none (not an error for a dry run).
#[derive(Debug, Clone)]
pub struct PlanAnswer {
    pub outcome: Result<Plan, PlanError>,
    pub profile_version: u32,
}

fn invalid_order(e: crate::domain::order::InvalidOrder) -> ServiceError {
    ServiceError::Invalid(
        e.violations
            .into_iter()
            .map(|v| Violation {
                field: v.field,
                description: v.description,
            })
            .collect(),
    )
}

/// The hash that tells a retry from another order under the same key.
fn payload_hash(input: &OrderDraftInput) -> Result<String, ServiceError> {
    let json = serde_json::to_vec(input).map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok(sha256_hex(&json))
}

/// An unroutable plan as the API reports it: FAILED_PRECONDITION with the lines named.
pub(crate) fn plan_refusal(e: PlanError) -> ServiceError {
    match e {
        PlanError::Unroutable { lines } => {
            let mut metadata = vec![(
                "lines".to_owned(),
                lines
                    .iter()
                    .map(|l| (l.line_id.0.saturating_sub(1)).to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            )];
            metadata.extend(lines.iter().map(|l| {
                (
                    format!("lines[{}]", l.line_id.0.saturating_sub(1)),
                    format!("{:?}", l.reason),
                )
            }));
            // Sold out is what a buyer in a flash sale must be told, whichever step noticed it.
            let sold_out = lines
                .iter()
                .all(|l| matches!(l.reason, crate::domain::planner::UnroutableReason::NoStock));
            ServiceError::Refused {
                reason: if sold_out {
                    "INSUFFICIENT_STOCK"
                } else {
                    "UNROUTABLE"
                },
                message: PlanError::Unroutable { lines }.to_string(),
                metadata,
            }
        }
        PlanError::UnknownPickupStore { store } => ServiceError::NotFound {
            resource: "pickup store",
            id: store.to_string(),
        },
        e @ PlanError::PickupStoreUnavailable { .. } => {
            ServiceError::refused("PICKUP_STORE_UNAVAILABLE", e.to_string())
        }
        PlanError::PickupStoreCannotServe {
            store,
            missing,
            suggestions,
        } => {
            let message = PlanError::PickupStoreCannotServe {
                store,
                missing: missing.clone(),
                suggestions: suggestions.clone(),
            }
            .to_string();
            ServiceError::Refused {
                reason: "UNROUTABLE",
                message,
                metadata: vec![
                    (
                        "lines".to_owned(),
                        missing
                            .iter()
                            .map(|l| l.0.saturating_sub(1).to_string())
                            .collect::<Vec<_>>()
                            .join(","),
                    ),
                    (
                        "suggested_stores".to_owned(),
                        suggestions
                            .iter()
                            .map(|s| s.store.to_string())
                            .collect::<Vec<_>>()
                            .join(","),
                    ),
                ],
            }
        }
        e @ PlanError::DuplicateCandidate { .. } => ServiceError::Internal(e.to_string()),
    }
}

pub(crate) fn reserve_lines(plan: &Plan) -> Vec<ReserveLine> {
    let mut lines: Vec<ReserveLine> = plan
        .allocations
        .iter()
        .flat_map(|a| {
            a.lines.iter().map(|l| ReserveLine {
                sku: l.sku.clone(),
                location: a.location.clone(),
                quantity: l.qty.get(),
            })
        })
        .collect();
    lines.sort();
    lines
}

fn insufficient(draft: &OrderDraft, short: &[crate::clients::ShortLine]) -> ServiceError {
    let mut metadata = Vec::new();
    let mut indices = Vec::new();
    for s in short {
        let sku = s
            .subject
            .strip_prefix("sku/")
            .and_then(|rest| rest.split("/location/").next())
            .unwrap_or_default();
        if let Some(i) = draft.lines().iter().position(|l| l.sku.as_str() == sku) {
            indices.push(i.to_string());
            metadata.push((format!("lines[{i}]"), s.kind.clone()));
        }
    }
    metadata.insert(0, ("lines".to_owned(), indices.join(",")));
    ServiceError::Refused {
        reason: "INSUFFICIENT_STOCK",
        message: format!(
            "stock was taken by other orders while this one was placed: {}",
            short
                .iter()
                .map(|s| format!("{} {}", s.kind, s.subject))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        metadata,
    }
}

impl Orders {
    /// The channel's live profile and its version, from the profile cache while it is fresh.
    pub(crate) async fn profile_for(
        &self,
        channel: &ChannelId,
    ) -> Result<LiveProfile, ServiceError> {
        let ticket = match self.profiles.get(channel) {
            Ok(live) => return Ok(live),
            Err(ticket) => ticket,
        };
        let live = match profiles::live(&self.db, channel).await? {
            Some(p) => {
                let v = p.profile.version();
                (Arc::new(p.profile), v)
            }
            None => (Arc::new(RoutingProfile::default_for(channel.clone())), 0),
        };
        self.profiles.keep(ticket, channel, live.clone());
        Ok(live)
    }

    /// PlanOrder: a dry run on live availability; nothing is reserved or written.
    pub async fn plan(&self, input: OrderDraftInput) -> Result<PlanAnswer, ServiceError> {
        let draft = OrderDraft::parse(input).map_err(invalid_order)?;
        let (profile, profile_version) = self.profile_for(draft.channel()).await?;
        let skus: Vec<_> = draft.lines().iter().map(|l| l.sku.clone()).collect();
        let candidates = candidates::live(self.inventory.as_ref(), draft.channel(), &skus).await?;
        let outcome = planner::plan(&PlanInput::from_draft(&draft), &candidates, &profile);
        if let Err(e @ PlanError::DuplicateCandidate { .. }) = &outcome {
            return Err(ServiceError::Internal(e.to_string()));
        }
        Ok(PlanAnswer {
            outcome,
            profile_version,
        })
    }

    /// PlaceOrder. Idempotent on (channel, `key`): see the module docs.
    pub async fn place(
        &self,
        key: &str,
        input: OrderDraftInput,
    ) -> Result<OrderRecord, ServiceError> {
        if key.is_empty() || key.len() > MAX_KEY_LEN || key.chars().any(char::is_control) {
            return Err(ServiceError::invalid(
                "idempotency_key",
                format!("must be 1-{MAX_KEY_LEN} printable characters"),
            ));
        }
        let hash = payload_hash(&input)?;
        let draft = OrderDraft::parse(input).map_err(invalid_order)?;
        let channel = draft.channel().to_string();
        let now = self.clock.now();
        let lease = now + chrono_duration(self.settings.placement_lease);
        let fresh = Placement {
            order_id: uuid::Uuid::now_v7(),
            payload_hash: hash.clone(),
            lease_until: lease,
        };
        let skus: Vec<_> = draft.lines().iter().map(|l| l.sku.clone()).collect();
        // The claim need not wait for its WAL flush: the order's own commit flushes it, and if a
        // crash loses it first, nothing durable refers to it (the retry takes a new order id;
        // the lost attempt's hold expires). Availability is read meanwhile: nearly every call
        // is a first attempt, which plans on it at once; a retry that finds its order or an
        // earlier hold drops it.
        let (claimed, live) = tokio::join!(
            placements::claim(&self.unflushed, &channel, key, &fresh),
            candidates::live(self.inventory.as_ref(), draft.channel(), &skus),
        );
        let (order_id, earlier, live) = match claimed? {
            Claim::New => (fresh.order_id, None, Some(live)),
            Claim::Existing(p) => {
                if p.payload_hash != hash {
                    return Err(ServiceError::KeyReused(format!(
                        "idempotency key {key:?} was used for another order"
                    )));
                }
                if let Some(order) = orders::load(&self.db, p.order_id).await? {
                    return Ok(order);
                }
                if p.lease_until > now {
                    return Err(ServiceError::RetryLater(format!(
                        "order with idempotency key {key:?} is being placed; retry"
                    )));
                }
                // The attempt that owned the key died or gave up. Whatever it held in
                // inventory decides how to go on: still held → re-use it; finished → that id
                // is spent (its reservation id cannot be reserved again), take a new one.
                let rid = ReservationId::for_order(OrderId::from(p.order_id));
                let earlier = self.inventory.get_reservation(&rid).await?;
                let id = match &earlier {
                    Some(r) if r.state != ReservationState::Held => uuid::Uuid::now_v7(),
                    _ => p.order_id,
                };
                if !placements::take_over(&self.db, &channel, key, p.lease_until, id, lease).await?
                {
                    return Err(ServiceError::RetryLater(format!(
                        "order with idempotency key {key:?} is being placed; retry"
                    )));
                }
                (
                    id,
                    earlier.filter(|r| r.state == ReservationState::Held),
                    None,
                )
            }
        };
        match self.run_saga(order_id, &draft, earlier, live).await {
            Ok(order) => Ok(order),
            Err(Failure::Definite(e)) => {
                if let Err(forget) = placements::forget(&self.db, &channel, key, order_id).await {
                    tracing::warn!(error = %forget, "could not forget a failed placement");
                }
                Err(e)
            }
            Err(Failure::Ambiguous(e)) => {
                let now = self.clock.now();
                if let Err(give_up) =
                    placements::take_over(&self.db, &channel, key, lease, order_id, now).await
                {
                    tracing::warn!(error = %give_up, "could not give up a placement lease");
                }
                Err(e)
            }
            Err(Failure::Crash(e)) => Err(e),
        }
    }

    /// `live` is availability read for this order already, if it was.
    async fn run_saga(
        &self,
        order_id: uuid::Uuid,
        draft: &OrderDraft,
        earlier: Option<ReservationView>,
        live: Option<Result<Vec<planner::Candidate>, PortError>>,
    ) -> Result<OrderRecord, Failure> {
        let member = self
            .resolve_member(draft)
            .await
            .map_err(Failure::Definite)?;
        if draft.points_to_redeem() > 0 && member.is_none() {
            return Err(Failure::Definite(ServiceError::invalid(
                "order.points_to_redeem",
                "redeeming points needs a member",
            )));
        }
        let (profile, profile_version) = self
            .profile_for(draft.channel())
            .await
            .map_err(Failure::Ambiguous)?;
        let rid = ReservationId::for_order(OrderId::from(order_id));
        let (plan, candidates) = self
            .hold_stock(
                OrderId::from(order_id),
                &rid,
                draft,
                &profile,
                earlier,
                live,
            )
            .await?;
        if let (Some(member), points @ 1..) = (member, draft.points_to_redeem())
            && let Err(e) = self
                .member
                .redeem(
                    member,
                    order_id,
                    points,
                    draft.channel(),
                    self.settings.reserve_ttl,
                )
                .await
        {
            self.compensate(&rid).await;
            return Err(Failure::Definite(match e {
                PortError::Refused { reason, detail } if reason == "INSUFFICIENT_POINTS" => {
                    ServiceError::refused("INSUFFICIENT_POINTS", detail)
                }
                PortError::NotFound { .. } => ServiceError::NotFound {
                    resource: "member",
                    id: member.to_string(),
                },
                PortError::Refused { reason, detail } => ServiceError::Refused {
                    reason: "POINTS_NOT_REDEEMABLE",
                    message: format!("{reason}: {detail}"),
                    metadata: Vec::new(),
                },
                other => ServiceError::Unavailable(format!(
                    "points could not be redeemed, the order was not placed: {other}"
                )),
            }));
        }
        self.probe
            .before_persist(OrderId::from(order_id))
            .map_err(|e| Failure::Crash(ServiceError::Internal(e)))?;
        let (record, version) = self
            .persist(order_id, draft, member, plan, candidates, profile_version)
            .await
            .map_err(Failure::Ambiguous)?;
        self.outbox.notify_one();
        Ok(self.confirm(record, version.as_ref()).await)
    }

    async fn resolve_member(&self, draft: &OrderDraft) -> Result<Option<uuid::Uuid>, ServiceError> {
        match draft.member() {
            None => Ok(None),
            Some(MemberRef::Id(id)) => Ok(Some(*id)),
            Some(MemberRef::Identity { kind, value }) => self
                .member
                .resolve(&IdentityRef {
                    kind: kind.clone(),
                    value: value.clone(),
                })
                .await
                .map(Some)
                .map_err(|e| match e {
                    PortError::NotFound { .. } => ServiceError::NotFound {
                        resource: "member",
                        id: format!("{kind} identity"),
                    },
                    other => ServiceError::Unavailable(format!("member lookup failed: {other}")),
                }),
        }
    }

    /// Plans and reserves, re-planning on a lost race up to `max_plan_attempts` times. The first
    /// plan is made on `live` when given; each re-plan reads availability again.
    async fn hold_stock(
        &self,
        order: OrderId,
        rid: &ReservationId,
        draft: &OrderDraft,
        profile: &RoutingProfile,
        earlier: Option<ReservationView>,
        mut live: Option<Result<Vec<planner::Candidate>, PortError>>,
    ) -> Result<(Plan, Vec<planner::Candidate>), Failure> {
        let input = PlanInput::from_draft(draft);
        let skus: Vec<_> = draft.lines().iter().map(|l| l.sku.clone()).collect();
        let mut attempt = 0;
        // Set once a Reserve lost a race: a re-plan that then finds nothing reports the stock
        // taken meanwhile, not a routing problem.
        let mut lost: Option<Vec<crate::clients::ShortLine>> = None;
        loop {
            attempt += 1;
            let candidates = match (&earlier, live.take()) {
                (Some(held), _) => {
                    candidates::pinned(self.inventory.as_ref(), draft.channel(), &held.held).await
                }
                (None, Some(read)) => read,
                (None, None) => {
                    candidates::live(self.inventory.as_ref(), draft.channel(), &skus).await
                }
            }
            .map_err(|e| Failure::Definite(e.into()))?;
            let plan = match planner::plan(&input, &candidates, profile) {
                Ok(plan) => plan,
                Err(e) => {
                    if earlier.is_some() {
                        self.compensate(rid).await;
                    }
                    return Err(Failure::Definite(match (lost, e) {
                        (Some(short), PlanError::Unroutable { .. }) => insufficient(draft, &short),
                        (_, e) => plan_refusal(e),
                    }));
                }
            };
            let lines = reserve_lines(&plan);
            if attempt == 1 {
                self.probe.before_reserve(order).await;
            }
            let ttl = self.settings.reserve_ttl;
            let reserved = match draft.checkout_hold() {
                Some(hold) => self.inventory.convert_hold(hold, rid, &lines, ttl).await,
                None => self.inventory.reserve(rid, &lines, ttl).await,
            };
            match reserved {
                Ok(_) => return Ok((plan, candidates)),
                Err(ReserveError::Short(short)) => {
                    if attempt >= self.settings.max_plan_attempts || earlier.is_some() {
                        return Err(Failure::Definite(insufficient(draft, &short)));
                    }
                    lost = Some(short);
                    tracing::info!(%rid, attempt, "lost a race for stock; re-planning");
                }
                Err(ReserveError::Other(e)) => {
                    return Err(match e {
                        PortError::NotFound { what } => Failure::Definite(ServiceError::NotFound {
                            resource: "checkout hold or location",
                            id: what,
                        }),
                        PortError::Refused { reason, detail } => {
                            Failure::Definite(ServiceError::Refused {
                                reason: "CHECKOUT_HOLD_NOT_HELD",
                                message: format!("{reason}: {detail}"),
                                metadata: Vec::new(),
                            })
                        }
                        PortError::InProgress(m) => Failure::Ambiguous(ServiceError::RetryLater(m)),
                        PortError::Unavailable { .. } => {
                            Failure::Ambiguous(ServiceError::Unavailable(e.to_string()))
                        }
                        other => Failure::Ambiguous(other.into()),
                    });
                }
            }
        }
    }

    /// Gives back what the saga held before the order existed. Best effort: an unconfirmed
    /// hold expires by itself if this fails.
    async fn compensate(&self, rid: &ReservationId) {
        if let Err(e) = self.inventory.release(rid, "order not placed").await {
            tracing::warn!(%rid, error = %e, "could not release the saga's hold; it will expire");
        }
    }

    async fn persist(
        &self,
        order_id: uuid::Uuid,
        draft: &OrderDraft,
        member: Option<uuid::Uuid>,
        plan: Plan,
        candidates: Vec<planner::Candidate>,
        profile_version: u32,
    ) -> Result<(OrderRecord, Option<RowVersion>), ServiceError> {
        let _writing = self
            .order_writes
            .acquire()
            .await
            .map_err(|_| ServiceError::Internal("order writes closed".to_owned()))?;
        let now = self.clock.now();
        let id = OrderId::from(order_id);
        let (state, events) = OrderState::place(id, draft, &plan)
            .map_err(|e| ServiceError::Internal(format!("plan does not fit the order: {e}")))?;
        let record = new_record(state, draft, member, &plan, profile_version, now);
        let stored_input = StoredPlanInput::new(id, PlanInput::from_draft(draft), candidates);
        let envelopes = outgoing::envelopes(&record, &events, &EventContext::default(), now)?;
        let version = placed_order::insert(
            &self.db,
            &self.catalogues,
            PlacedOrder {
                record: &record,
                planner_input: &stored_input,
                routing: &RoutingRecord {
                    trigger: "PLACE_ORDER".to_owned(),
                    planned_at: now,
                    profile_version,
                    explanation: plan.explanation,
                },
                events: &envelopes,
            },
        )
        .await?;
        Ok((record, version))
    }

    /// Confirms the reservation and the redemption of a durable order. What fails stays marked
    /// in the record for the sweeper; the order is placed either way. `version` is where the
    /// record is stored as it is here (none on SQLite).
    async fn confirm(&self, mut record: OrderRecord, version: Option<&RowVersion>) -> OrderRecord {
        let before = record.unconfirmed;
        if record.unconfirmed.reservation {
            match self.inventory.confirm(&record.reservation_id()).await {
                Ok(()) => record.unconfirmed.reservation = false,
                Err(PortError::Refused { reason, detail }) => {
                    // The hold expired before the order became durable: the expiry event
                    // cancels the order; retrying the confirmation cannot help.
                    tracing::error!(order = %record.id(), %reason, %detail, "reservation cannot be confirmed");
                    record.unconfirmed.reservation = false;
                }
                Err(e) => {
                    tracing::warn!(order = %record.id(), error = %e, "reservation confirmation deferred to the sweeper")
                }
            }
        }
        if record.unconfirmed.redemption {
            match self.member.confirm_redemption(record.id().as_uuid()).await {
                Ok(()) => record.unconfirmed.redemption = false,
                Err(PortError::Refused { reason, detail }) => {
                    tracing::error!(order = %record.id(), %reason, %detail, "redemption cannot be confirmed");
                    record.unconfirmed.redemption = false;
                }
                Err(e) => {
                    tracing::warn!(order = %record.id(), error = %e, "redemption confirmation deferred to the sweeper")
                }
            }
        }
        if record.unconfirmed != before {
            // Off the answer path: the order is placed and its confirmations are made whether or
            // not their flags are stored, and flags left set (a crash, a failed write) only make
            // the sweeper repeat confirmations, which are idempotent. Waiting for this write
            // added a statement's round trip, or the batch before it, to every PlaceOrder.
            let db = self.db.clone();
            let flags = Arc::clone(&self.confirmation_flags);
            let (stored, version) = (record.clone(), version.cloned());
            tokio::spawn(async move {
                if let Err(e) = save_confirmations(&db, &flags, &stored, version.as_ref()).await {
                    tracing::warn!(order = %stored.id(), error = %e, "could not record confirmations; the sweeper will repeat them");
                }
            });
        }
        record
    }
}

async fn save_confirmations(
    db: &sea_orm::DatabaseConnection,
    flags: &ConfirmationFlags,
    record: &OrderRecord,
    version: Option<&RowVersion>,
) -> Result<(), ServiceError> {
    // Unless a consumer or a job wrote the order since it was stored, the record here is the
    // stored one with the flags cleared: no lock, no flush wait, and one statement for all the
    // orders whose flags are written at the same time.
    if let Some(version) = version
        && flags.save_at_version(record, version).await?
    {
        return Ok(());
    }
    let txn = db.begin().await?;
    // Lost in a crash, the flags stay set and the sweeper repeats the confirmations.
    omni_platform::db::skip_flush_wait(&txn).await?;
    if let Some(mut current) = orders::load_for_update(&txn, record.id().as_uuid()).await? {
        current.unconfirmed.reservation &= record.unconfirmed.reservation;
        current.unconfirmed.redemption &= record.unconfirmed.redemption;
        orders::save(&txn, &current).await?;
    }
    txn.commit().await?;
    Ok(())
}

fn new_record(
    state: OrderState,
    draft: &OrderDraft,
    member: Option<uuid::Uuid>,
    plan: &Plan,
    profile_version: u32,
    now: DateTime<Utc>,
) -> OrderRecord {
    let allocations = state
        .allocations
        .iter()
        .zip(&plan.allocations)
        .map(|(a, planned)| AllocationMeta {
            id: a.id,
            uuid: uuid::Uuid::now_v7(),
            distance_km: planned.distance_km,
            tracking: None,
            created_at: now,
            updated_at: now,
            reservation: None,
            unconfirmed: false,
        })
        .collect();
    let pickup = match draft.fulfilment() {
        Fulfilment::Pickup { store } => Some(PickupRecord {
            store: store.clone(),
            ready_at: None,
            expires_at: None,
            secret: None,
            attempts: PickupAttempts::default(),
        }),
        Fulfilment::Ship { .. } => None,
    };
    OrderRecord {
        state,
        channel: draft.channel().clone(),
        member,
        fulfilment: draft.fulfilment().clone(),
        profile_version,
        allocations,
        pickup,
        unconfirmed: Confirmations {
            reservation: true,
            redemption: draft.points_to_redeem() > 0,
        },
        created_at: now,
        updated_at: now,
    }
}
