//! The bus survives a broker restart: every connection is cut (through a proxy this test owns,
//! so the shared broker and parallel tests are untouched), publishing fails fast meanwhile, and
//! the supervisor reconnects, re-declares, and resumes the consumer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use omni_platform::events::rabbitmq::{RabbitMqBus, Topology};
use omni_platform::events::{EventBus, Subscription};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::support::{ACK, Recorder, event, eventually};

/// Forwards TCP to the broker; `cut` drops every open connection, as a broker restart would.
struct CuttableProxy {
    port: u16,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl CuttableProxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = {
            let links = links.clone();
            tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    let upstream = upstream.clone();
                    let link = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(&upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    links.lock().unwrap().push(link);
                }
            })
        };
        Self {
            port,
            links,
            accept,
        }
    }

    fn cut(&self) {
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// The broker address of the test AMQP URL, and the same URL pointed at `port` on loopback.
fn via_proxy(port: u16) -> (String, String) {
    let url = url::Url::parse(&omni_platform::testkit::amqp_url()).unwrap();
    let upstream = format!(
        "{}:{}",
        url.host_str().unwrap_or("127.0.0.1"),
        url.port().unwrap_or(5672)
    );
    let mut proxied = url.clone();
    proxied.set_host(Some("127.0.0.1")).unwrap();
    proxied.set_port(Some(port)).unwrap();
    (upstream, proxied.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bus_reconnects_after_the_broker_drops_every_connection() {
    let (upstream, _) = via_proxy(0);
    let proxy = CuttableProxy::start(upstream).await;
    let (_, proxied_url) = via_proxy(proxy.port);
    let topology = Topology::unique("omni-test");
    let bus = RabbitMqBus::connect(&proxied_url, topology, "orders")
        .await
        .expect("RabbitMQ must be running (scripts/infra.sh)");
    let queue = omni_platform::testkit::unique_name("test.reconnect");
    let recorder = Recorder::new(ACK);
    let _consumer = bus
        .subscribe(
            Subscription::new(queue.clone(), ["order.#"]),
            recorder.clone(),
        )
        .await
        .unwrap();

    let before = event("order.placed", 1);
    bus.publish(std::slice::from_ref(&before)).await.unwrap();
    let id = before.id().to_owned();
    eventually("delivery before the cut", || {
        let seen = recorder.handled_count(&id) == 1;
        async move { seen }
    })
    .await;

    proxy.cut();
    eventually("the bus notices the lost connection", || {
        let down = !bus.is_connected();
        async move { down }
    })
    .await;
    assert!(
        bus.wait_connected(Duration::from_secs(30)).await,
        "the supervisor reconnects"
    );

    // Publishing may still race the re-declaration for a moment: retry until confirmed.
    let after = event("order.placed", 2);
    let give_up = tokio::time::Instant::now() + Duration::from_secs(30);
    while bus.publish(std::slice::from_ref(&after)).await.is_err() {
        assert!(
            tokio::time::Instant::now() < give_up,
            "publish never recovered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let id = after.id().to_owned();
    eventually("the consumer resumes after the reconnect", || {
        let seen = recorder.handled_count(&id) >= 1;
        async move { seen }
    })
    .await;

    bus.delete_topology(&[queue.as_str()]).await.unwrap();
    bus.close();
}
