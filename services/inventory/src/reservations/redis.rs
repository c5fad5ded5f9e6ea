//! Redis adapter of the reservation gate.
//!
//! ## Key layout (prefix `P`, e.g. `omni:inventory`; tests use a random one)
//! | key | type | what |
//! |---|---|---|
//! | `P:stock:{<sku>}:<location>` | hash `on_hand`, `reserved`, `safety` | counters; `{sku}` is the cluster hash tag |
//! | `P:res:<reservation id>` | hash `state`, `lines` (JSON), `fp`, `epoch`, `expires_at` (ms), `confirmed`, `created_at` (ms), `cap` (JSON) | one record per reservation; finished ones expire after [`TOMBSTONE_TTL`] |
//! | `P:expiry` | sorted set, score = `expires_at` ms | unconfirmed holds, for the reaper |
//! | `P:pending` | sorted set, score = `created_at` ms | PENDING holds, for the orphan reaper |
//! | `P:cap:<location>:<YYYY-MM-DD>` | integer, TTL [`CAPACITY_TTL`] | orders taken that local day |
//! | `P:epoch`, `P:rebuilding`, `P:rebuild-lock` | strings | the current epoch, the rebuild flag and its lock |
//! | `P:seq` | integer | the number of the last counter change (see `level_cache.rs`) |
//! | `P:avail` | pub/sub channel | every counter change as `{sku, location, on_hand, reserved, safety, seq}` |
//!
//! ## Why each step is atomic
//! Every operation that reads and then writes is one Lua script (`lua/*.lua`, each prefixed with
//! `lua/common.lua`), run with EVALSHA and a fallback to loading it. Redis runs a script with no
//! other command in between, so the availability check and the hold of all lines — and the
//! capacity check and its increment, and the change notification — happen as one step, on any
//! number of service replicas, without a distributed lock. A rejected reservation writes nothing.
//!
//! The scripts touch several keys whose names they derive from the prefix and the record, which
//! standalone and Sentinel Redis allow. Cluster mode would need every key declared and in one
//! slot: reservations would go line by line (per `{sku}`) with compensation. That is not built.
//!
//! The prefix must not contain glob characters (`*?[]`): the rebuild finds its keys with SCAN.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use omni_types::{LocationId, Quantity, ReservationId, Sku};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use serde::{Deserialize, Deserializer, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::Instrument;

use super::level_cache::{LevelCache, ReadTicket, Versioned};

use super::{
    CAPACITY_TTL, CapacityClaim, ConvertOutcome, ConvertRequest, Epoch, FeedEvent, FeedStream,
    GateError, GateStatus, HoldOutcome, HoldRecord, HoldRequest, HoldState, RebuildSnapshot,
    ReservationGate, Shortfall, TOMBSTONE_TTL, fingerprint,
};
use crate::domain::{
    CapacityDay, HeldLine, LineEffect, LineSelection, Reservation, ReservationLine,
    ReservationStatus, StateError, StockLevel,
};

/// How to reach Redis and which part of it is ours.
#[derive(Debug, Clone)]
pub struct RedisGateConfig {
    pub url: String,
    pub prefix: String,
    /// A reservation waits at most this long for Redis before the caller is told to retry; an
    /// ambiguous outcome is then left to the reaper.
    pub response_timeout: Duration,
    pub connection_timeout: Duration,
    /// Stock counters this replica keeps in memory for availability reads (0 = none).
    pub level_cache_entries: usize,
}

/// About 100 bytes each: ~10 MiB at most.
pub const DEFAULT_LEVEL_CACHE_ENTRIES: usize = 100_000;

impl RedisGateConfig {
    pub fn new(url: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: prefix.into(),
            response_timeout: Duration::from_secs(2),
            connection_timeout: Duration::from_secs(2),
            level_cache_entries: DEFAULT_LEVEL_CACHE_ENTRIES,
        }
    }
}

/// A script and the name its spans carry.
struct GateScript {
    name: &'static str,
    script: Script,
}

struct Scripts {
    reserve: GateScript,
    lifecycle: GateScript,
    settle: GateScript,
    convert: GateScript,
    counters: GateScript,
    levels: GateScript,
    rebuild: GateScript,
}

macro_rules! gate_script {
    ($name:literal) => {
        GateScript {
            name: $name,
            script: Script::new(concat!(
                include_str!("lua/common.lua"),
                "\n",
                include_str!(concat!("lua/", $name, ".lua"))
            )),
        }
    };
}

impl Scripts {
    fn load() -> Self {
        Self {
            reserve: gate_script!("reserve"),
            lifecycle: gate_script!("lifecycle"),
            settle: gate_script!("settle"),
            convert: gate_script!("convert"),
            counters: gate_script!("counters"),
            levels: gate_script!("levels"),
            rebuild: gate_script!("rebuild"),
        }
    }
}

/// The gate on Redis. Cheap to clone: the connection manager multiplexes one connection and
/// reconnects by itself.
#[derive(Clone)]
pub struct RedisGate {
    client: redis::Client,
    conn: ConnectionManager,
    prefix: Arc<str>,
    scripts: Arc<Scripts>,
    cache: Arc<LevelCache>,
    /// Stops the task that keeps `cache` current when the last clone of the gate goes.
    _feed: Arc<DropGuard>,
}

fn unavailable(err: redis::RedisError) -> GateError {
    GateError::Unavailable(format!("redis: {err}"))
}

fn corrupt(what: impl std::fmt::Display) -> GateError {
    GateError::Unavailable(format!("unexpected data in redis: {what}"))
}

/// The sequence number on the first line of `levels.lua`.
fn parse_seq_line(line: Option<&str>) -> Result<u64, GateError> {
    line.and_then(|l| l.parse().ok())
        .ok_or_else(|| corrupt(format!("sequence line {line:?}")))
}

/// One line of `levels.lua`: "on_hand reserved safety".
fn parse_level_line(line: &str) -> Result<StockLevel, GateError> {
    let mut fields = line.split(' ').map(str::parse::<i64>);
    match (fields.next(), fields.next(), fields.next(), fields.next()) {
        (Some(Ok(on_hand)), Some(Ok(reserved)), Some(Ok(safety)), None) => {
            Ok(StockLevel::new(on_hand, reserved, safety))
        }
        _ => Err(corrupt(format!("counters line {line:?}"))),
    }
}

fn millis(at: DateTime<Utc>) -> String {
    at.timestamp_millis().to_string()
}

fn from_millis(ms: i64) -> Result<DateTime<Utc>, GateError> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| corrupt(format!("timestamp {ms}")))
}

impl RedisGate {
    pub async fn connect(config: RedisGateConfig) -> Result<Self, GateError> {
        let client = redis::Client::open(config.url.as_str()).map_err(unavailable)?;
        let manager_config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(config.response_timeout))
            .set_connection_timeout(Some(config.connection_timeout));
        let conn = client
            .get_connection_manager_with_config(manager_config)
            .await
            .map_err(unavailable)?;
        let prefix: Arc<str> = config.prefix.into();
        let cache = Arc::new(LevelCache::new(config.level_cache_entries));
        let stop = CancellationToken::new();
        if config.level_cache_entries > 0 {
            tokio::spawn(keep_current(
                client.clone(),
                format!("{prefix}:avail"),
                Arc::downgrade(&cache),
                stop.clone(),
            ));
        }
        Ok(Self {
            client,
            conn,
            prefix,
            scripts: Arc::new(Scripts::load()),
            cache,
            _feed: Arc::new(stop.drop_guard()),
        })
    }

    /// Whether availability reads are being served from this replica's cache (the feed that
    /// keeps it current is subscribed).
    pub fn level_cache_live(&self) -> bool {
        self.cache.is_live()
    }

    /// How many counter slots the cache holds (for tests and diagnostics).
    pub fn level_cache_len(&self) -> usize {
        self.cache.len()
    }

    /// `levels.lua` over `keys`: the sequence number the read saw and the counters.
    async fn read_levels<'a>(
        &self,
        keys: impl ExactSizeIterator<Item = &'a (Sku, LocationId)>,
    ) -> Result<(u64, Vec<StockLevel>), GateError> {
        let wanted = keys.len();
        let mut invocation = self.scripts.levels.script.prepare_invoke();
        invocation.arg(&*self.prefix);
        for (sku, location) in keys {
            invocation.arg(sku.as_str()).arg(location.as_str());
        }
        let mut conn = self.conn.clone();
        let raw: String = invocation
            .invoke_async(&mut conn)
            .instrument(tracing::debug_span!(
                "redis.script",
                script = "levels",
                keys = wanted
            ))
            .await
            .map_err(unavailable)?;
        let mut lines = raw.split('\n');
        let seq = parse_seq_line(lines.next())?;
        let levels = lines.map(parse_level_line).collect::<Result<Vec<_>, _>>()?;
        if levels.len() != wanted {
            return Err(corrupt(format!(
                "levels answered {} keys for {wanted}",
                levels.len(),
            )));
        }
        Ok((seq, levels))
    }

    /// Reads from Redis the counters the cache lacked (`None` in `found`; `key_of` names the
    /// key of a slot), keeps them in the cache under `ticket`, and answers every slot.
    async fn complete_from_redis(
        &self,
        mut found: Vec<Option<StockLevel>>,
        ticket: &ReadTicket,
        key_of: impl Fn(usize) -> (Sku, LocationId),
    ) -> Result<Vec<StockLevel>, GateError> {
        // Keys are built only for what the cache lacks.
        let missing: Vec<(usize, (Sku, LocationId))> = found
            .iter()
            .enumerate()
            .filter(|(_, level)| level.is_none())
            .map(|(i, _)| (i, key_of(i)))
            .collect();
        if !missing.is_empty() {
            let (seq, read) = self.read_levels(missing.iter().map(|(_, k)| k)).await?;
            self.cache.fill(
                ticket,
                seq,
                missing.iter().map(|(_, k)| k).zip(read.iter().copied()),
            );
            for ((i, _), level) in missing.into_iter().zip(read) {
                found[i] = Some(level);
            }
        }
        Ok(found.into_iter().map(Option::unwrap_or_default).collect())
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, suffix: impl std::fmt::Display) -> String {
        format!("{}:{suffix}", self.prefix)
    }

    fn stock_key(&self, sku: &Sku, location: &LocationId) -> String {
        self.key(format_args!("stock:{{{sku}}}:{location}"))
    }

    fn res_key(&self, id: &ReservationId) -> String {
        self.key(format_args!("res:{id}"))
    }

    fn cap_key(&self, location: &LocationId, day: CapacityDay) -> String {
        self.key(format_args!("cap:{location}:{day}"))
    }

    /// Runs one gate script under a span naming it, and sorts its answer into a reply or an error.
    async fn run(&self, script: &GateScript, args: &[String]) -> Result<Reply, GateError> {
        let span =
            tracing::debug_span!("redis.script", script = script.name, prefix = %self.prefix);
        self.run_inner(&script.script, args).instrument(span).await
    }

    async fn run_inner(&self, script: &Script, args: &[String]) -> Result<Reply, GateError> {
        let mut invocation = script.prepare_invoke();
        invocation.arg(&*self.prefix);
        for arg in args {
            invocation.arg(arg);
        }
        let mut conn = self.conn.clone();
        let raw: String = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let reply: Reply =
            serde_json::from_str(&raw).map_err(|e| corrupt(format!("{e}: {raw}")))?;
        for change in &reply.changed {
            self.cache
                .wrote(&change.sku, &change.location, change.versioned());
        }
        match reply.error() {
            Some(err) => Err(err),
            None => Ok(reply),
        }
    }

    async fn lifecycle(
        &self,
        op: &str,
        id: &ReservationId,
        extra: Option<String>,
    ) -> Result<(), GateError> {
        let mut args = vec![op.to_owned(), id.to_string()];
        args.extend(extra);
        self.run(&self.scripts.lifecycle, &args).await.map(|_| ())
    }

    async fn settle(
        &self,
        op: &str,
        id: &ReservationId,
        selection: &LineSelection,
        now: Option<DateTime<Utc>>,
    ) -> Result<Vec<LineEffect>, GateError> {
        let selection = match selection {
            LineSelection::All => "all".to_owned(),
            LineSelection::Lines(lines) => encode_lines(lines)?,
        };
        let now = now.map(millis).unwrap_or_default();
        let reply = self
            .run(
                &self.scripts.settle,
                &[op.to_owned(), id.to_string(), selection, now],
            )
            .await?;
        reply
            .effects
            .into_iter()
            .map(|e| {
                Ok(LineEffect {
                    sku: Sku::parse(e.sku).map_err(corrupt)?,
                    location: LocationId::parse(e.location).map_err(corrupt)?,
                    qty: e.qty,
                })
            })
            .collect()
    }

    async fn counters(&self, args: Vec<String>) -> Result<StockLevel, GateError> {
        let reply = self.run(&self.scripts.counters, &args).await?;
        Ok(StockLevel::new(
            reply.on_hand.unwrap_or_default(),
            reply.reserved.unwrap_or_default(),
            reply.safety.unwrap_or_default(),
        ))
    }

    async fn zrange_ids(
        &self,
        set: &str,
        max: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ReservationId>, GateError> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(self.key(set))
            .arg("-inf")
            .arg(max.timestamp_millis())
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        ids.iter()
            .map(|id| ReservationId::parse(id).map_err(corrupt))
            .collect()
    }

    /// Deletes every key under the prefix except the epoch, the flag and the lock that the
    /// running rebuild owns, and the change sequence.
    async fn purge_contents(&self) -> Result<(), GateError> {
        // The change sequence survives too, so numbers stay increasing across rebuilds.
        let keep = [
            self.key("epoch"),
            self.key("rebuilding"),
            self.key("rebuild-lock"),
            self.key("seq"),
        ];
        let mut conn = self.conn.clone();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}:*", self.prefix))
                .arg("COUNT")
                .arg(500)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            let doomed: Vec<&String> = keys.iter().filter(|k| !keep.contains(k)).collect();
            if !doomed.is_empty() {
                let _: () = conn.del(doomed).await.map_err(unavailable)?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    fn write_record(
        &self,
        pipe: &mut redis::Pipeline,
        record: &HoldRecord,
    ) -> Result<(), GateError> {
        let r = &record.reservation;
        let id = r.id.to_string();
        let key = self.res_key(&r.id);
        let lines: Vec<LineWire> = r
            .lines
            .iter()
            .map(|l| LineWire {
                s: l.line.sku.to_string(),
                l: l.line.location.to_string(),
                q: l.line.qty.get(),
                c: l.committed,
                r: l.released,
            })
            .collect();
        let cap: Vec<CapWire> = record
            .capacity
            .iter()
            .map(|(l, d)| CapWire {
                l: l.to_string(),
                d: d.to_string(),
            })
            .collect();
        let state = match record.state {
            HoldState::Pending => "PENDING",
            HoldState::Durable => "DURABLE",
            HoldState::Finished(status) => status.as_str(),
        };
        pipe.hset_multiple(
            &key,
            &[
                ("state", state.to_owned()),
                ("lines", to_json(&lines)?),
                ("fp", fingerprint(&r.requested_lines())),
                ("epoch", record.epoch.to_string()),
                ("confirmed", if r.confirmed { "1" } else { "0" }.to_owned()),
                ("created_at", millis(record.created_at)),
                ("cap", to_json(&cap)?),
            ],
        )
        .ignore();
        match record.state {
            HoldState::Finished(_) => {
                pipe.expire(&key, TOMBSTONE_TTL.as_secs() as i64).ignore();
            }
            HoldState::Pending | HoldState::Durable => {
                if let Some(at) = r.expires_at {
                    pipe.hset(&key, "expires_at", millis(at)).ignore();
                    pipe.zadd(self.key("expiry"), &id, at.timestamp_millis())
                        .ignore();
                }
                if record.state == HoldState::Pending {
                    pipe.zadd(
                        self.key("pending"),
                        &id,
                        record.created_at.timestamp_millis(),
                    )
                    .ignore();
                }
            }
        }
        Ok(())
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<String, GateError> {
    serde_json::to_string(value).map_err(corrupt)
}

fn encode_lines(lines: &[ReservationLine]) -> Result<String, GateError> {
    let wire: Vec<RequestLineWire> = lines
        .iter()
        .map(|l| RequestLineWire {
            s: l.sku.as_str(),
            l: l.location.as_str(),
            q: l.qty.get(),
        })
        .collect();
    to_json(&wire)
}

fn encode_claims(claims: &[CapacityClaim]) -> Result<String, GateError> {
    // One unit per location and day, however many claims name it.
    let mut wire: Vec<ClaimWire> = Vec::with_capacity(claims.len());
    for c in claims {
        let day = c.day.to_string();
        if !wire
            .iter()
            .any(|w| w.l == c.location.as_str() && w.d == day)
        {
            wire.push(ClaimWire {
                l: c.location.as_str(),
                d: day,
                limit: c.daily_limit,
            });
        }
    }
    to_json(&wire)
}

#[derive(Serialize)]
struct RequestLineWire<'a> {
    s: &'a str,
    l: &'a str,
    q: u32,
}

#[derive(Serialize)]
struct ClaimWire<'a> {
    l: &'a str,
    d: String,
    limit: u32,
}

#[derive(Serialize, Deserialize)]
struct LineWire {
    s: String,
    l: String,
    q: u32,
    c: u32,
    r: u32,
}

#[derive(Serialize, Deserialize)]
struct CapWire {
    l: String,
    d: String,
}

#[derive(Deserialize)]
struct ShortWire {
    sku: String,
    location: String,
    requested: u32,
    available: i64,
}

#[derive(Deserialize)]
struct EffectWire {
    sku: String,
    location: String,
    qty: u32,
}

#[derive(Deserialize)]
struct ChangeWire {
    #[serde(default)]
    gap: bool,
    #[serde(default)]
    sku: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    on_hand: i64,
    #[serde(default)]
    reserved: i64,
    #[serde(default)]
    safety: i64,
    #[serde(default)]
    seq: Option<u64>,
}

impl Reply {
    /// The last change the step made to each key, in the order the keys were first changed.
    fn held_levels(&self) -> Result<Vec<(Sku, LocationId, StockLevel)>, GateError> {
        let mut levels: Vec<(Sku, LocationId, StockLevel)> = Vec::new();
        for change in self.changed.iter().filter(|c| !c.gap) {
            let level = StockLevel::new(change.on_hand, change.reserved, change.safety);
            match levels
                .iter_mut()
                .find(|(s, l, _)| s.as_str() == change.sku && l.as_str() == change.location)
            {
                Some((_, _, known)) => *known = level,
                None => levels.push((
                    Sku::parse(change.sku.clone()).map_err(corrupt)?,
                    LocationId::parse(change.location.clone()).map_err(corrupt)?,
                    level,
                )),
            }
        }
        Ok(levels)
    }
}

impl ChangeWire {
    fn versioned(&self) -> Versioned {
        Versioned {
            level: StockLevel::new(self.on_hand, self.reserved, self.safety),
            seq: self.seq,
        }
    }
}

/// Lua's cjson writes an empty table as `{}`; a list field accepts that as empty.
fn lua_list<'de, D, T>(de: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrEmpty<T> {
        List(Vec<T>),
        Empty(serde::de::IgnoredAny),
    }
    Ok(match ListOrEmpty::deserialize(de)? {
        ListOrEmpty::List(v) => v,
        ListOrEmpty::Empty(_) => Vec::new(),
    })
}

/// Every script answers with one JSON object; the fields present say which answer it is.
#[derive(Deserialize, Default)]
struct Reply {
    ok: Option<bool>,
    err: Option<String>,
    reason: Option<String>,
    current: Option<String>,
    from: Option<String>,
    to: Option<String>,
    at: Option<i64>,
    sku: Option<String>,
    location: Option<String>,
    requested: Option<u32>,
    remaining: Option<u32>,
    dup: Option<String>,
    same: Option<bool>,
    #[serde(default, deserialize_with = "lua_list")]
    short: Vec<ShortWire>,
    #[serde(default, deserialize_with = "lua_list")]
    full: Vec<String>,
    #[serde(default, deserialize_with = "lua_list")]
    effects: Vec<EffectWire>,
    /// The counter changes the step made (every script, through `reply` in common.lua).
    #[serde(default, deserialize_with = "lua_list")]
    changed: Vec<ChangeWire>,
    on_hand: Option<i64>,
    reserved: Option<i64>,
    safety: Option<i64>,
    status: Option<String>,
    epoch: Option<String>,
}

impl Reply {
    fn error(&self) -> Option<GateError> {
        let err = self.err.as_deref()?;
        let status = |s: &Option<String>| {
            s.as_deref()
                .and_then(ReservationStatus::parse)
                .ok_or_else(|| corrupt(format!("status {s:?}")))
        };
        let key = || -> Result<(Sku, LocationId), GateError> {
            Ok((
                Sku::parse(self.sku.clone().unwrap_or_default()).map_err(corrupt)?,
                LocationId::parse(self.location.clone().unwrap_or_default()).map_err(corrupt)?,
            ))
        };
        let mapped = match err {
            "not_found" => Ok(GateError::NotFound),
            "unavailable" => Ok(GateError::Unavailable(
                self.reason.clone().unwrap_or_else(|| "unknown".into()),
            )),
            "epoch" => Ok(GateError::EpochMismatch {
                current: self.current.as_deref().and_then(|c| c.parse().ok()),
            }),
            "durable" => Ok(StateError::Durable.into()),
            "confirmed" => Ok(StateError::Confirmed.into()),
            "not_due" => from_millis(self.at.unwrap_or_default())
                .map(|expires_at| StateError::NotDue { expires_at }.into()),
            "transition" => status(&self.from).and_then(|from| {
                status(&self.to).map(|to| StateError::InvalidTransition { from, to }.into())
            }),
            "unknown_line" => {
                key().map(|(sku, location)| StateError::UnknownLine { sku, location }.into())
            }
            "exceeds" => key().map(|(sku, location)| {
                StateError::ExceedsRemaining {
                    sku,
                    location,
                    requested: self.requested.unwrap_or_default(),
                    remaining: self.remaining.unwrap_or_default(),
                }
                .into()
            }),
            other => Err(corrupt(format!("script error {other}"))),
        };
        Some(mapped.unwrap_or_else(|e| e))
    }

    fn duplicate(&self) -> Result<Option<(HoldState, bool)>, GateError> {
        let Some(state) = self.dup.as_deref() else {
            return Ok(None);
        };
        Ok(Some((parse_state(state)?, self.same.unwrap_or(false))))
    }

    fn full_locations(&self) -> Result<Vec<LocationId>, GateError> {
        self.full
            .iter()
            .map(|l| LocationId::parse(l.clone()).map_err(corrupt))
            .collect()
    }
}

fn parse_state(state: &str) -> Result<HoldState, GateError> {
    match state {
        "PENDING" => Ok(HoldState::Pending),
        "DURABLE" => Ok(HoldState::Durable),
        other => ReservationStatus::parse(other)
            .filter(|s| *s != ReservationStatus::Held)
            .map(HoldState::Finished)
            .ok_or_else(|| corrupt(format!("state {other}"))),
    }
}

fn parse_record(
    id: &ReservationId,
    fields: HashMap<String, String>,
) -> Result<HoldRecord, GateError> {
    let field = |name: &str| {
        fields
            .get(name)
            .ok_or_else(|| corrupt(format!("record {id} lacks {name}")))
    };
    let number =
        |name: &str| -> Result<i64, GateError> { field(name)?.parse::<i64>().map_err(corrupt) };
    let state = parse_state(field("state")?)?;
    let lines: Vec<LineWire> = serde_json::from_str(field("lines")?).map_err(corrupt)?;
    let lines = lines
        .into_iter()
        .map(|l| {
            Ok(HeldLine {
                line: ReservationLine::new(
                    Sku::parse(l.s).map_err(corrupt)?,
                    LocationId::parse(l.l).map_err(corrupt)?,
                    Quantity::parse(i64::from(l.q)).map_err(corrupt)?,
                ),
                committed: l.c,
                released: l.r,
            })
        })
        .collect::<Result<Vec<_>, GateError>>()?;
    let cap: Vec<CapWire> = match fields.get("cap").map(String::as_str) {
        None | Some("{}") => Vec::new(),
        Some(raw) => serde_json::from_str(raw).map_err(corrupt)?,
    };
    let capacity = cap
        .into_iter()
        .map(|c| {
            let day = NaiveDate::parse_from_str(&c.d, "%Y-%m-%d").map_err(corrupt)?;
            Ok((LocationId::parse(c.l).map_err(corrupt)?, CapacityDay(day)))
        })
        .collect::<Result<Vec<_>, GateError>>()?;
    let expires_at = match fields.get("expires_at") {
        Some(ms) => Some(from_millis(ms.parse().map_err(corrupt)?)?),
        None => None,
    };
    let status = match state {
        HoldState::Finished(status) => status,
        HoldState::Pending | HoldState::Durable => ReservationStatus::Held,
    };
    Ok(HoldRecord {
        reservation: Reservation {
            id: id.clone(),
            lines,
            status,
            expires_at,
            confirmed: field("confirmed")? == "1",
        },
        state,
        epoch: number("epoch")?.try_into().map_err(corrupt)?,
        created_at: from_millis(number("created_at")?)?,
        capacity,
    })
}

fn parse_change(payload: &str) -> Option<ChangeWire> {
    match serde_json::from_str(payload) {
        Ok(wire) => Some(wire),
        Err(err) => {
            tracing::warn!(%err, payload, "ignoring an unreadable availability message");
            None
        }
    }
}

fn decode_change(payload: &str) -> Option<FeedEvent> {
    let wire = parse_change(payload)?;
    if wire.gap {
        return Some(FeedEvent::Gap);
    }
    match (Sku::parse(wire.sku), LocationId::parse(wire.location)) {
        (Ok(sku), Ok(location)) => Some(FeedEvent::Change(super::AvailabilityChange {
            sku,
            location,
            level: StockLevel::new(wire.on_hand, wire.reserved, wire.safety),
        })),
        _ => {
            tracing::warn!(payload, "ignoring an availability message with a bad key");
            None
        }
    }
}

/// Keeps `cache` current from the change feed until `stop` (or the cache is gone): live while
/// subscribed, dark (and empty) from the moment the subscription is lost until it is back.
async fn keep_current(
    client: redis::Client,
    channel: String,
    cache: std::sync::Weak<LevelCache>,
    stop: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = tokio::select! {
            () = stop.cancelled() => return,
            subscribed = subscribed => subscribed,
        };
        match pubsub {
            Ok(pubsub) => {
                backoff = Duration::from_millis(100);
                let Some(live) = cache.upgrade() else { return };
                live.go_live();
                drop(live);
                let mut messages = pubsub.into_on_message();
                loop {
                    let msg = tokio::select! {
                        () = stop.cancelled() => return,
                        msg = messages.next() => msg,
                    };
                    let Some(cache) = cache.upgrade() else { return };
                    let Some(msg) = msg else {
                        cache.go_dark();
                        tracing::warn!(
                            channel,
                            "level cache lost its feed; reading Redis until it is back"
                        );
                        break;
                    };
                    // A message it cannot read may have been a change to a cached key.
                    match msg
                        .get_payload::<String>()
                        .ok()
                        .as_deref()
                        .and_then(parse_change)
                    {
                        Some(wire) if !wire.gap => {
                            cache.changed(&wire.sku, &wire.location, wire.versioned());
                        }
                        _ => cache.drop_all(),
                    }
                }
            }
            Err(err) => tracing::warn!(%err, "level cache cannot subscribe to the change feed"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            // Backoff between reconnect attempts, not synchronisation.
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Forwards pub/sub messages until the receiver is dropped. After a lost connection it
/// resubscribes and then sends `Gap`, so the consumer re-snapshots only once it will see every
/// change that follows.
async fn forward_changes(
    client: redis::Client,
    channel: String,
    mut pubsub: redis::aio::PubSub,
    tx: mpsc::Sender<FeedEvent>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut messages = pubsub.into_on_message();
        loop {
            tokio::select! {
                _ = tx.closed() => return,
                msg = messages.next() => match msg {
                    Some(msg) => {
                        let Ok(payload) = msg.get_payload::<String>() else { continue };
                        if let Some(event) = decode_change(&payload)
                            && tx.send(event).await.is_err()
                        {
                            return;
                        }
                    }
                    None => break,
                },
            }
        }
        tracing::warn!(channel, "availability subscription lost; resubscribing");
        pubsub = loop {
            tokio::select! {
                _ = tx.closed() => return,
                // Backoff between reconnect attempts, not synchronisation.
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
            match client.get_async_pubsub().await {
                Ok(mut fresh) => match fresh.subscribe(&channel).await {
                    Ok(()) => break fresh,
                    Err(err) => tracing::warn!(%err, "resubscribe failed"),
                },
                Err(err) => tracing::warn!(%err, "reconnect for availability failed"),
            }
        };
        backoff = Duration::from_millis(100);
        if tx.send(FeedEvent::Gap).await.is_err() {
            return;
        }
    }
}

#[async_trait]
impl ReservationGate for RedisGate {
    async fn reserve(&self, request: HoldRequest) -> Result<HoldOutcome, GateError> {
        let span = tracing::debug_span!("gate.reserve", reservation = %request.id, lines = request.lines.len());
        async {
            let args = [
                request.id.to_string(),
                request.epoch.to_string(),
                millis(request.now),
                request.expires_at.map(millis).unwrap_or_default(),
                encode_lines(&request.lines)?,
                encode_claims(&request.capacity)?,
                CAPACITY_TTL.as_secs().to_string(),
            ];
            let reply = self.run(&self.scripts.reserve, &args).await?;
            if let Some((state, same_lines)) = reply.duplicate()? {
                return Ok(HoldOutcome::Duplicate { state, same_lines });
            }
            if !reply.short.is_empty() {
                let shortfalls = reply
                    .short
                    .iter()
                    .map(|s| {
                        Ok(Shortfall {
                            sku: Sku::parse(s.sku.clone()).map_err(corrupt)?,
                            location: LocationId::parse(s.location.clone()).map_err(corrupt)?,
                            requested: s.requested,
                            available: s.available,
                        })
                    })
                    .collect::<Result<Vec<_>, GateError>>()?;
                return Ok(HoldOutcome::Insufficient(shortfalls));
            }
            if !reply.full.is_empty() {
                return Ok(HoldOutcome::CapacityExhausted(reply.full_locations()?));
            }
            match reply.ok {
                Some(true) => Ok(HoldOutcome::Held {
                    levels: reply.held_levels()?,
                }),
                _ => Err(corrupt("reserve answered neither held nor refused")),
            }
        }
        .instrument(span)
        .await
    }

    async fn mark_durable(&self, id: &ReservationId) -> Result<(), GateError> {
        self.lifecycle("durable", id, None).await
    }

    async fn undo(&self, id: &ReservationId) -> Result<(), GateError> {
        self.lifecycle("undo", id, None).await
    }

    async fn confirm(&self, id: &ReservationId) -> Result<(), GateError> {
        self.lifecycle("confirm", id, None).await
    }

    async fn extend(&self, id: &ReservationId, expires_at: DateTime<Utc>) -> Result<(), GateError> {
        self.lifecycle("extend", id, Some(millis(expires_at))).await
    }

    async fn commit(
        &self,
        id: &ReservationId,
        lines: &LineSelection,
    ) -> Result<Vec<LineEffect>, GateError> {
        self.settle("commit", id, lines, None).await
    }

    async fn release(
        &self,
        id: &ReservationId,
        lines: &LineSelection,
    ) -> Result<Vec<LineEffect>, GateError> {
        self.settle("release", id, lines, None).await
    }

    async fn expire(
        &self,
        id: &ReservationId,
        now: DateTime<Utc>,
    ) -> Result<Vec<LineEffect>, GateError> {
        self.settle("expire", id, &LineSelection::All, Some(now))
            .await
    }

    async fn convert(&self, request: ConvertRequest) -> Result<ConvertOutcome, GateError> {
        let args = [
            request.hold_id.to_string(),
            request.order_id.to_string(),
            request.epoch.to_string(),
            millis(request.now),
            request.expires_at.map(millis).unwrap_or_default(),
            encode_claims(&request.capacity)?,
            CAPACITY_TTL.as_secs().to_string(),
        ];
        let reply = self.run(&self.scripts.convert, &args).await?;
        if let Some((state, same_lines)) = reply.duplicate()? {
            return Ok(ConvertOutcome::Duplicate { state, same_lines });
        }
        if !reply.full.is_empty() {
            return Ok(ConvertOutcome::CapacityExhausted(reply.full_locations()?));
        }
        Ok(ConvertOutcome::Converted)
    }

    async fn apply_on_hand(
        &self,
        sku: &Sku,
        location: &LocationId,
        delta: i64,
    ) -> Result<StockLevel, GateError> {
        self.counters(vec![
            "add".into(),
            sku.to_string(),
            location.to_string(),
            delta.to_string(),
        ])
        .await
    }

    async fn set_counters(
        &self,
        sku: &Sku,
        location: &LocationId,
        on_hand: i64,
        safety: i64,
    ) -> Result<StockLevel, GateError> {
        self.counters(vec![
            "set".into(),
            sku.to_string(),
            location.to_string(),
            on_hand.to_string(),
            safety.to_string(),
        ])
        .await
    }

    async fn set_safety(
        &self,
        sku: &Sku,
        location: &LocationId,
        safety: i64,
    ) -> Result<StockLevel, GateError> {
        self.counters(vec![
            "safety".into(),
            sku.to_string(),
            location.to_string(),
            safety.to_string(),
        ])
        .await
    }

    async fn levels(&self, keys: &[(Sku, LocationId)]) -> Result<Vec<StockLevel>, GateError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let (found, ticket) = self.cache.lookup(keys);
        let missing = |i: usize| keys[i].clone();
        self.complete_from_redis(found, &ticket, missing).await
    }

    async fn levels_grid(
        &self,
        skus: &[Sku],
        locations: &[&LocationId],
    ) -> Result<Vec<StockLevel>, GateError> {
        let (found, ticket) = self.cache.lookup_grid(skus, locations);
        let width = locations.len();
        let missing = |i: usize| {
            (
                skus[i / width].clone(),
                LocationId::clone(locations[i % width]),
            )
        };
        self.complete_from_redis(found, &ticket, missing).await
    }

    async fn stored_levels(
        &self,
        keys: &[(Sku, LocationId)],
    ) -> Result<Vec<StockLevel>, GateError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.read_levels(keys.iter()).await?.1)
    }

    async fn capacities_used(
        &self,
        claims: &[(LocationId, CapacityDay)],
    ) -> Result<Vec<u32>, GateError> {
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = claims
            .iter()
            .map(|(location, day)| self.cap_key(location, *day))
            .collect();
        let mut conn = self.conn.clone();
        // MGET of one key answers a bare value, not a list; the explicit command keeps the
        // reply shape the same for any count.
        let used: Vec<Option<u32>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(used.into_iter().map(Option::unwrap_or_default).collect())
    }

    async fn get(&self, id: &ReservationId) -> Result<Option<HoldRecord>, GateError> {
        let mut conn = self.conn.clone();
        let fields: HashMap<String, String> =
            conn.hgetall(self.res_key(id)).await.map_err(unavailable)?;
        if fields.is_empty() {
            return Ok(None);
        }
        parse_record(id, fields).map(Some)
    }

    async fn due_for_expiry(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ReservationId>, GateError> {
        self.zrange_ids("expiry", now, limit).await
    }

    async fn pending_older_than(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ReservationId>, GateError> {
        self.zrange_ids("pending", before, limit).await
    }

    async fn status(&self) -> Result<GateStatus, GateError> {
        let reply = self
            .run(&self.scripts.rebuild, &["status".into(), String::new()])
            .await?;
        match reply.status.as_deref() {
            Some("rebuilding") => Ok(GateStatus::Rebuilding),
            Some("missing") => Ok(GateStatus::Missing),
            Some("ready") => reply
                .epoch
                .as_deref()
                .and_then(|e| e.parse().ok())
                .map(|epoch| GateStatus::Ready { epoch })
                .ok_or_else(|| corrupt(format!("epoch {:?}", reply.epoch))),
            other => Err(corrupt(format!("status {other:?}"))),
        }
    }

    async fn begin_rebuild(&self, epoch: Epoch, lock_ttl: Duration) -> Result<bool, GateError> {
        let reply = self
            .run(
                &self.scripts.rebuild,
                &[
                    "begin".into(),
                    epoch.to_string(),
                    lock_ttl.as_millis().to_string(),
                ],
            )
            .await?;
        self.cache.drop_all();
        Ok(reply.ok == Some(true))
    }

    async fn load(&self, snapshot: RebuildSnapshot) -> Result<(), GateError> {
        let span = tracing::info_span!(
            "gate.load",
            epoch = snapshot.epoch,
            levels = snapshot.levels.len(),
            holds = snapshot.holds.len()
        );
        async {
            self.run(
                &self.scripts.rebuild,
                &["check".into(), snapshot.epoch.to_string()],
            )
            .await?;
            // Not atomic, and need not be: every write is refused while the rebuilding flag is up.
            self.purge_contents().await?;
            const BATCH: usize = 500;
            for chunk in snapshot.levels.chunks(BATCH) {
                let mut pipe = redis::pipe();
                for (sku, location, level) in chunk {
                    pipe.hset_multiple(
                        self.stock_key(sku, location),
                        &[
                            ("on_hand", level.on_hand),
                            ("reserved", level.reserved),
                            ("safety", level.safety_stock),
                        ],
                    )
                    .ignore();
                }
                let _: () = pipe
                    .query_async(&mut self.conn.clone())
                    .await
                    .map_err(unavailable)?;
            }
            for chunk in snapshot.holds.chunks(BATCH) {
                let mut pipe = redis::pipe();
                for record in chunk {
                    self.write_record(&mut pipe, record)?;
                }
                let _: () = pipe
                    .query_async(&mut self.conn.clone())
                    .await
                    .map_err(unavailable)?;
            }
            for chunk in snapshot.capacity.chunks(BATCH) {
                let mut pipe = redis::pipe();
                for (location, day, used) in chunk {
                    pipe.set_ex(self.cap_key(location, *day), *used, CAPACITY_TTL.as_secs())
                        .ignore();
                }
                let _: () = pipe
                    .query_async(&mut self.conn.clone())
                    .await
                    .map_err(unavailable)?;
            }
            Ok(())
        }
        .instrument(span)
        .await
    }

    async fn finish_rebuild(&self, epoch: Epoch) -> Result<(), GateError> {
        let finished = self
            .run(&self.scripts.rebuild, &["finish".into(), epoch.to_string()])
            .await
            .map(|_| ());
        // Every replica drops its cache on the gap message; this one does not wait for it, so
        // it never answers from counters the rebuild replaced.
        self.cache.drop_all();
        finished
    }

    async fn subscribe(&self) -> Result<FeedStream, GateError> {
        let channel = self.key("avail");
        let mut pubsub = self.client.get_async_pubsub().await.map_err(unavailable)?;
        pubsub.subscribe(&channel).await.map_err(unavailable)?;
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(forward_changes(self.client.clone(), channel, pubsub, tx));
        Ok(Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|event| (event, rx))
        })))
    }
}
