//! What the hardware and the servers can do with no service in the way, measured in the same run
//! at the same concurrency, so each system figure is printed as a ratio of its baseline:
//! - [`RedisScript`]: the gate's own reservation script (`reserve.lua`, prefixed with
//!   `common.lua` exactly as `reservations/redis.rs` builds it), invoked straight on Redis;
//! - [`PgHotReserve`]: a PostgreSQL-only reservation on one hot row, the design the Redis gate
//!   exists to beat;
//! - [`PgOrder`]: the durable work of one order, two transactions in two databases (reservation +
//!   outbox; order + lines + outbox), the floor under PlaceOrder.

use redis::Script;
use redis::aio::MultiplexedConnection;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, TransactionTrait};
use serde_json::json;

use crate::stats::Outcome;

/// The gate's reservation script, built from the same files the same way (`gate_script!` in
/// `services/inventory/src/reservations/redis.rs`), so a change to the script changes the
/// baseline too.
const RESERVE_SCRIPT: &str = concat!(
    include_str!("../../inventory/src/reservations/lua/common.lua"),
    "\n",
    include_str!("../../inventory/src/reservations/lua/reserve.lua")
);

/// The epoch the baseline's counters are written under; the script refuses writes without one.
const EPOCH: &str = "bench";
/// Seconds a capacity counter lives (unused: the baseline claims no capacity).
const CAPACITY_TTL_SECS: &str = "172800";

/// The raw-script baseline over one key prefix of its own.
#[derive(Clone)]
pub struct RedisScript {
    conn: MultiplexedConnection,
    script: Script,
    prefix: String,
}

impl RedisScript {
    pub async fn connect(url: &str, prefix: String) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let _: () = redis::cmd("SET")
            .arg(format!("{prefix}:epoch"))
            .arg(EPOCH)
            .query_async(&mut conn)
            .await?;
        Ok(Self {
            conn,
            script: Script::new(RESERVE_SCRIPT),
            prefix,
        })
    }

    /// Puts `on_hand` units of `sku` at `location`, nothing reserved (the key layout of the gate).
    pub async fn stock(
        &self,
        sku: &str,
        location: &str,
        on_hand: i64,
    ) -> Result<(), redis::RedisError> {
        let mut conn = self.conn.clone();
        redis::cmd("HSET")
            .arg(format!("{}:stock:{{{sku}}}:{location}", self.prefix))
            .arg("on_hand")
            .arg(on_hand)
            .arg("reserved")
            .arg(0)
            .arg("safety")
            .arg(0)
            .query_async(&mut conn)
            .await
    }

    /// [`RedisScript::stock`] for many (sku, location) pairs, pipelined.
    pub async fn stock_many(
        &self,
        pairs: &[(String, String)],
        on_hand: i64,
    ) -> Result<(), redis::RedisError> {
        let mut conn = self.conn.clone();
        for chunk in pairs.chunks(5_000) {
            let mut pipe = redis::pipe();
            for (sku, location) in chunk {
                pipe.cmd("HSET")
                    .arg(format!("{}:stock:{{{sku}}}:{location}", self.prefix))
                    .arg("on_hand")
                    .arg(on_hand)
                    .arg("reserved")
                    .arg(0)
                    .arg("safety")
                    .arg(0)
                    .ignore();
            }
            let _: () = pipe.query_async(&mut conn).await?;
        }
        Ok(())
    }

    /// One reservation `id` of `lines` (sku, location, qty), as the gate sends it.
    pub async fn reserve(&self, id: &str, lines: &[(&str, &str, u32)], now_ms: i64) -> Outcome {
        let lines: Vec<_> = lines
            .iter()
            .map(|(s, l, q)| json!({ "s": s, "l": l, "q": q }))
            .collect();
        let mut invocation = self.script.prepare_invoke();
        invocation
            .arg(&self.prefix)
            .arg(id)
            .arg(EPOCH)
            .arg(now_ms.to_string())
            .arg("")
            .arg(serde_json::Value::Array(lines).to_string())
            .arg("[]")
            .arg(CAPACITY_TTL_SECS);
        let mut conn = self.conn.clone();
        match invocation.invoke_async::<String>(&mut conn).await {
            Ok(reply) => script_outcome(&reply),
            Err(e) => Outcome::Failed(format!("redis:{:?}", e.kind())),
        }
    }
}

/// Sorts the script's JSON reply the way the gate does: held, short of stock, or anything else.
pub fn script_outcome(reply: &str) -> Outcome {
    match serde_json::from_str::<serde_json::Value>(reply) {
        Ok(v) if v.get("ok").is_some() => Outcome::Accepted,
        Ok(v) if v.get("short").is_some() => Outcome::Refused,
        Ok(v) => Outcome::Failed(format!("script:{}", v.get("err").unwrap_or(&v))),
        Err(_) => Outcome::Failed("script:unreadable".into()),
    }
}

fn pg_failure(e: &DbErr) -> Outcome {
    // The driver's class of error is enough to tell a pool timeout from a lost connection.
    let text = e.to_string();
    let class = text.split(':').next().unwrap_or("error").trim();
    Outcome::Failed(format!("pg:{class}"))
}

/// PostgreSQL-only reservation: one conditional UPDATE of a counter row.
#[derive(Clone)]
pub struct PgHotReserve {
    db: DatabaseConnection,
}

impl PgHotReserve {
    pub async fn setup(db: DatabaseConnection) -> Result<Self, DbErr> {
        db.execute_unprepared(
            "CREATE TABLE IF NOT EXISTS stock_levels (
                 sku text NOT NULL, location_id text NOT NULL,
                 on_hand bigint NOT NULL, reserved bigint NOT NULL DEFAULT 0,
                 safety_stock bigint NOT NULL DEFAULT 0,
                 PRIMARY KEY (sku, location_id))",
        )
        .await?;
        Ok(Self { db })
    }

    pub async fn stock(&self, sku: &str, location: &str, on_hand: i64) -> Result<(), DbErr> {
        self.db
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO stock_levels (sku, location_id, on_hand) VALUES ($1, $2, $3)
                 ON CONFLICT (sku, location_id) DO UPDATE SET on_hand = $3, reserved = 0",
                [sku.into(), location.into(), on_hand.into()],
            ))
            .await?;
        Ok(())
    }

    pub async fn reserve(&self, sku: &str, location: &str, qty: i64) -> Outcome {
        let result = self
            .db
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "UPDATE stock_levels SET reserved = reserved + $1
                 WHERE sku = $2 AND location_id = $3
                   AND on_hand - reserved - safety_stock >= $1",
                [qty.into(), sku.into(), location.into()],
            ))
            .await;
        match result {
            Ok(r) if r.rows_affected() == 1 => Outcome::Accepted,
            Ok(_) => Outcome::Refused,
            Err(e) => pg_failure(&e),
        }
    }

    pub async fn reserved(&self, sku: &str, location: &str) -> Result<i64, DbErr> {
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT reserved FROM stock_levels WHERE sku = $1 AND location_id = $2",
                [sku.into(), location.into()],
            ))
            .await?;
        match row {
            Some(row) => row.try_get("", "reserved"),
            None => Ok(0),
        }
    }
}

/// One order's durable work on PostgreSQL: what inventory and order-routing each commit for it.
#[derive(Clone)]
pub struct PgOrder {
    inventory: DatabaseConnection,
    orders: DatabaseConnection,
}

/// An order line as the baseline writes it.
#[derive(Debug, Clone)]
pub struct BaselineLine {
    pub sku: String,
    pub location: String,
    pub qty: i32,
    pub unit_price_minor: i64,
}

impl PgOrder {
    pub async fn setup(
        inventory: DatabaseConnection,
        orders: DatabaseConnection,
    ) -> Result<Self, DbErr> {
        // Row shapes follow the services' tables: a reservation with its lines as JSON, an order
        // as a JSON document plus the columns listings filter on, and a CloudEvents outbox row.
        inventory
            .execute_unprepared(
                "CREATE TABLE IF NOT EXISTS reservations (
                     id text PRIMARY KEY, status text NOT NULL, lines jsonb NOT NULL,
                     expires_at timestamptz, created_at timestamptz NOT NULL DEFAULT now());
                 CREATE TABLE IF NOT EXISTS outbox (
                     id uuid PRIMARY KEY, topic text NOT NULL, payload jsonb NOT NULL,
                     created_at timestamptz NOT NULL DEFAULT now(), sent_at timestamptz);",
            )
            .await?;
        orders
            .execute_unprepared(
                "CREATE TABLE IF NOT EXISTS orders (
                     id uuid PRIMARY KEY, channel_id text NOT NULL, status text NOT NULL,
                     document jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
                 CREATE TABLE IF NOT EXISTS order_lines (
                     order_id uuid NOT NULL REFERENCES orders(id), line_no int NOT NULL,
                     sku text NOT NULL, location_id text NOT NULL, qty int NOT NULL,
                     unit_price bigint NOT NULL, PRIMARY KEY (order_id, line_no));
                 CREATE TABLE IF NOT EXISTS outbox (
                     id uuid PRIMARY KEY, topic text NOT NULL, payload jsonb NOT NULL,
                     created_at timestamptz NOT NULL DEFAULT now(), sent_at timestamptz);",
            )
            .await?;
        Ok(Self { inventory, orders })
    }

    /// Both transactions of one order, one after the other, as the PlaceOrder saga runs them.
    pub async fn place(&self, lines: &[BaselineLine]) -> Outcome {
        match self.try_place(lines).await {
            Ok(()) => Outcome::Accepted,
            Err(e) => pg_failure(&e),
        }
    }

    async fn try_place(&self, lines: &[BaselineLine]) -> Result<(), DbErr> {
        let order_id = uuid::Uuid::now_v7();
        let lines_json = serde_json::Value::Array(
            lines
                .iter()
                .map(|l| json!({ "sku": l.sku, "location": l.location, "qty": l.qty }))
                .collect(),
        );
        let reservation_id = format!("order:{order_id}");

        let txn = self.inventory.begin().await?;
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO reservations (id, status, lines, expires_at)
             VALUES ($1, 'HELD', $2, now() + interval '1 minute')",
            [reservation_id.clone().into(), lines_json.clone().into()],
        ))
        .await?;
        txn.execute_raw(outbox_insert(
            "inventory.reservation.held",
            json!({ "reservationId": reservation_id, "lines": lines_json }),
        ))
        .await?;
        txn.commit().await?;

        let document = json!({ "id": order_id, "channel": "bench", "lines": lines_json });
        let txn = self.orders.begin().await?;
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO orders (id, channel_id, status, document) VALUES ($1, 'bench', 'ALLOCATED', $2)",
            [order_id.into(), document.clone().into()],
        ))
        .await?;
        for (i, l) in lines.iter().enumerate() {
            let line_no = i32::try_from(i + 1).unwrap_or(i32::MAX);
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO order_lines (order_id, line_no, sku, location_id, qty, unit_price)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                [
                    order_id.into(),
                    line_no.into(),
                    l.sku.clone().into(),
                    l.location.clone().into(),
                    l.qty.into(),
                    l.unit_price_minor.into(),
                ],
            ))
            .await?;
        }
        txn.execute_raw(outbox_insert("order.placed", document))
            .await?;
        txn.commit().await?;
        Ok(())
    }
}

fn outbox_insert(topic: &str, payload: serde_json::Value) -> Statement {
    Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO outbox (id, topic, payload) VALUES ($1, $2, $3)",
        [uuid::Uuid::now_v7().into(), topic.into(), payload.into()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_replies_are_sorted_like_the_gate_sorts_them() {
        assert_eq!(script_outcome(r#"{"ok":true}"#), Outcome::Accepted);
        assert_eq!(
            script_outcome(r#"{"short":[{"sku":"A","location":"l","requested":1,"available":0}]}"#),
            Outcome::Refused
        );
        assert!(matches!(
            script_outcome(r#"{"err":"unavailable","reason":"epoch missing"}"#),
            Outcome::Failed(code) if code.contains("unavailable")
        ));
        assert!(matches!(script_outcome("nonsense"), Outcome::Failed(_)));
    }

    #[test]
    fn the_baseline_runs_the_gate_script_files() {
        assert!(RESERVE_SCRIPT.contains("local function stock_key"));
        assert!(RESERVE_SCRIPT.contains("return reply({ ok = true })"));
    }
}
