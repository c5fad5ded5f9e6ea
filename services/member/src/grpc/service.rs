//! Handlers: authorize, parse the request into domain values (every violation names its field),
//! call the operation, convert the answer. No handler writes before all three checks passed.

use omni_platform::grpc::{ApiError, FieldViolation};
use omni_platform::paging::{PageScope, PageTokens};
use omni_proto::member::v1 as pb;
use omni_proto::member::v1::member_service_server::MemberService;
use tonic::{Request, Response, Status};

use super::auth_rules::{Method, authorize};
use super::convert;
use super::paging::{ledger_scope, members_scope, refused};
use crate::domain::{Period, PersonalData};
use crate::ops::{
    EnrollRequest, MemberFilter, MemberOps, MemberRef, OpError, PurchaseRequest, ReturnRequest,
};

/// Most identities one member may hold.
const MAX_IDENTITIES: usize = 20;
/// Longest report period.
const MAX_REPORT_DAYS: i64 = 366;

#[derive(Clone)]
pub struct MemberGrpc {
    ops: MemberOps,
    /// False only when the server runs without a token verifier (development).
    auth_enabled: bool,
    /// ListLedger and ListMembers page tokens, dated by the ops' clock so tests can expire them.
    tokens: PageTokens,
}

impl MemberGrpc {
    pub fn new(ops: MemberOps, auth_enabled: bool, tokens: PageTokens) -> Self {
        Self {
            ops,
            auth_enabled,
            tokens,
        }
    }

    /// The cursor in `raw`, if the client sent a token; a refusal names `page_token`.
    fn open_token<C: serde::de::DeserializeOwned>(
        &self,
        scope: &PageScope,
        raw: &str,
    ) -> Result<Option<C>, FieldViolation> {
        if raw.is_empty() {
            return Ok(None);
        }
        self.tokens
            .open(scope, raw, self.ops.now())
            .map(Some)
            .map_err(|e| refused(&e))
    }

    /// The token for the page after `cursor`; empty on the last page.
    fn next_token<C: serde::Serialize>(
        &self,
        scope: &PageScope,
        cursor: Option<C>,
    ) -> Result<String, Status> {
        match cursor {
            None => Ok(String::new()),
            Some(cursor) => self
                .tokens
                .issue(scope, &cursor, self.ops.now())
                .map_err(|e| fail(OpError::Internal(format!("page token: {e}")))),
        }
    }

    fn authorize<T>(
        &self,
        request: &Request<T>,
        method: Method,
        store: Option<&str>,
    ) -> Result<(), Status> {
        authorize(request, self.auth_enabled, method, store)
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn fail(error: OpError) -> Status {
    ApiError::from(error).into()
}

fn text(field: &str, value: &str, max: usize) -> Result<(), OpError> {
    let len = value.chars().count();
    if len == 0 {
        return Err(OpError::invalid(field, "must not be empty"));
    }
    if len > max {
        return Err(OpError::invalid(
            field,
            format!("must be at most {max} characters, got {len}"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(OpError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

#[tonic::async_trait]
impl MemberService for MemberGrpc {
    async fn enroll_member(
        &self,
        request: Request<pb::EnrollMemberRequest>,
    ) -> Reply<pb::EnrollMemberResponse> {
        self.authorize(&request, Method::EnrollMember, None)?;
        let req = request.into_inner();
        let mut violations = Vec::new();
        if let Err(OpError::Invalid(v)) = text("idempotency_key", &req.idempotency_key, 128) {
            violations.extend(v);
        }
        if req.identities.is_empty() || req.identities.len() > MAX_IDENTITIES {
            violations.push(FieldViolation::new(
                "identities",
                format!(
                    "must hold 1 to {MAX_IDENTITIES} identities, got {}",
                    req.identities.len()
                ),
            ));
        }
        let mut identities = Vec::new();
        for (i, raw) in req.identities.iter().enumerate() {
            match convert::identity(&format!("identities[{i}]"), Some(raw)) {
                Ok(id) if identities.contains(&id) => violations.push(FieldViolation::new(
                    format!("identities[{i}]"),
                    "repeats an earlier identity",
                )),
                Ok(id) => identities.push(id),
                Err(v) => violations.push(v),
            }
        }
        let personal = match PersonalData::new(Some(&req.name), None) {
            Ok(p) => p,
            Err(e) => {
                if let OpError::Invalid(v) = OpError::from(e) {
                    violations.extend(v);
                }
                PersonalData::default()
            }
        };
        if let Err(OpError::Invalid(v)) = convert::channel_id("channel_id", &req.channel_id) {
            violations.extend(v);
        }
        if !violations.is_empty() {
            return Err(fail(OpError::Invalid(violations)));
        }
        let member = self
            .ops
            .enroll(EnrollRequest {
                idempotency_key: req.idempotency_key,
                personal,
                identities,
                channel: req.channel_id,
            })
            .await
            .map_err(fail)?;
        Ok(Response::new(pb::EnrollMemberResponse {
            member: Some(convert::member(&member)),
        }))
    }

    async fn get_member(
        &self,
        request: Request<pb::GetMemberRequest>,
    ) -> Reply<pb::GetMemberResponse> {
        self.authorize(&request, Method::GetMember, None)?;
        let id = convert::member_id("member_id", &request.get_ref().member_id).map_err(fail)?;
        let member = self.ops.member(id).await.map_err(fail)?;
        Ok(Response::new(pb::GetMemberResponse {
            member: Some(convert::member(&member)),
        }))
    }

    async fn link_identity(
        &self,
        request: Request<pb::LinkIdentityRequest>,
    ) -> Reply<pb::LinkIdentityResponse> {
        self.authorize(&request, Method::LinkIdentity, None)?;
        let req = request.into_inner();
        let id = convert::member_id("member_id", &req.member_id).map_err(fail)?;
        let identity = convert::identity("identity", req.identity.as_ref())
            .map_err(|v| fail(OpError::Invalid(vec![v])))?;
        let member = self.ops.link_identity(id, identity).await.map_err(fail)?;
        Ok(Response::new(pb::LinkIdentityResponse {
            member: Some(convert::member(&member)),
        }))
    }

    async fn resolve_member(
        &self,
        request: Request<pb::ResolveMemberRequest>,
    ) -> Reply<pb::ResolveMemberResponse> {
        self.authorize(&request, Method::ResolveMember, None)?;
        let identity = convert::identity("identity", request.get_ref().identity.as_ref())
            .map_err(|v| fail(OpError::Invalid(vec![v])))?;
        let member = self.ops.resolve(&identity).await.map_err(fail)?;
        Ok(Response::new(pb::ResolveMemberResponse {
            member: Some(convert::member(&member)),
        }))
    }

    async fn merge_members(
        &self,
        request: Request<pb::MergeMembersRequest>,
    ) -> Reply<pb::MergeMembersResponse> {
        self.authorize(&request, Method::MergeMembers, None)?;
        let req = request.into_inner();
        let survivor = convert::member_id("survivor_id", &req.survivor_id).map_err(fail)?;
        let merged = convert::member_id("merged_id", &req.merged_id).map_err(fail)?;
        text("reason", &req.reason, 500).map_err(fail)?;
        let (member, moved) = self
            .ops
            .merge(survivor, merged, &req.reason)
            .await
            .map_err(fail)?;
        Ok(Response::new(pb::MergeMembersResponse {
            survivor: Some(convert::member(&member)),
            points_moved: moved,
        }))
    }

    async fn get_balance(
        &self,
        request: Request<pb::GetBalanceRequest>,
    ) -> Reply<pb::GetBalanceResponse> {
        self.authorize(&request, Method::GetBalance, None)?;
        let id = convert::member_id("member_id", &request.get_ref().member_id).map_err(fail)?;
        let balance = self.ops.balance(id).await.map_err(fail)?;
        Ok(Response::new(pb::GetBalanceResponse {
            balance: balance.available,
            pending_redemption_points: balance.pending,
            next_expiries: balance
                .next_expiries
                .into_iter()
                .map(|(points, at)| pb::ExpiringPoints {
                    points,
                    expires_at: convert::ts(at),
                })
                .collect(),
        }))
    }

    async fn list_ledger(
        &self,
        request: Request<pb::ListLedgerRequest>,
    ) -> Reply<pb::ListLedgerResponse> {
        self.authorize(&request, Method::ListLedger, None)?;
        let req = request.into_inner();
        let id = convert::member_id("member_id", &req.member_id).map_err(fail)?;
        let size = convert::page_size(req.page_size).map_err(fail)?;
        let scope = ledger_scope(id);
        let before: Option<i64> = self
            .open_token(&scope, &req.page_token)
            .map_err(|v| fail(OpError::Invalid(vec![v])))?;
        let page = self.ops.ledger_page(id, before, size).await.map_err(fail)?;
        Ok(Response::new(pb::ListLedgerResponse {
            entries: page.entries.iter().map(convert::entry).collect(),
            next_page_token: self.next_token(&scope, page.next_before)?,
        }))
    }

    async fn redeem_points(
        &self,
        request: Request<pb::RedeemPointsRequest>,
    ) -> Reply<pb::RedeemPointsResponse> {
        self.authorize(&request, Method::RedeemPoints, None)?;
        let req = request.into_inner();
        let id = convert::member_id("member_id", &req.member_id).map_err(fail)?;
        let order = convert::order_id("order_id", &req.order_id).map_err(fail)?;
        if !(1..=1_000_000_000).contains(&req.points) {
            return Err(fail(OpError::invalid(
                "points",
                format!("must be between 1 and 1000000000, got {}", req.points),
            )));
        }
        let ttl = convert::duration("ttl", req.ttl.as_ref()).map_err(fail)?;
        let channel = if req.channel_id.is_empty() {
            None
        } else {
            Some(
                convert::channel_id("channel_id", &req.channel_id)
                    .map_err(fail)?
                    .to_string(),
            )
        };
        let row = self
            .ops
            .redeem(id, order, req.points, ttl, channel)
            .await
            .map_err(fail)?;
        Ok(Response::new(pb::RedeemPointsResponse {
            redemption: Some(convert::redemption(&row)),
        }))
    }

    async fn confirm_redemption(
        &self,
        request: Request<pb::ConfirmRedemptionRequest>,
    ) -> Reply<pb::ConfirmRedemptionResponse> {
        self.authorize(&request, Method::ConfirmRedemption, None)?;
        let order = convert::order_id("order_id", &request.get_ref().order_id).map_err(fail)?;
        let row = self.ops.confirm(order).await.map_err(fail)?;
        Ok(Response::new(pb::ConfirmRedemptionResponse {
            redemption: Some(convert::redemption(&row)),
        }))
    }

    async fn record_purchase(
        &self,
        request: Request<pb::RecordPurchaseRequest>,
    ) -> Reply<pb::RecordPurchaseResponse> {
        let store = request.get_ref().store_id.clone();
        self.authorize(&request, Method::RecordPurchase, Some(&store))?;
        let req = request.into_inner();
        let member = match &req.member {
            Some(pb::record_purchase_request::Member::MemberId(raw)) => {
                MemberRef::Id(convert::member_id("member_id", raw).map_err(fail)?)
            }
            Some(pb::record_purchase_request::Member::Identity(raw)) => MemberRef::Identity(
                convert::identity("identity", Some(raw))
                    .map_err(|v| fail(OpError::Invalid(vec![v])))?,
            ),
            None => {
                return Err(fail(OpError::invalid(
                    "member",
                    "member_id or identity is required",
                )));
            }
        };
        omni_types::LocationId::parse(store.clone())
            .map_err(|e| fail(OpError::invalid("store_id", e.to_string())))?;
        let channel = convert::channel_id("channel_id", &req.channel_id).map_err(fail)?;
        text("receipt_id", &req.receipt_id, 128).map_err(fail)?;
        let amount = convert::money("amount", req.amount.as_ref()).map_err(fail)?;
        let occurred = convert::time("occurred_at", req.occurred_at.as_ref()).map_err(fail)?;
        let outcome = self
            .ops
            .record_purchase(PurchaseRequest {
                member,
                store: Some(store),
                channel,
                receipt: req.receipt_id,
                amount,
                occurred_at: occurred,
            })
            .await
            .map_err(fail)?;
        Ok(Response::new(pb::RecordPurchaseResponse {
            member: outcome.member.as_ref().map(convert::member),
            points_earned: outcome.points_earned,
            entry: outcome.entry.as_ref().map(convert::entry),
        }))
    }

    async fn record_return(
        &self,
        request: Request<pb::RecordReturnRequest>,
    ) -> Reply<pb::RecordReturnResponse> {
        self.authorize(&request, Method::RecordReturn, None)?;
        let req = request.into_inner();
        let channel = convert::channel_id("channel_id", &req.channel_id).map_err(fail)?;
        text("receipt_id", &req.receipt_id, 128).map_err(fail)?;
        text("return_id", &req.return_id, 128).map_err(fail)?;
        let amount = convert::money("amount", req.amount.as_ref()).map_err(fail)?;
        let occurred = convert::time("occurred_at", req.occurred_at.as_ref()).map_err(fail)?;
        let outcome = self
            .ops
            .record_return(ReturnRequest {
                channel,
                receipt: req.receipt_id,
                return_id: req.return_id,
                amount,
                occurred_at: occurred,
            })
            .await
            .map_err(fail)?;
        Ok(Response::new(pb::RecordReturnResponse {
            points_reversed: outcome.reversed,
            shortfall: outcome.shortfall,
            entry: outcome.entry.as_ref().map(convert::entry),
        }))
    }

    async fn get_member_profile(
        &self,
        request: Request<pb::GetMemberProfileRequest>,
    ) -> Reply<pb::GetMemberProfileResponse> {
        self.authorize(&request, Method::GetMemberProfile, None)?;
        let id = convert::member_id("member_id", &request.get_ref().member_id).map_err(fail)?;
        let profile = self.ops.profile(id).await.map_err(fail)?;
        Ok(Response::new(pb::GetMemberProfileResponse {
            profile: Some(convert::profile(&profile, self.ops.policy().book_currency)),
        }))
    }

    async fn list_members(
        &self,
        request: Request<pb::ListMembersRequest>,
    ) -> Reply<pb::ListMembersResponse> {
        self.authorize(&request, Method::ListMembers, None)?;
        let req = request.into_inner();
        let size = convert::page_size(req.page_size).map_err(fail)?;
        let raw = req.filter.unwrap_or_default();
        let mut violations = Vec::new();
        let mut filter = MemberFilter::default();
        for (i, value) in raw.lifecycles.iter().enumerate() {
            match convert::stage_from(*value) {
                Some(stage) => filter.lifecycles.push(stage),
                None => violations.push(FieldViolation::new(
                    format!("filter.lifecycles[{i}]"),
                    "unknown lifecycle stage",
                )),
            }
        }
        for (i, value) in raw.tiers.iter().enumerate() {
            match convert::tier_from(*value) {
                Some(tier) => filter.tiers.push(tier),
                None => violations.push(FieldViolation::new(
                    format!("filter.tiers[{i}]"),
                    "unknown tier",
                )),
            }
        }
        for (field, value, slot) in [
            (
                "filter.min_recency",
                raw.min_recency,
                &mut filter.min_recency,
            ),
            (
                "filter.min_frequency",
                raw.min_frequency,
                &mut filter.min_frequency,
            ),
            (
                "filter.min_monetary",
                raw.min_monetary,
                &mut filter.min_monetary,
            ),
        ] {
            match u8::try_from(value) {
                Ok(v) if v <= 5 => *slot = v,
                _ => violations.push(FieldViolation::new(
                    field,
                    format!("must be 0 to 5, got {value}"),
                )),
            }
        }
        filter.cross_channel = raw.cross_channel;
        if !raw.channel_id.is_empty() {
            match convert::channel_id("filter.channel_id", &raw.channel_id) {
                Ok(c) => filter.channel = Some(c),
                Err(OpError::Invalid(v)) => violations.extend(v),
                Err(_) => {}
            }
        }
        if !violations.is_empty() {
            return Err(fail(OpError::Invalid(violations)));
        }
        // Only a filter that parsed can be compared with the one the token was issued for.
        let scope = members_scope(&filter);
        let after = self
            .open_token::<uuid::Uuid>(&scope, &req.page_token)
            .map_err(|v| fail(OpError::Invalid(vec![v])))?
            .map(crate::domain::MemberId::from);
        let page = self
            .ops
            .list_members(&filter, after, usize::try_from(size).unwrap_or(50))
            .await
            .map_err(fail)?;
        let currency = self.ops.policy().book_currency;
        Ok(Response::new(pb::ListMembersResponse {
            members: page
                .members
                .iter()
                .map(|(m, p)| pb::ListedMember {
                    member: Some(convert::member(m)),
                    profile: Some(convert::profile(p, currency)),
                })
                .collect(),
            next_page_token: self.next_token(&scope, page.next_after.map(|id| id.as_uuid()))?,
        }))
    }

    async fn get_channel_report(
        &self,
        request: Request<pb::GetChannelReportRequest>,
    ) -> Reply<pb::GetChannelReportResponse> {
        self.authorize(&request, Method::GetChannelReport, None)?;
        let req = request.into_inner();
        let from = convert::time("from", req.from.as_ref())
            .map_err(fail)?
            .ok_or_else(|| fail(OpError::invalid("from", "is required")))?;
        let to = convert::time("to", req.to.as_ref())
            .map_err(fail)?
            .ok_or_else(|| fail(OpError::invalid("to", "is required")))?;
        let period =
            Period::new(from, to).map_err(|e| fail(OpError::invalid("to", e.to_string())))?;
        if to - from > chrono::Duration::days(MAX_REPORT_DAYS) {
            return Err(fail(OpError::invalid(
                "to",
                format!("must be at most {MAX_REPORT_DAYS} days after from"),
            )));
        }
        let report = self.ops.report(period).await.map_err(fail)?;
        let money = |m: &std::collections::BTreeMap<omni_types::Currency, i64>| {
            m.iter()
                .map(|(c, v)| convert::money_to_proto(*v, c.as_str()))
                .collect::<Vec<_>>()
        };
        Ok(Response::new(pb::GetChannelReportResponse {
            channels: report
                .channels
                .iter()
                .map(|(channel, f)| pb::ChannelFigures {
                    channel_id: channel.to_string(),
                    orders: f.orders,
                    gmv: money(&f.gmv),
                    aov: money(&f.aov),
                    members: f.repurchase.denominator,
                    repurchase_rate: f.repurchase.as_f64().unwrap_or(0.0),
                })
                .collect(),
            cross_channel_member_rate: report.cross_channel.as_f64().unwrap_or(0.0),
            repurchase_rate: report.repurchase.as_f64().unwrap_or(0.0),
            active_members: report.cross_channel.denominator,
        }))
    }

    async fn export_member(
        &self,
        request: Request<pb::ExportMemberRequest>,
    ) -> Reply<pb::ExportMemberResponse> {
        self.authorize(&request, Method::ExportMember, None)?;
        let id = convert::member_id("member_id", &request.get_ref().member_id).map_err(fail)?;
        let export = self.ops.export(id).await.map_err(fail)?;
        Ok(Response::new(pb::ExportMemberResponse {
            member: Some(convert::member(&export.member)),
            profile: Some(convert::profile(
                &export.profile,
                self.ops.policy().book_currency,
            )),
            ledger: export.entries.iter().map(convert::entry).collect(),
            redemptions: export.redemptions.iter().map(convert::redemption).collect(),
            purchases: export.purchases.iter().map(convert::purchase).collect(),
            exported_at: convert::ts(export.exported_at),
        }))
    }

    async fn erase_member(
        &self,
        request: Request<pb::EraseMemberRequest>,
    ) -> Reply<pb::EraseMemberResponse> {
        self.authorize(&request, Method::EraseMember, None)?;
        let req = request.into_inner();
        let id = convert::member_id("member_id", &req.member_id).map_err(fail)?;
        text("request_reference", &req.request_reference, 128).map_err(fail)?;
        let member = self
            .ops
            .erase(id, &req.request_reference)
            .await
            .map_err(fail)?;
        let erased_at = match member.member.status {
            crate::domain::MemberStatus::Erased { at } => at,
            _ => member.member.updated_at,
        };
        Ok(Response::new(pb::EraseMemberResponse {
            member: Some(convert::member(&member)),
            erased_at: convert::ts(erased_at),
        }))
    }
}
