//! Journeys across the three services live in `tests/it`.
