//! [`MemberPort`] over gRPC: `omni.member.v1.MemberService`.

use std::time::Duration;

use async_trait::async_trait;
use omni_platform::grpc::client::{CallContext, lazy_channel_with_tls};
use omni_platform::tls::ClientTls;
use omni_proto::common::v1 as common;
use omni_proto::member::v1 as pb;
use omni_proto::member::v1::member_service_client::MemberServiceClient;
use omni_types::ChannelId;
use tonic::codegen::InterceptedService;
use tonic::transport::Channel;

use super::retry::{to_port_error, with_retries};
use super::{IdentityRef, MemberPort, PortError};

const PEER: &str = "member";

type Client = MemberServiceClient<InterceptedService<Channel, CallContext>>;

pub struct GrpcMember {
    client: Client,
}

impl GrpcMember {
    pub fn new(
        address: &str,
        context: CallContext,
        deadline: Duration,
        tls: Option<&ClientTls>,
    ) -> Result<Self, String> {
        let channel = lazy_channel_with_tls(address, deadline, tls)?;
        Ok(Self {
            client: MemberServiceClient::with_interceptor(channel, context),
        })
    }
}

fn identity_type(kind: &str) -> common::IdentityType {
    match kind {
        "phone" => common::IdentityType::Phone,
        "email" => common::IdentityType::Email,
        "pos_card" => common::IdentityType::PosCard,
        "marketplace" => common::IdentityType::Marketplace,
        "app" => common::IdentityType::App,
        "mini_program" => common::IdentityType::MiniProgram,
        _ => common::IdentityType::Unspecified,
    }
}

#[async_trait]
impl MemberPort for GrpcMember {
    async fn resolve(&self, identity: &IdentityRef) -> Result<uuid::Uuid, PortError> {
        let request = pb::ResolveMemberRequest {
            identity: Some(common::Identity {
                r#type: identity_type(&identity.kind) as i32,
                value: identity.value.clone(),
            }),
        };
        let member = with_retries(|| {
            let mut c = self.client.clone();
            let r = request.clone();
            async move { c.resolve_member(r).await }
        })
        .await
        .map_err(|s| to_port_error(PEER, format!("member with {}", identity.kind), s))?
        .into_inner()
        .member
        .unwrap_or_default();
        uuid::Uuid::parse_str(&member.id)
            .map_err(|_| PortError::Invalid(format!("member id {:?} is not a UUID", member.id)))
    }

    async fn redeem(
        &self,
        member: uuid::Uuid,
        order: uuid::Uuid,
        points: u64,
        channel: &ChannelId,
        ttl: Duration,
    ) -> Result<(), PortError> {
        let request = pb::RedeemPointsRequest {
            member_id: member.to_string(),
            order_id: order.to_string(),
            points: i64::try_from(points).unwrap_or(i64::MAX),
            ttl: Some(omni_proto::pbjson_types::Duration {
                seconds: i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
                nanos: 0,
            }),
            channel_id: channel.to_string(),
        };
        with_retries(|| {
            let mut c = self.client.clone();
            let r = request.clone();
            async move { c.redeem_points(r).await }
        })
        .await
        .map_err(|s| to_port_error(PEER, format!("member {member}"), s))?;
        Ok(())
    }

    async fn confirm_redemption(&self, order: uuid::Uuid) -> Result<(), PortError> {
        let request = pb::ConfirmRedemptionRequest {
            order_id: order.to_string(),
        };
        with_retries(|| {
            let mut c = self.client.clone();
            let r = request.clone();
            async move { c.confirm_redemption(r).await }
        })
        .await
        .map_err(|s| to_port_error(PEER, format!("redemption of {order}"), s))?;
        Ok(())
    }
}
