//! Journey 4: 500 buyers race for 50 units. Exactly 50 orders exist afterwards, no counter is
//! negative or over-reserved, every refused buyer is told why, and the SKU keeps working.

use std::collections::BTreeMap;
use std::sync::Arc;

use omni_proto::orders::v1::OrderStatus;
use tonic_types::StatusExt;

use crate::support::*;

const BUYERS: usize = 500;
const UNITS: i64 = 50;

/// Why a buyer was refused, as `<code> <reason>`; "sold out" is `INSUFFICIENT_STOCK` whether the
/// planner saw no stock (then `lines[i] = NoStock` names the line) or the reservation lost the
/// race for the last units.
fn refusal(status: &tonic::Status) -> String {
    let info = status.get_details_error_info();
    let reason = info
        .as_ref()
        .map(|i| i.reason.as_str())
        .unwrap_or("<no ErrorInfo>");
    let no_stock = info
        .as_ref()
        .is_some_and(|i| i.metadata.values().any(|v| v == "NoStock"));
    format!(
        "{:?} {reason}{}",
        status.code(),
        if no_stock { " NoStock" } else { "" }
    )
}

const SOLD_OUT: [&str; 2] = [
    "FailedPrecondition INSUFFICIENT_STOCK",
    "FailedPrecondition INSUFFICIENT_STOCK NoStock",
];

pub async fn flash_sale_sells_exactly_the_stock(system: Arc<System>) {
    system.warehouse("wh-flash", (31.1000, 121.3000)).await;
    system.pool("web", &["wh-flash"]).await;
    system.receive("sneaker-limited", "wh-flash", UNITS).await;

    let buyers: Vec<_> = (0..BUYERS)
        .map(|_| {
            let system = system.clone();
            tokio::spawn(async move {
                system
                    .place(draft(
                        "web",
                        None,
                        vec![line("sneaker-limited", 1, 99_900)],
                        ship_to(CUSTOMER),
                    ))
                    .await
            })
        })
        .collect();
    let mut sold = Vec::new();
    let mut refusals: BTreeMap<String, usize> = BTreeMap::new();
    for buyer in buyers {
        match buyer.await.expect("buyer task") {
            Ok(order) => sold.push(order),
            Err(status) => {
                let why = refusal(&status);
                *refusals.entry(why).or_default() += 1;
            }
        }
    }
    assert!(
        refusals.keys().all(|why| SOLD_OUT.contains(&why.as_str())),
        "every refused buyer must be told the stock is gone, never a fault or a timeout; \
         sold {}, refusals: {refusals:?}",
        sold.len()
    );
    assert_eq!(sold.len(), UNITS as usize, "refusals: {refusals:?}");
    assert!(sold.iter().all(|o| status(o) == OrderStatus::Allocated));

    let level = system.level("sneaker-limited", "wh-flash").await;
    assert_eq!(
        (level.on_hand, level.reserved, level.available),
        (UNITS, UNITS, 0),
        "{level:?}"
    );
    assert!(
        system.drift().await.is_empty(),
        "Redis and PostgreSQL agree"
    );

    system.receive("sneaker-limited", "wh-flash", 5).await;
    let level = system.level("sneaker-limited", "wh-flash").await;
    assert_eq!(level.available, 5);
    let after = system
        .place(draft(
            "web",
            None,
            vec![line("sneaker-limited", 2, 99_900)],
            ship_to(CUSTOMER),
        ))
        .await
        .expect("a restocked SKU sells again");
    assert_eq!(status(&after), OrderStatus::Allocated);
    assert_eq!(
        system.level("sneaker-limited", "wh-flash").await.reserved,
        UNITS + 2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flash_sale_500_buyers_50_units() {
    let system = Arc::new(System::start().await);
    flash_sale_sells_exactly_the_stock(system.clone()).await;
    Arc::into_inner(system)
        .expect("every buyer finished")
        .shutdown()
        .await;
}
