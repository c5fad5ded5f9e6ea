//! `omni.orders.v1.StoreService`.

use omni_platform::grpc::ApiError;
use omni_proto::orders::v1 as pb;
use omni_proto::orders::v1::store_service_server::StoreService;
use omni_types::Money;
use tonic::{Request, Response, Status};

use super::auth_rules::{Method, authorize};
use super::convert;
use super::error::status;
use crate::events::outgoing::money;
use crate::service::{ConfirmOutcome, ListQuery, Orders, RejectOutcome, ServiceError};
use crate::store::orders::OrderFilter;

#[derive(Clone)]
pub struct StoreApi {
    orders: Orders,
}

impl StoreApi {
    pub fn new(orders: Orders) -> Self {
        Self { orders }
    }
}

#[tonic::async_trait]
impl StoreService for StoreApi {
    async fn list_pickups(
        &self,
        request: Request<pb::ListPickupsRequest>,
    ) -> Result<Response<pb::ListPickupsResponse>, Status> {
        authorize(
            &request,
            Method::ListPickups,
            Some(&request.get_ref().store_id),
        )?;
        let r = request.into_inner();
        let whole_open_queue = r.statuses.is_empty() && r.page_token.is_empty();
        let store = convert::parse_store(r.store_id).map_err(status)?;
        let mut statuses = Vec::new();
        for (i, s) in r.statuses.iter().enumerate() {
            statuses.push(convert::pickup_status_name(*s).ok_or_else(|| {
                status(ServiceError::invalid(
                    format!("statuses[{i}]"),
                    "unknown status",
                ))
            })?);
        }
        if statuses.is_empty() {
            statuses = ["TO_PREPARE", "AWAITING_TRANSFER", "READY"]
                .map(String::from)
                .to_vec();
        }
        let query = ListQuery {
            filter: OrderFilter {
                pickup_store: Some(store.to_string()),
                pickup_statuses: statuses,
                ..OrderFilter::default()
            },
            page_size: r.page_size,
            page_token: r.page_token,
        };
        let (orders, next) = self.orders.list(&query, false).await.map_err(status)?;
        if whole_open_queue && next.is_empty() {
            crate::metrics::pickup_queue(store.as_ref(), orders.len());
        }
        Ok(Response::new(pb::ListPickupsResponse {
            pickups: orders
                .iter()
                .map(|o| pb::Pickup {
                    status: o
                        .pickup_status()
                        .map_or(pb::PickupStatus::Unspecified, convert::pickup_status)
                        as i32,
                    order: Some(convert::order(o)),
                })
                .collect(),
            next_page_token: next,
        }))
    }

    async fn mark_ready(
        &self,
        request: Request<pb::MarkReadyRequest>,
    ) -> Result<Response<pb::MarkReadyResponse>, Status> {
        authorize(
            &request,
            Method::MarkReady,
            Some(&request.get_ref().store_id),
        )?;
        let r = request.into_inner();
        let store = convert::parse_store(r.store_id).map_err(status)?;
        let id = convert::parse_order_id(&r.order_id, "order_id").map_err(status)?;
        let (record, code, expires_at) =
            self.orders.mark_ready(&store, id).await.map_err(status)?;
        Ok(Response::new(pb::MarkReadyResponse {
            order: Some(convert::order(&record)),
            pickup_code: code,
            expires_at: convert::ts(expires_at),
        }))
    }

    async fn confirm_pickup(
        &self,
        request: Request<pb::ConfirmPickupRequest>,
    ) -> Result<Response<pb::ConfirmPickupResponse>, Status> {
        authorize(
            &request,
            Method::ConfirmPickup,
            Some(&request.get_ref().store_id),
        )?;
        let r = request.into_inner();
        let store = convert::parse_store(r.store_id).map_err(status)?;
        let id = convert::parse_order_id(&r.order_id, "order_id").map_err(status)?;
        let (record, outcome) = self
            .orders
            .confirm_pickup(
                &store,
                id,
                r.pickup_code,
                convert::line_quantities(r.lines_taken),
                &r.idempotency_key,
            )
            .await
            .map_err(status)?;
        let refund = match outcome {
            ConfirmOutcome::PickedUp(refund) => refund,
            ConfirmOutcome::WrongCode { attempts_left } => {
                return Err(ApiError::FailedPrecondition {
                    reason: "PICKUP_CODE_MISMATCH",
                    message: format!("wrong pickup code; {attempts_left} attempts left"),
                    metadata: vec![("attempts_left".into(), attempts_left.to_string())],
                }
                .into());
            }
            ConfirmOutcome::Locked { until } => {
                return Err(ApiError::FailedPrecondition {
                    reason: "PICKUP_LOCKED",
                    message: format!("too many wrong pickup codes; locked until {until}"),
                    metadata: vec![("locked_until".into(), until.to_rfc3339())],
                }
                .into());
            }
        };
        Ok(Response::new(pb::ConfirmPickupResponse {
            refund: Some(money(Money::new(refund.minor_units, record.state.currency))),
            points_to_refund: i64::try_from(refund.points).unwrap_or(i64::MAX),
            order: Some(convert::order(&record)),
        }))
    }

    async fn reject_line(
        &self,
        request: Request<pb::RejectLineRequest>,
    ) -> Result<Response<pb::RejectLineResponse>, Status> {
        authorize(
            &request,
            Method::RejectLine,
            Some(&request.get_ref().store_id),
        )?;
        let r = request.into_inner();
        let store = convert::parse_store(r.store_id).map_err(status)?;
        let id = convert::parse_order_id(&r.order_id, "order_id").map_err(status)?;
        let reroute =
            match pb::RejectAction::try_from(r.action).unwrap_or(pb::RejectAction::Unspecified) {
                pb::RejectAction::Reroute => true,
                pb::RejectAction::Cancel => false,
                pb::RejectAction::Unspecified => {
                    return Err(status(ServiceError::invalid(
                        "action",
                        "must be REROUTE or CANCEL",
                    )));
                }
            };
        let (record, outcome) = self
            .orders
            .reject_line(
                &store,
                id,
                r.line_id,
                i64::from(r.quantity),
                r.reason,
                &r.idempotency_key,
                reroute,
            )
            .await
            .map_err(status)?;
        let (outcome, refund) = match outcome {
            RejectOutcome::Rerouted => (
                pb::RejectOutcome::Rerouted,
                crate::service::Refund {
                    minor_units: 0,
                    points: 0,
                },
            ),
            RejectOutcome::Cancelled(refund) => (pb::RejectOutcome::Cancelled, refund),
        };
        Ok(Response::new(pb::RejectLineResponse {
            outcome: outcome as i32,
            refund: Some(money(Money::new(refund.minor_units, record.state.currency))),
            points_to_refund: i64::try_from(refund.points).unwrap_or(i64::MAX),
            order: Some(convert::order(&record)),
        }))
    }

    async fn accept_return(
        &self,
        request: Request<pb::AcceptReturnRequest>,
    ) -> Result<Response<pb::AcceptReturnResponse>, Status> {
        authorize(
            &request,
            Method::AcceptReturn,
            Some(&request.get_ref().store_id),
        )?;
        let r = request.into_inner();
        let store = convert::parse_store(r.store_id).map_err(status)?;
        let id = convert::parse_order_id(&r.order_id, "order_id").map_err(status)?;
        let (record, refund) = self
            .orders
            .accept_return(
                &store,
                id,
                convert::line_quantities(r.lines),
                r.reason,
                &r.idempotency_key,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::AcceptReturnResponse {
            refund: Some(money(Money::new(refund.minor_units, record.state.currency))),
            order: Some(convert::order(&record)),
        }))
    }
}
