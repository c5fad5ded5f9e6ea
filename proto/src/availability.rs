//! `omni.inventory.v1.GetAvailabilityResponse`, written by hand instead of generated.
//!
//! The message on the wire is exactly the one `inventory.proto` declares. What differs is how a
//! server may build it: an answer over 20 SKUs × 200 locations has 4,000 rows, and as generated
//! structs each row owns a copy of its SKU and its location id. Allocating, encoding from and
//! freeing those 8,000 strings was ~40 % of the inventory service's CPU for such an answer. A
//! [`LevelGrid`] names each SKU and each location once and encodes the rows from them.
//!
//! Layout GRID (`AvailabilityGrid`, field 3) names each SKU and location once on the wire too;
//! that part is the generated struct. Decoding fills [`GetAvailabilityResponse::levels`] and
//! [`GetAvailabilityResponse::grid`] as the wire had them; [`LevelGrid`] is for building answers
//! and is empty in a decoded one.

use std::borrow::Cow;
use std::sync::Arc;

use prost::bytes::{Buf, BufMut};
use prost::encoding::{
    DecodeContext, WireType, encode_key, encode_varint, encoded_len_varint, key_len, message,
    skip_field,
};
use serde::ser::SerializeStruct;

use crate::inventory::v1::{AvailabilityGrid, LocationCapacity, StockLevel};

const LEVELS_TAG: u32 = 1;
const CAPACITIES_TAG: u32 = 2;
const GRID_TAG: u32 = 3;

// StockLevel's field numbers (inventory.proto).
const SKU_TAG: u32 = 1;
const LOCATION_ID_TAG: u32 = 2;
const COUNTER_TAGS: [u32; 4] = [3, 4, 5, 6];

#[derive(Clone, PartialEq, Default, Debug)]
pub struct GetAvailabilityResponse {
    /// One row per requested SKU × reported location, zeros for an SKU never stocked there.
    /// Ordered by sku, then location id. In an answer being built, rows may instead (or also,
    /// after these) be in [`GetAvailabilityResponse::grid`].
    pub levels: Vec<StockLevel>,
    /// One row per reported location.
    pub capacities: Vec<LocationCapacity>,
    /// Layout GRID as decoded: every counter, each SKU and location named once.
    pub grid: Option<AvailabilityGrid>,
    /// Further rows of `levels`, encoded after them; never filled by decoding.
    pub level_grid: LevelGrid,
    /// Layout GRID being sent, encoded as `grid` (when `grid` is not set); never filled by
    /// decoding.
    pub packed_grid: Option<PackedGrid>,
    /// Further rows of `capacities`, encoded after them; never filled by decoding.
    pub capacity_rows: Option<CapacityRows>,
}

/// `capacities` being sent without a copy of each location id and date per row: the ids are
/// the grid's, a date is shared by the locations of one time zone. As generated structs, 200
/// rows were 400 strings to allocate, encode and free in every availability answer.
#[derive(Clone, PartialEq, Debug)]
pub struct CapacityRows {
    location_ids: Arc<[String]>,
    rows: Vec<CapacityRow>,
}

/// One location's `LocationCapacity` but its id.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CapacityRow {
    pub daily_capacity: u32,
    pub used_today: u32,
    pub capacity_left_today: u32,
    pub unlimited: bool,
    pub local_date: Arc<str>,
}

/// Capacity rows that do not name one location each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{rows} capacity rows for {locations} locations")]
pub struct CapacityShapeError {
    pub rows: usize,
    pub locations: usize,
}

// LocationCapacity's field numbers (inventory.proto).
const CAPACITY_LOCATION_TAG: u32 = 1;
const DAILY_CAPACITY_TAG: u32 = 2;
const USED_TODAY_TAG: u32 = 3;
const CAPACITY_LEFT_TAG: u32 = 4;
const UNLIMITED_TAG: u32 = 5;
const LOCAL_DATE_TAG: u32 = 6;

impl CapacityRows {
    /// `rows[i]` is of `location_ids[i]`.
    pub fn new(
        location_ids: Arc<[String]>,
        rows: Vec<CapacityRow>,
    ) -> Result<Self, CapacityShapeError> {
        if rows.len() != location_ids.len() {
            return Err(CapacityShapeError {
                rows: rows.len(),
                locations: location_ids.len(),
            });
        }
        Ok(Self { location_ids, rows })
    }

    /// The rows as the generated message holds them.
    pub fn to_messages(&self) -> impl Iterator<Item = LocationCapacity> + '_ {
        self.location_ids
            .iter()
            .zip(&self.rows)
            .map(|(id, row)| LocationCapacity {
                location_id: id.clone(),
                daily_capacity: row.daily_capacity,
                used_today: row.used_today,
                capacity_left_today: row.capacity_left_today,
                unlimited: row.unlimited,
                local_date: row.local_date.to_string(),
            })
    }

    fn numbers(row: &CapacityRow) -> [(u32, u64); 4] {
        [
            (DAILY_CAPACITY_TAG, u64::from(row.daily_capacity)),
            (USED_TODAY_TAG, u64::from(row.used_today)),
            (CAPACITY_LEFT_TAG, u64::from(row.capacity_left_today)),
            (UNLIMITED_TAG, u64::from(row.unlimited)),
        ]
    }

    fn row_len(id: &str, row: &CapacityRow) -> usize {
        let numbers: usize = Self::numbers(row)
            .iter()
            .filter(|(_, value)| *value != 0)
            .map(|(tag, value)| key_len(*tag) + encoded_len_varint(*value))
            .sum();
        string_field_len(CAPACITY_LOCATION_TAG, id)
            + numbers
            + string_field_len(LOCAL_DATE_TAG, &row.local_date)
    }

    fn encoded_len(&self) -> usize {
        self.location_ids
            .iter()
            .zip(&self.rows)
            .map(|(id, row)| {
                let len = Self::row_len(id, row);
                key_len(CAPACITIES_TAG) + encoded_len_varint(len as u64) + len
            })
            .sum()
    }

    fn encode(&self, buf: &mut impl BufMut) {
        for (id, row) in self.location_ids.iter().zip(&self.rows) {
            encode_key(CAPACITIES_TAG, WireType::LengthDelimited, buf);
            encode_varint(Self::row_len(id, row) as u64, buf);
            encode_string_field(CAPACITY_LOCATION_TAG, id, buf);
            for (tag, value) in Self::numbers(row) {
                if value != 0 {
                    encode_key(tag, WireType::Varint, buf);
                    encode_varint(value, buf);
                }
            }
            encode_string_field(LOCAL_DATE_TAG, &row.local_date, buf);
        }
    }
}

/// Layout GRID built for sending: the ids once, each counter column varint-encoded as it is
/// made. Encoding from [`AvailabilityGrid`] walks every column once for its length at each
/// level of nesting and again to write it; here a column is walked once.
#[derive(Clone, PartialEq, Default, Debug)]
pub struct PackedGrid {
    skus: Vec<String>,
    location_ids: Arc<[String]>,
    /// on_hand, reserved, safety_stock, available: fields 3 to 6, packed.
    columns: [Vec<u8>; 4],
}

impl From<LevelGrid> for PackedGrid {
    fn from(grid: LevelGrid) -> Self {
        // Most counters fit in two bytes.
        let mut columns: [Vec<u8>; 4] = std::array::from_fn(|_| Vec::with_capacity(grid.len() * 2));
        for counters in &grid.counters {
            for (column, value) in columns.iter_mut().zip(counters.fields()) {
                push_varint(value as u64, column);
            }
        }
        Self {
            skus: grid.skus,
            location_ids: grid.location_ids,
            columns,
        }
    }
}

/// prost's `encode_varint` goes through `BufMut` a byte at a time, each byte with its own
/// capacity check and copy: that was 17 % of inventory's CPU while answering 20 × 200 grids.
/// A column is a `Vec`, whose `push` inlines to a store. (Copying a counter's bytes from a
/// buffer with `extend_from_slice` calls `memmove` for two bytes: slower still.)
fn push_varint(mut value: u64, column: &mut Vec<u8>) {
    while value >= 0x80 {
        column.push((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    column.push(value as u8);
}

impl PackedGrid {
    fn body_len(&self) -> usize {
        let ids: usize = [
            (SKU_TAG, self.skus.as_slice()),
            (LOCATION_ID_TAG, &self.location_ids[..]),
        ]
        .into_iter()
        .map(|(tag, ids)| prost::encoding::string::encoded_len_repeated(tag, ids))
        .sum();
        let columns: usize = COUNTER_TAGS
            .iter()
            .zip(&self.columns)
            .filter(|(_, column)| !column.is_empty())
            .map(|(tag, column)| {
                key_len(*tag) + encoded_len_varint(column.len() as u64) + column.len()
            })
            .sum();
        ids + columns
    }

    fn encoded_len(&self) -> usize {
        let body = self.body_len();
        key_len(GRID_TAG) + encoded_len_varint(body as u64) + body
    }

    /// The grid as the receiver decodes it.
    pub fn to_grid(&self) -> Result<AvailabilityGrid, prost::DecodeError> {
        let mut body = Vec::with_capacity(self.body_len());
        self.encode_body(&mut body);
        <AvailabilityGrid as prost::Message>::decode(body.as_slice())
    }

    fn encode(&self, buf: &mut impl BufMut) {
        encode_key(GRID_TAG, WireType::LengthDelimited, buf);
        encode_varint(self.body_len() as u64, buf);
        self.encode_body(buf);
    }

    fn encode_body(&self, buf: &mut impl BufMut) {
        prost::encoding::string::encode_repeated(SKU_TAG, &self.skus, buf);
        prost::encoding::string::encode_repeated(LOCATION_ID_TAG, &self.location_ids, buf);
        for (tag, column) in COUNTER_TAGS.iter().zip(&self.columns) {
            if !column.is_empty() {
                encode_key(*tag, WireType::LengthDelimited, buf);
                encode_varint(column.len() as u64, buf);
                buf.put_slice(column);
            }
        }
    }
}

/// Rows of every SKU at every location, SKU by SKU, each id held once.
#[derive(Clone, PartialEq, Default, Debug)]
pub struct LevelGrid {
    skus: Vec<String>,
    /// Shared with the answer's [`CapacityRows`], which name the same locations.
    location_ids: Arc<[String]>,
    /// `skus.len() × location_ids.len()` counters, the first SKU's at every location first.
    counters: Vec<Counters>,
}

/// One row's numbers, as StockLevel's fields 3 to 6 carry them.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct Counters {
    pub on_hand: i64,
    pub reserved: i64,
    pub safety_stock: i64,
    pub available: i64,
}

impl Counters {
    fn fields(&self) -> [i64; 4] {
        [
            self.on_hand,
            self.reserved,
            self.safety_stock,
            self.available,
        ]
    }

    fn encoded_len(&self) -> usize {
        // proto3 leaves zeros out; an int64 is encoded as its two's-complement u64.
        COUNTER_TAGS
            .iter()
            .zip(self.fields())
            .filter(|(_, v)| *v != 0)
            .map(|(tag, v)| key_len(*tag) + encoded_len_varint(v as u64))
            .sum()
    }
}

/// The grid's shape does not match its counters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a grid of {skus} SKUs × {locations} locations needs {expected} counters, got {got}")]
pub struct GridShapeError {
    pub skus: usize,
    pub locations: usize,
    pub expected: usize,
    pub got: usize,
}

fn string_field_len(tag: u32, value: &str) -> usize {
    if value.is_empty() {
        0
    } else {
        key_len(tag) + encoded_len_varint(value.len() as u64) + value.len()
    }
}

fn encode_string_field(tag: u32, value: &str, buf: &mut impl BufMut) {
    if !value.is_empty() {
        encode_key(tag, WireType::LengthDelimited, buf);
        encode_varint(value.len() as u64, buf);
        buf.put_slice(value.as_bytes());
    }
}

impl LevelGrid {
    pub fn new(
        skus: Vec<String>,
        location_ids: impl Into<Arc<[String]>>,
        counters: Vec<Counters>,
    ) -> Result<Self, GridShapeError> {
        let location_ids = location_ids.into();
        let expected = skus.len() * location_ids.len();
        if counters.len() != expected {
            return Err(GridShapeError {
                skus: skus.len(),
                locations: location_ids.len(),
                expected,
                got: counters.len(),
            });
        }
        Ok(Self {
            skus,
            location_ids,
            counters,
        })
    }

    pub fn len(&self) -> usize {
        self.counters.len()
    }

    /// The locations of the grid's columns, to share with the answer's capacities.
    pub fn location_ids(&self) -> &Arc<[String]> {
        &self.location_ids
    }

    pub fn is_empty(&self) -> bool {
        self.counters.is_empty()
    }

    /// The rows as the generated message holds them (one string per id per row).
    pub fn rows(&self) -> impl Iterator<Item = StockLevel> + '_ {
        self.cells().map(|(sku, location, c)| StockLevel {
            sku: sku.to_owned(),
            location_id: location.to_owned(),
            on_hand: c.on_hand,
            reserved: c.reserved,
            safety_stock: c.safety_stock,
            available: c.available,
        })
    }

    fn cells(&self) -> impl Iterator<Item = (&str, &str, &Counters)> + '_ {
        let width = self.location_ids.len().max(1);
        self.counters.iter().enumerate().map(move |(i, c)| {
            (
                self.skus[i / width].as_str(),
                self.location_ids[i % width].as_str(),
                c,
            )
        })
    }

    /// Each row's encoded length: what its SKU and location contribute is worked out once.
    fn row_lens(&self) -> impl Iterator<Item = usize> + '_ {
        let sku_lens: Vec<usize> = self
            .skus
            .iter()
            .map(|s| string_field_len(SKU_TAG, s))
            .collect();
        let location_lens: Vec<usize> = self
            .location_ids
            .iter()
            .map(|l| string_field_len(LOCATION_ID_TAG, l))
            .collect();
        let width = self.location_ids.len().max(1);
        self.counters
            .iter()
            .enumerate()
            .map(move |(i, c)| sku_lens[i / width] + location_lens[i % width] + c.encoded_len())
    }

    fn encoded_len(&self) -> usize {
        self.row_lens()
            .map(|len| key_len(LEVELS_TAG) + encoded_len_varint(len as u64) + len)
            .sum()
    }

    fn encode(&self, buf: &mut impl BufMut) {
        for ((sku, location, counters), len) in self.cells().zip(self.row_lens()) {
            encode_key(LEVELS_TAG, WireType::LengthDelimited, buf);
            encode_varint(len as u64, buf);
            encode_string_field(SKU_TAG, sku, buf);
            encode_string_field(LOCATION_ID_TAG, location, buf);
            for (tag, value) in COUNTER_TAGS.iter().zip(counters.fields()) {
                if value != 0 {
                    encode_key(*tag, WireType::Varint, buf);
                    encode_varint(value as u64, buf);
                }
            }
        }
    }
}

impl AvailabilityGrid {
    /// Refuses a grid whose columns do not each hold a value per SKU × location: a peer's bug,
    /// which must not be read as counters of the wrong cells.
    pub fn check_shape(&self) -> Result<(), GridShapeError> {
        let expected = self.skus.len() * self.location_ids.len();
        let columns = [
            &self.on_hand,
            &self.reserved,
            &self.safety_stock,
            &self.available,
        ];
        match columns.iter().find(|c| c.len() != expected) {
            None => Ok(()),
            Some(column) => Err(GridShapeError {
                skus: self.skus.len(),
                locations: self.location_ids.len(),
                expected,
                got: column.len(),
            }),
        }
    }

    /// Each cell as a row, SKU by SKU; nothing when the shape is wrong.
    pub fn rows(&self) -> impl Iterator<Item = StockLevel> + '_ {
        let width = self.location_ids.len();
        let cells = if self.check_shape().is_ok() {
            self.available.len()
        } else {
            0
        };
        (0..cells).map(move |i| StockLevel {
            sku: self.skus[i / width].clone(),
            location_id: self.location_ids[i % width].clone(),
            on_hand: self.on_hand[i],
            reserved: self.reserved[i],
            safety_stock: self.safety_stock[i],
            available: self.available[i],
        })
    }
}

impl GetAvailabilityResponse {
    /// Every row, whichever layout carried it: `levels`, then the built rows, then the grid.
    pub fn all_levels(&self) -> impl Iterator<Item = StockLevel> + '_ {
        let grid_rows: Vec<StockLevel> = match self.wire_grid() {
            Ok(Some(grid)) => grid.rows().collect(),
            Ok(None) | Err(_) => Vec::new(),
        };
        self.levels
            .iter()
            .cloned()
            .chain(self.level_grid.rows())
            .chain(grid_rows)
    }

    /// The grid the wire carries (see `encode_raw`): `grid` when set, else the one being sent.
    fn wire_grid(&self) -> Result<Option<Cow<'_, AvailabilityGrid>>, prost::DecodeError> {
        match (&self.grid, &self.packed_grid) {
            (Some(grid), _) => Ok(Some(Cow::Borrowed(grid))),
            (None, Some(packed)) => packed.to_grid().map(|grid| Some(Cow::Owned(grid))),
            (None, None) => Ok(None),
        }
    }
}

impl prost::Message for GetAvailabilityResponse {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        message::encode_repeated(LEVELS_TAG, &self.levels, buf);
        self.level_grid.encode(buf);
        message::encode_repeated(CAPACITIES_TAG, &self.capacities, buf);
        if let Some(rows) = &self.capacity_rows {
            rows.encode(buf);
        }
        if let Some(grid) = &self.grid {
            message::encode(GRID_TAG, grid, buf);
        } else if let Some(packed) = &self.packed_grid {
            packed.encode(buf);
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        match tag {
            LEVELS_TAG => message::merge_repeated(wire_type, &mut self.levels, buf, ctx),
            CAPACITIES_TAG => message::merge_repeated(wire_type, &mut self.capacities, buf, ctx),
            GRID_TAG => merge_grid(
                wire_type,
                self.grid.get_or_insert_with(AvailabilityGrid::default),
                buf,
                ctx,
            ),
            _ => skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        message::encoded_len_repeated(LEVELS_TAG, &self.levels)
            + self.level_grid.encoded_len()
            + message::encoded_len_repeated(CAPACITIES_TAG, &self.capacities)
            + self
                .capacity_rows
                .as_ref()
                .map_or(0, CapacityRows::encoded_len)
            + match (&self.grid, &self.packed_grid) {
                (Some(grid), _) => message::encoded_len(GRID_TAG, grid),
                (None, Some(packed)) => packed.encoded_len(),
                (None, None) => 0,
            }
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

/// Decodes the grid with its counter columns read by [`read_packed`]. prost decodes a packed
/// column a varint at a time through `Buf`, each with its own bounds, chunk and advance calls,
/// and straight from the receive buffer through its layers too (a length limit over tonic's
/// buffer over `BytesMut`): 42 % of a client's CPU for 20 × 200 grids (the bench harness;
/// order-routing reads one per order). Taking the grid's bytes out of tonic's buffer does not
/// copy them. Anything else, and any column that does not decode, goes to the generated code,
/// which reports what is wrong.
fn merge_grid(
    wire_type: WireType,
    grid: &mut AvailabilityGrid,
    buf: &mut impl Buf,
    ctx: DecodeContext,
) -> Result<(), prost::DecodeError> {
    let mut body = prost::bytes::Bytes::new();
    prost::encoding::bytes::merge(wire_type, &mut body, buf, ctx.clone())?;
    let mut rest: &[u8] = &body;
    while !rest.is_empty() {
        let (tag, wire_type) = prost::encoding::decode_key(&mut rest)?;
        if wire_type == WireType::LengthDelimited
            && let Some(column) = counter_column(grid, tag)
        {
            let field = rest;
            let len = prost::encoding::decode_varint(&mut rest)?;
            if let Some(packed) = usize::try_from(len).ok().and_then(|len| rest.get(..len)) {
                rest = &rest[packed.len()..];
                if read_packed(packed, column) {
                    continue;
                }
            }
            rest = field;
        }
        <AvailabilityGrid as prost::Message>::merge_field(
            grid,
            tag,
            wire_type,
            &mut rest,
            ctx.clone(),
        )?;
    }
    Ok(())
}

fn counter_column(grid: &mut AvailabilityGrid, tag: u32) -> Option<&mut Vec<i64>> {
    match tag {
        3 => Some(&mut grid.on_hand),
        4 => Some(&mut grid.reserved),
        5 => Some(&mut grid.safety_stock),
        6 => Some(&mut grid.available),
        _ => None,
    }
}

/// Appends a packed int64 column to `column`; false if a varint in it is malformed. Counters
/// take one or two bytes; longer ones go through prost's decoder.
fn read_packed(packed: &[u8], column: &mut Vec<i64>) -> bool {
    column.reserve(packed.len() / 2);
    let mut bytes = packed;
    while let Some((&first, tail)) = bytes.split_first() {
        if first < 0x80 {
            column.push(i64::from(first));
            bytes = tail;
            continue;
        }
        match tail.split_first() {
            Some((&second, tail)) if second < 0x80 => {
                column.push(i64::from(first & 0x7f) | (i64::from(second) << 7));
                bytes = tail;
            }
            _ => match prost::encoding::decode_varint(&mut bytes) {
                Ok(value) => column.push(value as i64),
                Err(_) => return false,
            },
        }
    }
    true
}

// The proto3 JSON mapping, as pbjson writes the generated messages: camelCase names, empty
// repeated fields left out.
impl serde::Serialize for GetAvailabilityResponse {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let has_levels = !self.levels.is_empty() || !self.level_grid.is_empty();
        let has_capacities = !self.capacities.is_empty()
            || self
                .capacity_rows
                .as_ref()
                .is_some_and(|rows| !rows.rows.is_empty());
        let grid = self.wire_grid().map_err(serde::ser::Error::custom)?;
        let mut s = serializer.serialize_struct(
            "omni.inventory.v1.GetAvailabilityResponse",
            usize::from(has_levels) + usize::from(has_capacities) + usize::from(grid.is_some()),
        )?;
        if has_levels {
            let rows: Vec<StockLevel> = self
                .levels
                .iter()
                .cloned()
                .chain(self.level_grid.rows())
                .collect();
            s.serialize_field("levels", &rows)?;
        }
        if has_capacities {
            let rows: Vec<LocationCapacity> = self
                .capacities
                .iter()
                .cloned()
                .chain(
                    self.capacity_rows
                        .iter()
                        .flat_map(CapacityRows::to_messages),
                )
                .collect();
            s.serialize_field("capacities", &rows)?;
        }
        if let Some(grid) = &grid {
            s.serialize_field("grid", grid.as_ref())?;
        }
        s.end()
    }
}

impl<'de> serde::Deserialize<'de> for GetAvailabilityResponse {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        struct Json {
            #[serde(default)]
            levels: Option<Vec<StockLevel>>,
            #[serde(default)]
            capacities: Option<Vec<LocationCapacity>>,
            #[serde(default)]
            grid: Option<AvailabilityGrid>,
        }
        let json = Json::deserialize(deserializer)?;
        Ok(Self {
            levels: json.levels.unwrap_or_default(),
            capacities: json.capacities.unwrap_or_default(),
            grid: json.grid,
            level_grid: LevelGrid::default(),
            packed_grid: None,
            capacity_rows: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    /// The generated form of the same message, to compare encodings with.
    #[derive(Clone, PartialEq, prost::Message)]
    struct Generated {
        #[prost(message, repeated, tag = "1")]
        levels: Vec<StockLevel>,
        #[prost(message, repeated, tag = "2")]
        capacities: Vec<LocationCapacity>,
        #[prost(message, optional, tag = "3")]
        grid: Option<AvailabilityGrid>,
    }

    fn counters(i: i64) -> Counters {
        // Zeros, negatives (a shortage) and multi-byte varints all appear.
        Counters {
            on_hand: (i % 3) * 1_000 - 1,
            reserved: i % 2,
            safety_stock: 0,
            available: (i % 3) * 1_000,
        }
    }

    fn grid() -> LevelGrid {
        let skus = vec!["SKU-1".to_owned(), "SKU-22".to_owned(), "S".to_owned()];
        let locations = vec!["wh-1".to_owned(), "store-longer-id".to_owned()];
        let cells = (0..6).map(counters).collect();
        LevelGrid::new(skus, locations, cells).unwrap()
    }

    fn capacity() -> LocationCapacity {
        LocationCapacity {
            location_id: "wh-1".to_owned(),
            daily_capacity: 10,
            used_today: 3,
            capacity_left_today: 7,
            unlimited: false,
            local_date: "2026-12-07".to_owned(),
        }
    }

    #[test]
    fn capacity_rows_encode_exactly_as_the_generated_messages_would() {
        let ids: Arc<[String]> = vec!["wh-1".to_owned(), "store-longer-id".to_owned()].into();
        let date: Arc<str> = "2026-12-07".into();
        let rows = CapacityRows::new(
            Arc::clone(&ids),
            vec![
                CapacityRow {
                    daily_capacity: 10,
                    used_today: 3,
                    capacity_left_today: 7,
                    unlimited: false,
                    local_date: Arc::clone(&date),
                },
                // Zeros and false are left out, as proto3 leaves them out.
                CapacityRow {
                    daily_capacity: 0,
                    used_today: 0,
                    capacity_left_today: 0,
                    unlimited: true,
                    local_date: date,
                },
            ],
        )
        .unwrap();
        let generated = GetAvailabilityResponse {
            capacities: rows.to_messages().collect(),
            ..Default::default()
        };
        assert_eq!(generated.capacities[0], capacity());
        let built = GetAvailabilityResponse {
            capacity_rows: Some(rows),
            ..Default::default()
        };
        assert_eq!(built.encoded_len(), generated.encoded_len());
        assert_eq!(built.encode_to_vec(), generated.encode_to_vec());
        let decoded = GetAvailabilityResponse::decode(built.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded.capacities, generated.capacities);
        assert_eq!(
            serde_json::to_value(&built).unwrap(),
            serde_json::to_value(&generated).unwrap()
        );
    }

    #[test]
    fn capacity_rows_must_name_one_location_each() {
        let ids: Arc<[String]> = vec!["wh-1".to_owned()].into();
        assert_eq!(
            CapacityRows::new(ids, Vec::new()),
            Err(CapacityShapeError {
                rows: 0,
                locations: 1
            })
        );
    }

    #[test]
    fn a_grid_encodes_exactly_as_the_generated_rows_would() {
        let grid = grid();
        let first = StockLevel {
            sku: "A".to_owned(),
            location_id: "wh-9".to_owned(),
            on_hand: 5,
            reserved: 0,
            safety_stock: 1,
            available: 4,
        };
        let built = GetAvailabilityResponse {
            levels: vec![first.clone()],
            capacities: vec![capacity()],
            level_grid: grid.clone(),
            ..Default::default()
        };
        let generated = Generated {
            levels: std::iter::once(first).chain(grid.rows()).collect(),
            capacities: vec![capacity()],
            grid: None,
        };
        assert_eq!(built.encoded_len(), generated.encoded_len());
        assert_eq!(built.encode_to_vec(), generated.encode_to_vec());
    }

    #[test]
    fn decoding_fills_the_levels_in_grid_order() {
        let built = GetAvailabilityResponse {
            levels: Vec::new(),
            capacities: vec![capacity()],
            level_grid: grid(),
            ..Default::default()
        };
        let decoded = GetAvailabilityResponse::decode(built.encode_to_vec().as_slice()).unwrap();
        assert!(decoded.level_grid.is_empty());
        assert_eq!(decoded.grid, None);
        assert_eq!(decoded.capacities, vec![capacity()]);
        let skus: Vec<(&str, &str)> = decoded
            .levels
            .iter()
            .map(|l| (l.sku.as_str(), l.location_id.as_str()))
            .collect();
        assert_eq!(
            skus,
            [
                ("SKU-1", "wh-1"),
                ("SKU-1", "store-longer-id"),
                ("SKU-22", "wh-1"),
                ("SKU-22", "store-longer-id"),
                ("S", "wh-1"),
                ("S", "store-longer-id"),
            ]
        );
        assert_eq!(decoded.levels[4].on_hand, counters(4).on_hand);
        assert_eq!(decoded.levels, built.level_grid.rows().collect::<Vec<_>>());
    }

    #[test]
    fn a_grid_whose_counters_do_not_fill_it_is_refused() {
        let e = LevelGrid::new(vec!["A".to_owned()], vec!["x".to_owned()], Vec::new());
        assert_eq!(
            e,
            Err(GridShapeError {
                skus: 1,
                locations: 1,
                expected: 1,
                got: 0
            })
        );
    }

    #[test]
    fn json_names_every_row_once_whichever_way_it_was_built() {
        let built = GetAvailabilityResponse {
            levels: Vec::new(),
            level_grid: grid(),
            ..Default::default()
        };
        let json = serde_json::to_value(&built).unwrap();
        assert_eq!(json["levels"].as_array().unwrap().len(), 6);
        assert_eq!(json["levels"][1]["locationId"], "store-longer-id");
        assert!(
            json.get("capacities").is_none(),
            "empty fields are left out"
        );
        let back: GetAvailabilityResponse = serde_json::from_value(json).unwrap();
        assert_eq!(back.levels, built.level_grid.rows().collect::<Vec<_>>());
        let empty: GetAvailabilityResponse = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, GetAvailabilityResponse::default());
    }

    #[test]
    fn a_pushed_varint_is_prosts_varint() {
        let values = (0..70).flat_map(|shift| {
            let v = 1u64 << (shift % 64);
            [v - 1, v, v + 1, (v as i64).wrapping_neg() as u64]
        });
        for value in values.chain([0, u64::MAX]) {
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            push_varint(value, &mut ours);
            encode_varint(value, &mut theirs);
            assert_eq!(ours, theirs, "{value}");
        }
    }

    /// Layout GRID's columns read straight off a grid: what `PackedGrid` must encode.
    fn columns_of(grid: LevelGrid) -> AvailabilityGrid {
        let column = |field: fn(&Counters) -> i64| grid.counters.iter().map(field).collect();
        AvailabilityGrid {
            on_hand: column(|c| c.on_hand),
            reserved: column(|c| c.reserved),
            safety_stock: column(|c| c.safety_stock),
            available: column(|c| c.available),
            skus: grid.skus.clone(),
            location_ids: grid.location_ids.to_vec(),
        }
    }

    /// An answer in layout GRID as a server builds it.
    fn packed_answer() -> GetAvailabilityResponse {
        GetAvailabilityResponse {
            capacities: vec![capacity()],
            packed_grid: Some(PackedGrid::from(grid())),
            ..Default::default()
        }
    }

    #[test]
    fn a_packed_grid_holds_the_same_cells_as_the_rows() {
        let packed = columns_of(grid());
        assert_eq!(packed.check_shape(), Ok(()));
        assert_eq!(packed.skus, ["SKU-1", "SKU-22", "S"]);
        assert_eq!(packed.location_ids, ["wh-1", "store-longer-id"]);
        assert_eq!(packed.on_hand[4], counters(4).on_hand);
        assert_eq!(
            packed.rows().collect::<Vec<_>>(),
            grid().rows().collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_grid_read_through_layered_buffers_is_the_grid_sent_and_a_cut_one_is_refused() {
        use prost::bytes::{Buf, Bytes};
        let wire = Bytes::from(packed_answer().encode_to_vec());
        // As tonic hands a message over: a limit over a buffer that holds more.
        let mut framed = Bytes::from([wire.to_vec(), vec![0xff; 7]].concat());
        let decoded = GetAvailabilityResponse::decode((&mut framed).take(wire.len())).unwrap();
        assert_eq!(
            Some(decoded.grid.unwrap()),
            packed_answer().packed_grid.map(|p| p.to_grid().unwrap())
        );
        assert_eq!(framed.remaining(), 7, "nothing past the message is read");
        let cut = wire.slice(..wire.len() - 3);
        assert!(GetAvailabilityResponse::decode(cut).is_err());
    }

    #[test]
    fn counters_of_every_size_decode_as_prost_decodes_them() {
        let values: Vec<i64> = (0..64)
            .flat_map(|shift| {
                let v = 1i64.wrapping_shl(shift);
                [v.wrapping_sub(1), v, v.wrapping_add(1), v.wrapping_neg()]
            })
            .collect();
        let sent = AvailabilityGrid {
            skus: vec!["SKU-1".to_owned()],
            location_ids: vec!["wh-1".to_owned()],
            on_hand: values.clone(),
            reserved: values.iter().rev().copied().collect(),
            safety_stock: values.clone(),
            available: values,
        };
        let wire = GetAvailabilityResponse {
            grid: Some(sent.clone()),
            ..Default::default()
        }
        .encode_to_vec();
        let decoded = GetAvailabilityResponse::decode(wire.as_slice()).unwrap();
        assert_eq!(decoded.grid, Some(sent));
    }

    #[test]
    fn a_malformed_column_is_refused() {
        // Field 3, packed, 2 bytes long: a varint whose continuation never ends.
        let grid = [0x1a, 0x02, 0x80, 0x80];
        let wire = [&[0x1a, grid.len() as u8][..], &grid].concat();
        assert!(GetAvailabilityResponse::decode(wire.as_slice()).is_err());
    }

    #[test]
    fn a_packed_grid_is_the_generated_message_on_the_wire() {
        let built = packed_answer();
        let generated = Generated {
            levels: Vec::new(),
            capacities: vec![capacity()],
            grid: Some(columns_of(grid())),
        };
        assert_eq!(built.encoded_len(), generated.encoded_len());
        assert_eq!(built.encode_to_vec(), generated.encode_to_vec());
        let decoded = GetAvailabilityResponse::decode(built.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded.grid, Some(columns_of(grid())));
        assert_eq!(decoded.capacities, vec![capacity()]);
        assert!(decoded.levels.is_empty());
        assert_eq!(
            built.all_levels().collect::<Vec<_>>(),
            grid().rows().collect::<Vec<_>>()
        );
        assert_eq!(
            decoded.all_levels().collect::<Vec<_>>(),
            grid().rows().collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_product_list_in_a_grid_is_a_fraction_of_its_rows() {
        let skus: Vec<String> = (0..20).map(|i| format!("SKU-{i:05}")).collect();
        let locations: Vec<String> = (0..200).map(|i| format!("store-{i:04}")).collect();
        let cells = (0..4_000)
            .map(|i| Counters {
                on_hand: 100 + i % 400,
                reserved: i % 7,
                safety_stock: 2,
                available: 98 + i % 400 - i % 7,
            })
            .collect();
        let level_grid = LevelGrid::new(skus, locations, cells).unwrap();
        let rows = GetAvailabilityResponse {
            level_grid: level_grid.clone(),
            ..Default::default()
        };
        let packed = GetAvailabilityResponse {
            packed_grid: Some(PackedGrid::from(level_grid)),
            ..Default::default()
        };
        let (rows, packed) = (rows.encoded_len(), packed.encoded_len());
        assert!(packed * 4 < rows, "grid {packed} bytes against rows {rows}");
    }

    #[test]
    fn a_grid_with_a_short_column_is_refused_and_yields_no_rows() {
        let mut packed = columns_of(grid());
        packed.reserved.pop();
        assert_eq!(
            packed.check_shape(),
            Err(GridShapeError {
                skus: 3,
                locations: 2,
                expected: 6,
                got: 5
            })
        );
        assert_eq!(packed.rows().count(), 0);
    }

    #[test]
    fn json_of_a_packed_answer_keeps_the_grid() {
        let built = packed_answer();
        let json = serde_json::to_value(&built).unwrap();
        assert!(json.get("levels").is_none());
        assert_eq!(json["grid"]["locationIds"][1], "store-longer-id");
        let back: GetAvailabilityResponse = serde_json::from_value(json).unwrap();
        assert_eq!(back.grid, Some(columns_of(grid())));
        assert_eq!(back.capacities, built.capacities);
    }
}
