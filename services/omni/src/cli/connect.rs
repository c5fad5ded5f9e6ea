//! gRPC clients for the three services, carrying the caller's bearer token.

use std::time::Duration;

use omni_platform::grpc::client::{CallContext, lazy_channel};
use omni_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use omni_proto::member::v1::member_service_client::MemberServiceClient;
use omni_proto::orders::v1::order_service_client::OrderServiceClient;
use omni_proto::orders::v1::store_service_client::StoreServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::error::CliError;

/// Long enough for a PlaceOrder saga on a busy laptop, short enough that a hung server is
/// reported instead of waited on forever.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

pub type Authed = InterceptedService<Channel, CallContext>;

/// Where the services listen and who is calling.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub inventory: String,
    pub orders: String,
    pub member: String,
    pub token: Option<String>,
}

impl Endpoints {
    fn channel(&self, address: &str) -> Result<(Channel, CallContext), CliError> {
        let channel = lazy_channel(address, CALL_TIMEOUT).map_err(CliError::usage)?;
        let context = CallContext::with_token(self.token.as_deref()).map_err(CliError::usage)?;
        Ok((channel, context))
    }

    pub fn inventory(&self) -> Result<InventoryServiceClient<Authed>, CliError> {
        let (channel, context) = self.channel(&self.inventory)?;
        Ok(InventoryServiceClient::with_interceptor(channel, context))
    }

    pub fn orders(&self) -> Result<OrderServiceClient<Authed>, CliError> {
        let (channel, context) = self.channel(&self.orders)?;
        Ok(OrderServiceClient::with_interceptor(channel, context))
    }

    pub fn store(&self) -> Result<StoreServiceClient<Authed>, CliError> {
        let (channel, context) = self.channel(&self.orders)?;
        Ok(StoreServiceClient::with_interceptor(channel, context))
    }

    pub fn member(&self) -> Result<MemberServiceClient<Authed>, CliError> {
        let (channel, context) = self.channel(&self.member)?;
        Ok(MemberServiceClient::with_interceptor(channel, context))
    }
}
