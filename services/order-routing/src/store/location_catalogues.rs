//! Where each location was when orders routed over it, stored once for all of those orders.
//!
//! A stored planner input lists every candidate's kind and coordinates. Over 200 locations
//! those were ~5 KB of incompressible digits per order, written to the table and the WAL again
//! for every order although they change only when a location opens or moves. A catalogue holds
//! them once: its rows sorted by location id, its id a hash of its text, so two processes that
//! see the same locations write the same catalogue and never a conflicting one. Stored planner
//! inputs of form 3 name their catalogue and refer to its rows by index.
//!
//! Catalogues are never changed or deleted. This process keeps the newest it wrote or read and
//! writes a new one, with the order that needs it, only when an order's candidates include a
//! location that catalogue lacks or lists elsewhere.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use omni_types::{GeoPoint, LocationId};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use super::entities::location_catalogues::{self, Column, Entity};
use super::{StoreError, from_json, to_json};
use crate::domain::planner::{Candidate, LocationKind};

/// Catalogues read back are kept this many at most; a replay reads one or a few.
const READ_CACHE: usize = 16;

/// `[location, kind, lat, lon]`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct CataloguedLocation(pub LocationId, pub LocationKind, pub f64, pub f64);

impl CataloguedLocation {
    fn of(c: &Candidate) -> Self {
        Self(c.location.clone(), c.kind, c.point.lat(), c.point.lon())
    }

    /// Exactly as `c` has it: a location that moved by a metre is a different row.
    fn lists(&self, c: &Candidate) -> bool {
        self.0 == c.location
            && self.1 == c.kind
            && self.2.to_bits() == c.point.lat().to_bits()
            && self.3.to_bits() == c.point.lon().to_bits()
    }

    pub(super) fn point(&self) -> Result<GeoPoint, String> {
        GeoPoint::parse(self.2, self.3).map_err(|e| format!("location {}: {e}", self.0))
    }
}

#[derive(Debug)]
pub struct Catalogue {
    id: String,
    text: String,
    rows: Vec<CataloguedLocation>,
    index: HashMap<LocationId, u32>,
}

impl Catalogue {
    fn new(mut rows: Vec<CataloguedLocation>) -> Result<Self, StoreError> {
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        let text = to_json(&rows)?;
        let id = crate::service::sha256_hex(text.as_bytes())[..32].to_owned();
        Ok(Self::indexed(id, text, rows))
    }

    /// The catalogue of exactly `candidates`' locations.
    pub(super) fn listing(candidates: &[Candidate]) -> Result<Self, StoreError> {
        Self::new(candidates.iter().map(CataloguedLocation::of).collect())
    }

    fn read(id: String, text: String) -> Result<Self, StoreError> {
        let rows: Vec<CataloguedLocation> = from_json(&text)
            .map_err(|e| StoreError::Corrupt(format!("location catalogue {id}: {e}")))?;
        Ok(Self::indexed(id, text, rows))
    }

    fn indexed(id: String, text: String, rows: Vec<CataloguedLocation>) -> Self {
        let index = rows
            .iter()
            .enumerate()
            .map(|(i, row)| (row.0.clone(), i as u32))
            .collect();
        Self {
            id,
            text,
            rows,
            index,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The row that lists `c` as it is, if this catalogue has one.
    pub(super) fn index_of(&self, c: &Candidate) -> Option<u32> {
        let &i = self.index.get(&c.location)?;
        self.rows[i as usize].lists(c).then_some(i)
    }

    pub(super) fn row(&self, i: u32) -> Option<&CataloguedLocation> {
        self.rows.get(i as usize)
    }

    /// The row of each of `candidates`, in their order; an error naming the first this
    /// catalogue does not list as it is.
    pub(super) fn rows_of(&self, candidates: &[Candidate]) -> Result<Vec<u32>, StoreError> {
        candidates
            .iter()
            .map(|c| {
                self.index_of(c).ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "location {} is not in catalogue {} as the order saw it",
                        c.location, self.id
                    ))
                })
            })
            .collect()
    }

    /// This catalogue with `candidates`' rows added or, for locations that moved, replacing
    /// their old ones.
    fn extended(&self, candidates: &[Candidate]) -> Result<Self, StoreError> {
        let mut rows: BTreeMap<&LocationId, CataloguedLocation> =
            self.rows.iter().map(|r| (&r.0, r.clone())).collect();
        for c in candidates {
            rows.insert(&c.location, CataloguedLocation::of(c));
        }
        Self::new(rows.into_values().collect())
    }
}

/// A catalogue an order refers to, whether it must be written with that order, and the row of
/// each of the order's candidates in it.
pub struct CatalogueFor {
    pub catalogue: Arc<Catalogue>,
    pub is_new: bool,
    pub rows: Vec<u32>,
}

#[derive(Default)]
pub struct LocationCatalogues {
    newest: Mutex<Option<Arc<Catalogue>>>,
    /// Set once the newest stored catalogue was read, so a restart writes no new one.
    started: OnceCell<()>,
    read: Mutex<HashMap<String, Arc<Catalogue>>>,
}

impl LocationCatalogues {
    /// The catalogue that lists every one of `candidates` as it is: the newest if it does,
    /// otherwise a new one, to be written with the order (in its statement on PostgreSQL, by
    /// `insert_if_new` in its transaction on SQLite) and then [`adopt`](Self::adopt)ed.
    pub async fn for_candidates<C: ConnectionTrait>(
        &self,
        db: &C,
        candidates: &[Candidate],
    ) -> Result<CatalogueFor, StoreError> {
        self.started
            .get_or_try_init(|| async {
                if let Some(stored) = newest_stored(db).await? {
                    self.adopt(Arc::new(stored));
                }
                Ok::<_, StoreError>(())
            })
            .await?;
        let newest = self
            .newest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(newest) = &newest
            && let Ok(rows) = newest.rows_of(candidates)
        {
            return Ok(CatalogueFor {
                catalogue: Arc::clone(newest),
                is_new: false,
                rows,
            });
        }
        let catalogue = Arc::new(match newest {
            Some(newest) => newest.extended(candidates)?,
            None => Catalogue::listing(candidates)?,
        });
        let rows = catalogue.rows_of(candidates)?;
        Ok(CatalogueFor {
            catalogue,
            is_new: true,
            rows,
        })
    }

    /// Makes a catalogue that is now stored the one later orders refer to.
    pub fn adopt(&self, catalogue: Arc<Catalogue>) {
        *self.newest.lock().unwrap_or_else(PoisonError::into_inner) = Some(catalogue);
    }

    /// The catalogues `ids` name, from memory or in one query.
    pub async fn fetch<C: ConnectionTrait>(
        &self,
        db: &C,
        ids: BTreeSet<&str>,
    ) -> Result<HashMap<String, Arc<Catalogue>>, StoreError> {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        {
            let read = self.read.lock().unwrap_or_else(PoisonError::into_inner);
            let newest = self.newest.lock().unwrap_or_else(PoisonError::into_inner);
            for id in ids {
                let known = read
                    .get(id)
                    .or_else(|| newest.as_ref().filter(|n| n.id == id));
                match known {
                    Some(c) => {
                        found.insert(id.to_owned(), Arc::clone(c));
                    }
                    None => missing.push(id.to_owned()),
                }
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let rows = Entity::find()
            .filter(Column::Id.is_in(missing.iter().cloned()))
            .all(db)
            .await?;
        let mut read = self.read.lock().unwrap_or_else(PoisonError::into_inner);
        for row in rows {
            let catalogue = Arc::new(Catalogue::read(row.id, row.locations)?);
            if read.len() >= READ_CACHE {
                read.clear();
            }
            read.insert(catalogue.id.clone(), Arc::clone(&catalogue));
            found.insert(catalogue.id.clone(), catalogue);
        }
        if let Some(id) = missing.iter().find(|id| !found.contains_key(*id)) {
            return Err(StoreError::Corrupt(format!(
                "location catalogue {id} is referred to but not stored"
            )));
        }
        Ok(found)
    }
}

async fn newest_stored<C: ConnectionTrait>(db: &C) -> Result<Option<Catalogue>, StoreError> {
    Entity::find()
        .order_by_desc(Column::CreatedAt)
        .one(db)
        .await?
        .map(|row| Catalogue::read(row.id, row.locations))
        .transpose()
}

/// The values of a catalogue row, for a statement written by hand: id, locations, created at.
pub(super) fn row_values(catalogue: &Catalogue, now: DateTime<Utc>) -> Vec<sea_orm::Value> {
    vec![
        catalogue.id.clone().into(),
        catalogue.text.clone().into(),
        now.into(),
    ]
}

/// Stores `catalogue` unless it is stored already (by this or another process).
pub(super) async fn insert_if_new<C: ConnectionTrait>(
    db: &C,
    catalogue: &Catalogue,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    Entity::insert(location_catalogues::ActiveModel {
        id: Set(catalogue.id.clone()),
        locations: Set(catalogue.text.clone()),
        created_at: Set(now),
    })
    .on_conflict(OnConflict::column(Column::Id).do_nothing().to_owned())
    .exec_without_returning(db)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::planner::tests::{candidate, store, warehouse};

    fn candidates() -> Vec<Candidate> {
        vec![
            candidate(store("s1", 31.23, 121.47), &[("A", 1)]),
            candidate(warehouse("w1", 31.0, 121.0), &[("A", 5)]),
        ]
    }

    #[test]
    fn the_same_locations_make_the_same_catalogue_whatever_their_order() {
        let mut reversed = candidates();
        reversed.reverse();
        let (a, b) = (
            Catalogue::listing(&candidates()).unwrap(),
            Catalogue::listing(&reversed).unwrap(),
        );
        assert_eq!(a.id(), b.id());
        assert_eq!(a.id().len(), 32);
        let stored = Catalogue::read(a.id().to_owned(), a.text.clone()).unwrap();
        assert_eq!(
            stored.index_of(&candidates()[1]),
            Some(1),
            "rows sorted by id"
        );
    }

    #[test]
    fn a_location_that_moved_is_not_listed_until_the_catalogue_is_extended() {
        let catalogue = Catalogue::listing(&candidates()).unwrap();
        let mut moved = candidates();
        moved[1].point = GeoPoint::parse(31.0, 121.000_001).unwrap();
        assert_eq!(catalogue.index_of(&moved[1]), None);
        assert!(catalogue.rows_of(&moved).is_err());
        let opened = candidate(warehouse("w0", 30.0, 120.0), &[]);
        let extended = catalogue
            .extended(&[moved[1].clone(), opened.clone()])
            .unwrap();
        assert_eq!(
            extended.rows.len(),
            3,
            "the moved row replaced, the new one added"
        );
        assert!(extended.rows_of(&moved).is_ok());
        assert_eq!(extended.index_of(&opened), Some(1), "s1, w0, w1");
        assert_eq!(
            extended.index_of(&candidates()[1]),
            None,
            "the old place is gone"
        );
    }

    #[test]
    fn a_catalogue_that_is_not_json_rows_is_corrupt_by_id() {
        let e = Catalogue::read("abc".to_owned(), "[[1]]".to_owned()).unwrap_err();
        assert!(e.to_string().contains("location catalogue abc"), "{e}");
    }
}
