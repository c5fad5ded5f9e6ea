//! `omni.inventory.v1.InventoryService` over the use cases in [`crate::service`].

pub mod auth_rules;
pub mod convert;

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use omni_platform::auth::Principal;
use omni_platform::grpc::ApiError;
use omni_proto::inventory::v1 as pb;
use omni_proto::inventory::v1::inventory_service_server::InventoryService;
use omni_types::{LocationId, Sku};
use tonic::{Request, Response, Status};

use self::auth_rules::{Rule, authorize};
use self::convert as cv;
use crate::domain::Movement;
use crate::reservations::FeedEvent;
use crate::service::{Adjustment, AvailabilityQuery, Inventory, ReserveCommand};
use crate::store::MovementFilter;

pub struct InventoryApi {
    inventory: Arc<Inventory>,
}

impl InventoryApi {
    pub fn new(inventory: Arc<Inventory>) -> Self {
        Self { inventory }
    }
}

fn caller<T>(request: &Request<T>) -> Option<Principal> {
    request.extensions().get::<Principal>().cloned()
}

fn api(error: impl Into<ApiError>) -> Status {
    Status::from(error.into())
}

fn page_after(token: &str) -> Option<&str> {
    (!token.is_empty()).then_some(token)
}

fn page_size(size: i32) -> u64 {
    match size {
        n if n <= 0 => 100,
        n => (n as u64).min(500),
    }
}

type WatchStream =
    Pin<Box<dyn Stream<Item = Result<pb::WatchAvailabilityResponse, Status>> + Send>>;

#[tonic::async_trait]
impl InventoryService for InventoryApi {
    async fn upsert_location(
        &self,
        request: Request<pb::UpsertLocationRequest>,
    ) -> Result<Response<pb::UpsertLocationResponse>, Status> {
        authorize(caller(&request).as_ref(), "UpsertLocation", Rule::Admin)?;
        let location = request
            .into_inner()
            .location
            .ok_or_else(|| api(cv::invalid("location", "is required")))?;
        let location = cv::location_from_proto(location).map_err(api)?;
        let created = self
            .inventory
            .location(&location.id)
            .await
            .map_err(api)?
            .is_none();
        let saved = self
            .inventory
            .upsert_location(location)
            .await
            .map_err(api)?;
        Ok(Response::new(pb::UpsertLocationResponse {
            location: Some(cv::location_to_proto(&saved)),
            created,
        }))
    }

    async fn get_location(
        &self,
        request: Request<pb::GetLocationRequest>,
    ) -> Result<Response<pb::GetLocationResponse>, Status> {
        authorize(caller(&request).as_ref(), "GetLocation", Rule::AnyCaller)?;
        let id = cv::location_id(&request.get_ref().location_id, "location_id").map_err(api)?;
        let location = self
            .inventory
            .location(&id)
            .await
            .map_err(api)?
            .ok_or_else(|| api(ApiError::not_found("location", id.to_string())))?;
        Ok(Response::new(pb::GetLocationResponse {
            location: Some(cv::location_to_proto(&location)),
        }))
    }

    async fn list_locations(
        &self,
        request: Request<pb::ListLocationsRequest>,
    ) -> Result<Response<pb::ListLocationsResponse>, Status> {
        authorize(caller(&request).as_ref(), "ListLocations", Rule::AnyCaller)?;
        let r = request.into_inner();
        if r.page_size < 0 || r.page_size > 500 {
            return Err(api(cv::invalid("page_size", "must be between 0 and 500")));
        }
        let size = page_size(r.page_size);
        let page = self
            .inventory
            .list_locations(page_after(&r.page_token), size)
            .await
            .map_err(api)?;
        let next_page_token = if page.len() as u64 == size {
            page.last().map(|l| l.id.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        let kind = pb::LocationKind::try_from(r.kind).unwrap_or(pb::LocationKind::Unspecified);
        let locations = page
            .iter()
            .filter(|l| r.include_inactive || l.active)
            .map(cv::location_to_proto)
            .filter(|l| kind == pb::LocationKind::Unspecified || l.kind == kind as i32)
            .collect();
        Ok(Response::new(pb::ListLocationsResponse {
            locations,
            next_page_token,
        }))
    }

    async fn set_channel_pool(
        &self,
        request: Request<pb::SetChannelPoolRequest>,
    ) -> Result<Response<pb::SetChannelPoolResponse>, Status> {
        authorize(caller(&request).as_ref(), "SetChannelPool", Rule::Admin)?;
        let r = request.into_inner();
        let channel = cv::channel_id(&r.channel_id, "channel_id").map_err(api)?;
        let members = r
            .location_ids
            .iter()
            .enumerate()
            .map(|(i, id)| cv::location_id(id, &format!("location_ids[{i}]")))
            .collect::<Result<Vec<_>, _>>()
            .map_err(api)?;
        let members = self
            .inventory
            .set_pool(&channel, members)
            .await
            .map_err(api)?;
        Ok(Response::new(pb::SetChannelPoolResponse {
            pool: Some(pb::ChannelPool {
                channel_id: channel.to_string(),
                location_ids: members.iter().map(ToString::to_string).collect(),
                updated_at: None,
            }),
        }))
    }

    async fn get_channel_pool(
        &self,
        request: Request<pb::GetChannelPoolRequest>,
    ) -> Result<Response<pb::GetChannelPoolResponse>, Status> {
        let channel = cv::channel_id(&request.get_ref().channel_id, "channel_id").map_err(api)?;
        authorize(
            caller(&request).as_ref(),
            "GetChannelPool",
            Rule::ChannelPool {
                channel: channel.as_str(),
            },
        )?;
        let members = self.inventory.pool(&channel).await.map_err(api)?;
        Ok(Response::new(pb::GetChannelPoolResponse {
            pool: Some(pb::ChannelPool {
                channel_id: channel.to_string(),
                location_ids: members.iter().map(ToString::to_string).collect(),
                updated_at: None,
            }),
        }))
    }

    async fn adjust_stock(
        &self,
        request: Request<pb::AdjustStockRequest>,
    ) -> Result<Response<pb::AdjustStockResponse>, Status> {
        let principal = caller(&request);
        let r = request.into_inner();
        authorize(
            principal.as_ref(),
            "AdjustStock",
            Rule::AtLocations {
                locations: r
                    .adjustments
                    .iter()
                    .map(|a| a.location_id.as_str())
                    .collect(),
            },
        )?;
        let mut violations = Vec::new();
        let mut adjustments = Vec::with_capacity(r.adjustments.len());
        let mut kinds = Vec::with_capacity(r.adjustments.len());
        for (i, a) in r.adjustments.iter().enumerate() {
            let field = |f: &str| format!("adjustments[{i}].{f}");
            let sku = cv::sku(&a.sku, &field("sku"));
            let location = cv::location_id(&a.location_id, &field("location_id"));
            let kind = cv::movement_kind(a.kind, &field("kind"));
            let key_ok = !a.idempotency_key.trim().is_empty() && a.idempotency_key.len() <= 200;
            if !key_ok {
                violations.push(omni_platform::grpc::FieldViolation::new(
                    field("idempotency_key"),
                    "must be 1 to 200 characters",
                ));
            }
            let movement = kind.as_ref().ok().map(|k| {
                Movement::parse(*k, a.quantity).map_err(|e| {
                    omni_platform::grpc::FieldViolation::new(field("quantity"), e.to_string())
                })
            });
            for e in [
                sku.as_ref().err(),
                location.as_ref().err(),
                kind.as_ref().err(),
            ]
            .into_iter()
            .flatten()
            {
                if let ApiError::InvalidArgument(v) = e {
                    violations.extend(v.iter().cloned());
                }
            }
            match (sku, location, movement) {
                (Ok(sku), Ok(location), Some(Ok(movement))) if key_ok => {
                    kinds.push(movement.kind());
                    adjustments.push(Adjustment {
                        sku,
                        location,
                        movement,
                        idempotency_key: a.idempotency_key.clone(),
                        reference: if a.reference.is_empty() {
                            a.reason.chars().take(200).collect()
                        } else {
                            a.reference.chars().take(200).collect()
                        },
                    });
                }
                (_, _, Some(Err(v))) => violations.push(v),
                _ => {}
            }
        }
        if !violations.is_empty() {
            return Err(api(ApiError::InvalidArgument(violations)));
        }
        let keys: Vec<String> = adjustments
            .iter()
            .map(|a| a.idempotency_key.clone())
            .collect();
        let applied = self.inventory.adjust(adjustments).await.map_err(api)?;
        let mut seen = BTreeSet::new();
        let mut levels = Vec::new();
        for a in applied.iter().rev() {
            if seen.insert((a.sku.clone(), a.location.clone())) {
                levels.push(cv::level(&a.sku, &a.location, &a.level));
            }
        }
        levels.reverse();
        Ok(Response::new(pb::AdjustStockResponse {
            movements: applied
                .iter()
                .zip(keys.iter().zip(kinds))
                .map(|(a, (key, kind))| cv::applied(a, key, kind))
                .collect(),
            levels,
        }))
    }

    async fn set_safety_stock(
        &self,
        request: Request<pb::SetSafetyStockRequest>,
    ) -> Result<Response<pb::SetSafetyStockResponse>, Status> {
        authorize(caller(&request).as_ref(), "SetSafetyStock", Rule::Admin)?;
        let r = request.into_inner();
        let sku = cv::sku(&r.sku, "sku").map_err(api)?;
        let location = cv::location_id(&r.location_id, "location_id").map_err(api)?;
        let level = self
            .inventory
            .set_safety_stock(&sku, &location, r.safety_stock)
            .await
            .map_err(api)?;
        Ok(Response::new(pb::SetSafetyStockResponse {
            level: Some(cv::level(&sku, &location, &level)),
        }))
    }

    async fn list_movements(
        &self,
        request: Request<pb::ListMovementsRequest>,
    ) -> Result<Response<pb::ListMovementsResponse>, Status> {
        let principal = caller(&request);
        let r = request.into_inner();
        authorize(
            principal.as_ref(),
            "ListMovements",
            Rule::AtLocations {
                locations: vec![r.location_id.as_str()],
            },
        )?;
        let sku = (!r.sku.is_empty())
            .then(|| cv::sku(&r.sku, "sku"))
            .transpose()
            .map_err(api)?;
        let location = (!r.location_id.is_empty())
            .then(|| cv::location_id(&r.location_id, "location_id"))
            .transpose()
            .map_err(api)?;
        let limit = page_size(r.page_size);
        let rows = self
            .inventory
            .store()
            .movements(&MovementFilter {
                sku,
                location,
                after: page_after(&r.page_token).map(str::to_owned),
                limit,
            })
            .await
            .map_err(|e| api(crate::service::InventoryError::from(e)))?;
        let next_page_token = if rows.len() as u64 == limit {
            rows.last().map(|m| m.id.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListMovementsResponse {
            movements: rows
                .into_iter()
                .map(|m| pb::Movement {
                    kind: cv::movement_kind_to_proto(&m.kind) as i32,
                    counted_quantity: (m.kind == "COUNT").then_some(m.on_hand_after),
                    reservation_id: if m.kind == "COMMIT" {
                        m.reference.clone()
                    } else {
                        String::new()
                    },
                    id: m.id,
                    sku: m.sku,
                    location_id: m.location,
                    delta: m.delta,
                    on_hand_after: m.on_hand_after,
                    idempotency_key: m.idempotency_key,
                    reason: String::new(),
                    reference: m.reference,
                    created_at: Some(m.created_at.into()),
                })
                .collect(),
            next_page_token,
        }))
    }

    async fn get_availability(
        &self,
        request: Request<pb::GetAvailabilityRequest>,
    ) -> Result<Response<pb::GetAvailabilityResponse>, Status> {
        let principal = caller(&request);
        let r = request.into_inner();
        authorize(
            principal.as_ref(),
            "GetAvailability",
            Rule::Availability {
                channel: r.channel_id.as_deref(),
            },
        )?;
        let query = availability_query(&r.skus, &r.location_ids, r.channel_id.as_deref())?;
        let layout = r.layout();
        let reply = self.inventory.availability(&query).await.map_err(api)?;
        let (level_grid, capacities) = cv::availability_answer(reply).map_err(Status::internal)?;
        Ok(Response::new(match layout {
            pb::AvailabilityLayout::Grid => pb::GetAvailabilityResponse {
                capacity_rows: Some(capacities),
                packed_grid: Some(level_grid.into()),
                ..Default::default()
            },
            pb::AvailabilityLayout::Rows | pb::AvailabilityLayout::Unspecified => {
                pb::GetAvailabilityResponse {
                    capacity_rows: Some(capacities),
                    level_grid,
                    ..Default::default()
                }
            }
        }))
    }

    type WatchAvailabilityStream = WatchStream;

    async fn watch_availability(
        &self,
        request: Request<pb::WatchAvailabilityRequest>,
    ) -> Result<Response<Self::WatchAvailabilityStream>, Status> {
        let principal = caller(&request);
        let r = request.into_inner();
        authorize(
            principal.as_ref(),
            "WatchAvailability",
            Rule::Availability {
                channel: r.channel_id.as_deref(),
            },
        )?;
        if r.skus.len() > 100 {
            return Err(api(cv::invalid("skus", "must name at most 100 SKUs")));
        }
        let query = availability_query(&r.skus, &r.location_ids, r.channel_id.as_deref())?;
        // Subscribe before the snapshot so no change falls between the two.
        let feed = self
            .inventory
            .gate()
            .subscribe()
            .await
            .map_err(|e| api(crate::service::InventoryError::from(e)))?;
        let locations = self
            .inventory
            .resolve_locations(&query.locations, query.channel.as_ref())
            .await
            .map_err(api)?;
        let inventory = self.inventory.clone();
        let skus: BTreeSet<Sku> = query.skus.iter().cloned().collect();
        let watched: BTreeSet<LocationId> = locations.iter().map(|l| l.id.clone()).collect();
        let first = snapshot(&inventory, &query.skus, &locations).await?;
        let changes = feed.filter_map(move |event| {
            let inventory = inventory.clone();
            let skus_list: Vec<Sku> = skus.iter().cloned().collect();
            let locations = locations.clone();
            let interesting = match &event {
                FeedEvent::Change(c) => skus.contains(&c.sku) && watched.contains(&c.location),
                FeedEvent::Gap => true,
            };
            async move {
                if !interesting {
                    return None;
                }
                Some(match event {
                    FeedEvent::Change(c) => Ok(pb::WatchAvailabilityResponse {
                        kind: pb::AvailabilityUpdateKind::Change as i32,
                        levels: vec![cv::level(&c.sku, &c.location, &c.level)],
                        capacities: Vec::new(),
                        observed_at: Some(chrono::Utc::now().into()),
                    }),
                    FeedEvent::Gap => snapshot(&inventory, &skus_list, &locations).await,
                })
            }
        });
        let stream = futures::stream::once(async move { Ok(first) }).chain(changes);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn reserve(
        &self,
        request: Request<pb::ReserveRequest>,
    ) -> Result<Response<pb::ReserveResponse>, Status> {
        let principal = caller(&request);
        let r = request.into_inner();
        let count_capacity = r.count_capacity;
        let parsed = cv::reserve_request(r).map_err(api)?;
        authorize(
            principal.as_ref(),
            "Reserve",
            Rule::Reservation {
                id: &parsed.id,
                hold_owner_may: true,
            },
        )?;
        let reply = self
            .inventory
            .reserve(ReserveCommand {
                request: parsed,
                count_capacity,
            })
            .await;
        crate::metrics::reserve_answered(&reply);
        let reply = reply.map_err(api)?;
        let mut reservation = cv::reservation(&reply.reservation);
        reservation.count_capacity = count_capacity;
        Ok(Response::new(pb::ReserveResponse {
            reservation: Some(reservation),
        }))
    }

    async fn confirm_reservation(
        &self,
        request: Request<pb::ConfirmReservationRequest>,
    ) -> Result<Response<pb::ConfirmReservationResponse>, Status> {
        authorize(
            caller(&request).as_ref(),
            "ConfirmReservation",
            Rule::OrdersOnly,
        )?;
        let id =
            cv::reservation_id(&request.get_ref().reservation_id, "reservation_id").map_err(api)?;
        let reservation = self.inventory.confirm(&id).await.map_err(api)?;
        Ok(Response::new(pb::ConfirmReservationResponse {
            reservation: Some(cv::reservation(&reservation)),
        }))
    }

    async fn commit(
        &self,
        request: Request<pb::CommitRequest>,
    ) -> Result<Response<pb::CommitResponse>, Status> {
        authorize(caller(&request).as_ref(), "Commit", Rule::OrdersOnly)?;
        let r = request.into_inner();
        let id = cv::reservation_id(&r.reservation_id, "reservation_id").map_err(api)?;
        let lines = cv::selection(r.lines).map_err(api)?;
        let settled = self.inventory.commit(&id, lines).await.map_err(api)?;
        Ok(Response::new(pb::CommitResponse {
            reservation: Some(cv::reservation(&settled.reservation)),
        }))
    }

    async fn release(
        &self,
        request: Request<pb::ReleaseRequest>,
    ) -> Result<Response<pb::ReleaseResponse>, Status> {
        let principal = caller(&request);
        let r = request.into_inner();
        let id = cv::reservation_id(&r.reservation_id, "reservation_id").map_err(api)?;
        authorize(
            principal.as_ref(),
            "Release",
            Rule::Reservation {
                id: &id,
                hold_owner_may: true,
            },
        )?;
        let lines = cv::selection(r.lines).map_err(api)?;
        let settled = self.inventory.release(&id, lines).await.map_err(api)?;
        Ok(Response::new(pb::ReleaseResponse {
            reservation: Some(cv::reservation(&settled.reservation)),
        }))
    }

    async fn extend_hold(
        &self,
        request: Request<pb::ExtendHoldRequest>,
    ) -> Result<Response<pb::ExtendHoldResponse>, Status> {
        let principal = caller(&request);
        let r = request.into_inner();
        let id = cv::reservation_id(&r.reservation_id, "reservation_id").map_err(api)?;
        authorize(
            principal.as_ref(),
            "ExtendHold",
            Rule::Reservation {
                id: &id,
                hold_owner_may: true,
            },
        )?;
        let ttl = cv::ttl(r.ttl.as_ref(), "ttl")
            .map_err(api)?
            .ok_or_else(|| api(cv::invalid("ttl", "is required")))?;
        if ttl < crate::domain::MIN_HOLD_TTL || ttl > crate::domain::MAX_HOLD_TTL {
            return Err(api(cv::invalid(
                "ttl",
                "must be between 1 second and 24 hours",
            )));
        }
        let reservation = self.inventory.extend(&id, ttl).await.map_err(api)?;
        Ok(Response::new(pb::ExtendHoldResponse {
            reservation: Some(cv::reservation(&reservation)),
        }))
    }

    async fn convert_hold(
        &self,
        request: Request<pb::ConvertHoldRequest>,
    ) -> Result<Response<pb::ConvertHoldResponse>, Status> {
        let principal = caller(&request);
        let r = request.into_inner();
        let hold_id = cv::reservation_id(&r.hold_id, "hold_id").map_err(api)?;
        let order_id = cv::reservation_id(&r.reservation_id, "reservation_id").map_err(api)?;
        if !hold_id.is_checkout_hold() {
            return Err(api(cv::invalid(
                "hold_id",
                "must be a hold:<channel>:<cart> id",
            )));
        }
        if order_id.is_checkout_hold() {
            return Err(api(cv::invalid(
                "reservation_id",
                "must be an order:<uuid> id",
            )));
        }
        if !r.lines.is_empty() {
            return Err(api(cv::invalid(
                "lines",
                "converting part of a hold is not supported: leave lines empty to move the whole hold",
            )));
        }
        authorize(
            principal.as_ref(),
            "ConvertHold",
            Rule::Reservation {
                id: &hold_id,
                hold_owner_may: true,
            },
        )?;
        let ttl = cv::ttl(r.ttl.as_ref(), "ttl").map_err(api)?;
        let reservation = self
            .inventory
            .convert_hold(hold_id.clone(), order_id, ttl)
            .await
            .map_err(api)?;
        let hold = self.inventory.reservation(&hold_id).await.ok();
        Ok(Response::new(pb::ConvertHoldResponse {
            reservation: Some(cv::reservation(&reservation)),
            hold: hold.as_ref().map(cv::reservation),
        }))
    }

    async fn get_reservation(
        &self,
        request: Request<pb::GetReservationRequest>,
    ) -> Result<Response<pb::GetReservationResponse>, Status> {
        let id =
            cv::reservation_id(&request.get_ref().reservation_id, "reservation_id").map_err(api)?;
        authorize(
            caller(&request).as_ref(),
            "GetReservation",
            Rule::Reservation {
                id: &id,
                hold_owner_may: true,
            },
        )?;
        let reservation = self.inventory.reservation(&id).await.map_err(api)?;
        Ok(Response::new(pb::GetReservationResponse {
            reservation: Some(cv::reservation(&reservation)),
        }))
    }

    async fn check_invariants(
        &self,
        request: Request<pb::CheckInvariantsRequest>,
    ) -> Result<Response<pb::CheckInvariantsResponse>, Status> {
        authorize(caller(&request).as_ref(), "CheckInvariants", Rule::Admin)?;
        let repair = request.get_ref().repair;
        let report = self.inventory.check_invariants(repair).await.map_err(api)?;
        Ok(Response::new(pb::CheckInvariantsResponse {
            findings: report
                .drifts
                .into_iter()
                .map(|d| pb::DriftFinding {
                    sku: d.sku,
                    location_id: d.location,
                    field: match d.field {
                        "on_hand" => pb::DriftField::OnHand,
                        "reserved" => pb::DriftField::Reserved,
                        _ => pb::DriftField::SafetyStock,
                    } as i32,
                    redis_value: d.found,
                    expected_value: d.expected,
                    reservation_id: String::new(),
                    repaired: d.repaired,
                })
                .collect(),
            pairs_checked: i64::try_from(report.pairs_checked).unwrap_or(i64::MAX),
            checked_at: Some(chrono::Utc::now().into()),
        }))
    }
}

fn availability_query(
    skus: &[String],
    locations: &[String],
    channel: Option<&str>,
) -> Result<AvailabilityQuery, Status> {
    let skus = skus
        .iter()
        .enumerate()
        .map(|(i, s)| cv::sku(s, &format!("skus[{i}]")))
        .collect::<Result<Vec<_>, _>>()
        .map_err(api)?;
    let locations = locations
        .iter()
        .enumerate()
        .map(|(i, l)| cv::location_id(l, &format!("location_ids[{i}]")))
        .collect::<Result<Vec<_>, _>>()
        .map_err(api)?;
    let channel = channel
        .map(|c| cv::channel_id(c, "channel_id"))
        .transpose()
        .map_err(api)?;
    Ok(AvailabilityQuery {
        skus,
        locations,
        channel,
    })
}

async fn snapshot(
    inventory: &Inventory,
    skus: &[Sku],
    locations: &[std::sync::Arc<crate::domain::Location>],
) -> Result<pb::WatchAvailabilityResponse, Status> {
    let reply = inventory
        .levels_at(skus, locations.to_vec())
        .await
        .map_err(api)?;
    Ok(pb::WatchAvailabilityResponse {
        kind: pb::AvailabilityUpdateKind::Snapshot as i32,
        levels: reply
            .rows()
            .map(|(s, l, level)| cv::level(s, l, level))
            .collect(),
        capacities: reply.capacities.iter().map(cv::capacity).collect(),
        observed_at: Some(chrono::Utc::now().into()),
    })
}
