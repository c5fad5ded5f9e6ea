//! One running member service per test, and helpers to drive it.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use omni_member::app::{Application, Infra};
use omni_member::config::MemberConfig;
use omni_member::jobs::Jobs;
use omni_platform::auth::TokenIssuer;
use omni_platform::clock::ManualClock;
use omni_platform::config::Env;
use omni_platform::events::in_process::InProcessBus;
use omni_platform::events::rabbitmq::{RabbitMqBus, Topology};
use omni_platform::events::{
    ConsumerHandle, Envelope, EventBus, EventHandler, HandlerError, Subscription,
};
use omni_platform::grpc::client::CallContext;
use omni_platform::testkit::{TestDatabase, amqp_url, unique_name};
use omni_proto::common::v1 as common;
use omni_proto::member::v1 as pb;
use omni_proto::member::v1::member_service_client::MemberServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub type Client = MemberServiceClient<InterceptedService<Channel, CallContext>>;

pub const SECRET: &str = "member-tests-secret-0123456789abcdef";
pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 7, 1, 12, 0, 0).unwrap()
}

pub enum Broker {
    InProcess,
    RabbitMq,
}

pub struct TestApp {
    pub app: Option<Application>,
    pub db: Option<TestDatabase>,
    pub clock: ManualClock,
    pub bus: Arc<dyn EventBus>,
    /// The broker and the queues this test declared on it (deleted by `stop`).
    rabbit: Option<(RabbitMqBus, Vec<String>)>,
    /// Test consumers from [`TestApp::observe`], stopped before their queues are deleted.
    observers: Vec<ConsumerHandle>,
    addr: std::net::SocketAddr,
    auth: bool,
}

impl TestApp {
    pub async fn start(broker: Broker) -> Self {
        Self::start_with(broker, false).await
    }

    pub async fn start_with(broker: Broker, auth: bool) -> Self {
        let db = TestDatabase::postgres().await;
        let clock = ManualClock::new(t0());
        let mut vars = vec![
            ("DATABASE_URL", db.url().to_owned()),
            ("LISTEN_ADDR", "127.0.0.1:0".to_owned()),
            // The background runner stays out of the way; tests call run_once.
            ("JOB_INTERVAL", "24h".to_owned()),
        ];
        if auth {
            vars.push(("JWT_HS256_SECRET", SECRET.to_owned()));
        }
        let config = MemberConfig::from_env(&Env::from_pairs(vars)).unwrap();
        let queue = unique_name("member.orders");
        let (bus, rabbit): (Arc<dyn EventBus>, _) = match broker {
            Broker::InProcess => (Arc::new(InProcessBus::new()), None),
            Broker::RabbitMq => {
                let bus =
                    RabbitMqBus::connect(&amqp_url(), Topology::unique("member-test"), "member")
                        .await
                        .expect("RabbitMQ must be running (scripts/infra.sh)");
                (Arc::new(bus.clone()), Some((bus, vec![queue.clone()])))
            }
        };
        let infra = Infra {
            bus: bus.clone(),
            parked: None,
            clock: Arc::new(clock.clone()),
            orders_queue: queue,
        };
        let app = Application::build(config, infra).await.unwrap();
        let addr = app.grpc_addr();
        Self {
            app: Some(app),
            db: Some(db),
            clock,
            bus,
            rabbit,
            observers: Vec::new(),
            addr,
            auth,
        }
    }

    /// Binds a queue of the test's own to the app's exchange, as another service would, and
    /// collects what arrives: what the outbox relay really published, not what it enqueued.
    pub async fn observe(&mut self, bindings: &[&str]) -> Arc<Collector> {
        let queue = unique_name("member.observer");
        let collector = Arc::new(Collector::default());
        let handle = self
            .bus
            .subscribe(
                Subscription::new(queue.clone(), bindings.iter().copied()),
                collector.clone(),
            )
            .await
            .unwrap();
        self.observers.push(handle);
        if let Some((_, queues)) = self.rabbit.as_mut() {
            queues.push(queue);
        }
        collector
    }

    /// A client; with auth on, its token names `subject` (admin when `None`).
    pub async fn client_as(&self, subject: Option<&str>) -> Client {
        let channel = Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let token = self.auth.then(|| {
            TokenIssuer::hs256(SECRET.as_bytes())
                .mint(subject.unwrap_or("admin"), Duration::from_secs(600))
                .unwrap()
        });
        MemberServiceClient::with_interceptor(
            channel,
            CallContext::with_token(token.as_deref()).unwrap(),
        )
    }

    pub async fn client(&self) -> Client {
        self.client_as(None).await
    }

    pub fn clock_now(&self) -> DateTime<Utc> {
        omni_platform::clock::Clock::now(&self.clock)
    }

    pub fn jobs(&self) -> Jobs {
        Jobs::new(self.app.as_ref().unwrap().ops().clone())
    }

    pub async fn publish(&self, envelope: Envelope) {
        self.bus
            .publish(std::slice::from_ref(&envelope))
            .await
            .unwrap();
    }

    pub async fn stop(mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown().await;
        }
        for observer in self.observers.drain(..) {
            observer.shutdown().await;
        }
        if let Some((bus, queues)) = self.rabbit.take() {
            let queues: Vec<&str> = queues.iter().map(String::as_str).collect();
            bus.delete_topology(&queues).await.unwrap();
            bus.close();
        }
        if let Some(db) = self.db.take() {
            db.drop_database().await;
        }
    }
}

/// Events a test consumer received, in arrival order.
#[derive(Default)]
pub struct Collector(Mutex<Vec<Envelope>>);

#[async_trait::async_trait]
impl EventHandler for Collector {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        self.0.lock().unwrap().push(event.clone());
        Ok(())
    }
}

impl Collector {
    /// The payloads of the `name` events about `subject` received so far.
    pub fn received<T: serde::de::DeserializeOwned>(&self, name: &str, subject: &str) -> Vec<T> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.event_name() == name && e.subject() == subject)
            .map(|e| e.data_as::<T>().unwrap())
            .collect()
    }
}

/// Polls `condition` until it holds, failing the test after [`DEADLINE`].
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let give_up = tokio::time::Instant::now() + DEADLINE;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < give_up,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn phone(value: &str) -> common::Identity {
    common::Identity {
        r#type: common::IdentityType::Phone.into(),
        value: value.to_owned(),
    }
}

pub fn email(value: &str) -> common::Identity {
    common::Identity {
        r#type: common::IdentityType::Email.into(),
        value: value.to_owned(),
    }
}

pub fn cny(minor: i64) -> common::Money {
    common::Money {
        minor_units: minor,
        currency: "CNY".to_owned(),
    }
}

pub fn ts(at: DateTime<Utc>) -> omni_proto::pbjson_types::Timestamp {
    omni_proto::pbjson_types::Timestamp {
        seconds: at.timestamp(),
        nanos: 0,
    }
}

pub async fn enroll(
    client: &mut Client,
    name: &str,
    identities: Vec<common::Identity>,
) -> pb::Member {
    client
        .enroll_member(pb::EnrollMemberRequest {
            idempotency_key: unique_name("enroll"),
            name: name.to_owned(),
            identities,
            channel_id: "web".to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .member
        .unwrap()
}

/// A till purchase at `store-1` that earns floor(amount / 100) points at the base tier.
pub async fn buy(
    client: &mut Client,
    member: &str,
    amount: i64,
    at: Option<DateTime<Utc>>,
) -> pb::RecordPurchaseResponse {
    buy_in(client, member, "pos", amount, at).await
}

pub async fn buy_in(
    client: &mut Client,
    member: &str,
    channel: &str,
    amount: i64,
    at: Option<DateTime<Utc>>,
) -> pb::RecordPurchaseResponse {
    client
        .record_purchase(pb::RecordPurchaseRequest {
            member: Some(pb::record_purchase_request::Member::MemberId(
                member.to_owned(),
            )),
            store_id: "store-1".to_owned(),
            channel_id: channel.to_owned(),
            receipt_id: unique_name("receipt"),
            amount: Some(cny(amount)),
            occurred_at: at.map(ts),
        })
        .await
        .unwrap()
        .into_inner()
}

pub async fn balance(client: &mut Client, member: &str) -> i64 {
    client
        .get_balance(pb::GetBalanceRequest {
            member_id: member.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .balance
}

pub async fn ledger(client: &mut Client, member: &str) -> Vec<pb::LedgerEntry> {
    client
        .list_ledger(pb::ListLedgerRequest {
            member_id: member.to_owned(),
            page_size: 500,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .entries
}

pub fn order_event(key: &str, subject: &str, data: impl serde::Serialize) -> Envelope {
    Envelope::new("orders", key, subject, data).unwrap()
}
