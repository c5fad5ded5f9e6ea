//! `omni.orders.v1.OrderService`.

use omni_proto::orders::v1 as pb;
use omni_proto::orders::v1::order_service_server::OrderService;
use omni_types::{ChannelId, Money};
use tonic::{Request, Response, Status};

use super::auth_rules::{Method, authorize};
use super::convert;
use super::error::status;
use crate::events::outgoing::money;
use crate::service::{ListQuery, Orders, ServiceError};
use crate::store::orders::OrderFilter;

#[derive(Clone)]
pub struct OrderApi {
    orders: Orders,
}

impl OrderApi {
    pub fn new(orders: Orders) -> Self {
        Self { orders }
    }
}

fn channel(id: &str, field: &str) -> Result<ChannelId, Status> {
    ChannelId::parse(id).map_err(|e| status(ServiceError::invalid(field, e.to_string())))
}

#[tonic::async_trait]
impl OrderService for OrderApi {
    async fn place_order(
        &self,
        request: Request<pb::PlaceOrderRequest>,
    ) -> Result<Response<pb::PlaceOrderResponse>, Status> {
        let draft = request.get_ref().order.clone().unwrap_or_default();
        authorize(&request, Method::PlaceOrder, Some(&draft.channel_id))?;
        let key = request.into_inner().idempotency_key;
        let record = self
            .orders
            .place(&key, convert::draft_input(draft))
            .await
            .map_err(|e| status(convert::draft_error(e)))?;
        Ok(Response::new(pb::PlaceOrderResponse {
            order: Some(convert::order(&record)),
        }))
    }

    async fn plan_order(
        &self,
        request: Request<pb::PlanOrderRequest>,
    ) -> Result<Response<pb::PlanOrderResponse>, Status> {
        let draft = request.get_ref().order.clone().unwrap_or_default();
        authorize(&request, Method::PlanOrder, Some(&draft.channel_id))?;
        let answer = self
            .orders
            .plan(convert::draft_input(draft))
            .await
            .map_err(|e| status(convert::draft_error(e)))?;
        if let Err(crate::domain::planner::PlanError::UnknownPickupStore { store }) =
            &answer.outcome
        {
            return Err(status(ServiceError::NotFound {
                resource: "pickup store",
                id: store.to_string(),
            }));
        }
        Ok(Response::new(pb::PlanOrderResponse {
            plan: Some(convert::plan(&answer.outcome, answer.profile_version)),
        }))
    }

    async fn get_order(
        &self,
        request: Request<pb::GetOrderRequest>,
    ) -> Result<Response<pb::GetOrderResponse>, Status> {
        let id =
            convert::parse_order_id(&request.get_ref().order_id, "order_id").map_err(status)?;
        let record = self.orders.get(id).await.map_err(status)?;
        authorize(&request, Method::GetOrder, Some(record.channel.as_str()))?;
        Ok(Response::new(pb::GetOrderResponse {
            order: Some(convert::order(&record)),
        }))
    }

    async fn list_orders(
        &self,
        request: Request<pb::ListOrdersRequest>,
    ) -> Result<Response<pb::ListOrdersResponse>, Status> {
        let r = request.get_ref();
        let owner = (!r.channel_id.is_empty()).then(|| r.channel_id.clone());
        authorize(&request, Method::ListOrders, owner.as_deref())?;
        let r = request.into_inner();
        let mut statuses = Vec::new();
        for (i, s) in r.statuses.iter().enumerate() {
            statuses.push(convert::status_name(*s).ok_or_else(|| {
                status(ServiceError::invalid(
                    format!("statuses[{i}]"),
                    "unknown status",
                ))
            })?);
        }
        let query = ListQuery {
            filter: OrderFilter {
                channel: owner,
                member: (!r.member_id.is_empty()).then_some(r.member_id),
                statuses,
                ..OrderFilter::default()
            },
            page_size: r.page_size,
            page_token: r.page_token,
        };
        let (orders, next) = self.orders.list(&query, true).await.map_err(status)?;
        Ok(Response::new(pb::ListOrdersResponse {
            orders: orders.iter().map(convert::order).collect(),
            next_page_token: next,
        }))
    }

    async fn cancel_order(
        &self,
        request: Request<pb::CancelOrderRequest>,
    ) -> Result<Response<pb::CancelOrderResponse>, Status> {
        let id =
            convert::parse_order_id(&request.get_ref().order_id, "order_id").map_err(status)?;
        let existing = self.orders.get(id).await.map_err(status)?;
        authorize(
            &request,
            Method::CancelOrder,
            Some(existing.channel.as_str()),
        )?;
        let r = request.into_inner();
        let (record, refund) = self
            .orders
            .cancel(
                id,
                convert::line_quantities(r.lines),
                r.reason,
                &r.idempotency_key,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::CancelOrderResponse {
            refund: Some(money(Money::new(refund.minor_units, record.state.currency))),
            points_to_refund: i64::try_from(refund.points).unwrap_or(i64::MAX),
            order: Some(convert::order(&record)),
        }))
    }

    async fn explain_routing(
        &self,
        request: Request<pb::ExplainRoutingRequest>,
    ) -> Result<Response<pb::ExplainRoutingResponse>, Status> {
        let id =
            convert::parse_order_id(&request.get_ref().order_id, "order_id").map_err(status)?;
        let existing = self.orders.get(id).await.map_err(status)?;
        authorize(
            &request,
            Method::ExplainRouting,
            Some(existing.channel.as_str()),
        )?;
        let records = self.orders.explain(id).await.map_err(status)?;
        Ok(Response::new(pb::ExplainRoutingResponse {
            records: records.iter().map(convert::routing_record).collect(),
        }))
    }

    async fn get_routing_profile(
        &self,
        request: Request<pb::GetRoutingProfileRequest>,
    ) -> Result<Response<pb::GetRoutingProfileResponse>, Status> {
        authorize(&request, Method::GetRoutingProfile, None)?;
        let r = request.into_inner();
        let channel = channel(&r.channel_id, "channel_id")?;
        let version = u32::try_from(r.version)
            .map_err(|_| status(ServiceError::invalid("version", "too large")))?;
        let view = self
            .orders
            .profile(&channel, version)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::GetRoutingProfileResponse {
            profile: Some(convert::profile(&view)),
        }))
    }

    async fn update_routing_profile(
        &self,
        request: Request<pb::UpdateRoutingProfileRequest>,
    ) -> Result<Response<pb::UpdateRoutingProfileResponse>, Status> {
        authorize(&request, Method::UpdateRoutingProfile, None)?;
        let r = request.into_inner();
        let spec =
            convert::profile_spec(r.profile.unwrap_or_default(), "profile").map_err(status)?;
        let expected = u32::try_from(r.expected_version)
            .map_err(|_| status(ServiceError::invalid("expected_version", "too large")))?;
        let view = self
            .orders
            .update_profile(spec, expected)
            .await
            .map_err(|e| match e {
                ServiceError::Refused {
                    reason: "VERSION_MISMATCH",
                    message,
                    metadata,
                } => omni_platform::grpc::ApiError::Aborted {
                    reason: "VERSION_MISMATCH",
                    message,
                    metadata,
                }
                .into(),
                other => status(other),
            })?;
        Ok(Response::new(pb::UpdateRoutingProfileResponse {
            profile: Some(convert::profile(&view)),
        }))
    }

    async fn simulate_policy(
        &self,
        request: Request<pb::SimulatePolicyRequest>,
    ) -> Result<Response<pb::SimulatePolicyResponse>, Status> {
        authorize(&request, Method::SimulatePolicy, None)?;
        let r = request.into_inner();
        let channel_id = channel(&r.channel_id, "channel_id")?;
        let spec =
            convert::profile_spec(r.candidate.unwrap_or_default(), "candidate").map_err(status)?;
        if spec.channel != channel_id {
            return Err(status(ServiceError::invalid(
                "candidate.channel_id",
                "must match channel_id",
            )));
        }
        let report = self
            .orders
            .simulate(spec, r.last_n_orders)
            .await
            .map_err(status)?;
        let metrics = |o: &crate::domain::simulate::ProfileOutcome| pb::PolicyMetrics {
            profile_version: u64::from(o.profile_version),
            orders_replayed: u32::try_from(o.orders).unwrap_or(u32::MAX),
            shipments_per_order: o.mean_shipments_per_order,
            mean_distance_km: o.mean_distance_km,
            ship_from_store_share: o.ship_from_store_share,
            unroutable_orders: u32::try_from(o.unroutable).unwrap_or(u32::MAX),
        };
        Ok(Response::new(pb::SimulatePolicyResponse {
            live: Some(metrics(&report.live)),
            candidate: Some(metrics(&report.candidate)),
            orders_changed: u32::try_from(report.changed_orders).unwrap_or(u32::MAX),
        }))
    }
}
