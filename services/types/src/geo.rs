use serde::{Deserialize, Serialize};

use crate::ValueError;

/// A point on the earth in degrees (WGS 84).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    lat: f64,
    lon: f64,
}

const EARTH_RADIUS_KM: f64 = 6_371.008_8;

impl GeoPoint {
    pub fn parse(lat: f64, lon: f64) -> Result<Self, ValueError> {
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(ValueError::Malformed(format!(
                "latitude must be between -90 and 90, got {lat}"
            )));
        }
        if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
            return Err(ValueError::Malformed(format!(
                "longitude must be between -180 and 180, got {lon}"
            )));
        }
        Ok(Self { lat, lon })
    }

    pub fn lat(&self) -> f64 {
        self.lat
    }

    pub fn lon(&self) -> f64 {
        self.lon
    }

    /// Great-circle distance by the haversine formula, in kilometres.
    pub fn distance_km(&self, other: &GeoPoint) -> f64 {
        let (lat1, lat2) = (self.lat.to_radians(), other.lat.to_radians());
        let dlat = lat2 - lat1;
        let dlon = (other.lon - self.lon).to_radians();
        let a = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_out_of_range_coordinates() {
        assert!(GeoPoint::parse(90.1, 0.0).is_err());
        assert!(GeoPoint::parse(0.0, -180.5).is_err());
        assert!(GeoPoint::parse(f64::NAN, 0.0).is_err());
    }

    #[test]
    fn haversine_matches_a_known_distance() {
        // Shanghai People's Square to Beijing Tiananmen: about 1,067 km.
        let shanghai = GeoPoint::parse(31.2304, 121.4737).unwrap();
        let beijing = GeoPoint::parse(39.9087, 116.3975).unwrap();
        let d = shanghai.distance_km(&beijing);
        assert!((1_060.0..1_075.0).contains(&d), "{d}");
        assert_eq!(shanghai.distance_km(&shanghai), 0.0);
    }
}
