//! The manifest's creation time: RFC 3339 in UTC to the second, `2026-05-01T12:00:00Z`.
//!
//! Only that one spelling is accepted, so the manifest stays canonical, and it needs
//! no date library: the civil-calendar conversion is Howard Hinnant's `days_from_civil`.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, UTC. Years 1970–9999 only.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Timestamp(u64);

/// 9999-12-31T23:59:59Z: keeps the year at four digits.
const MAX_SECONDS: u64 = 253_402_300_799;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid timestamp {0:?} (expected YYYY-MM-DDTHH:MM:SSZ in UTC)")]
pub struct TimestampError(String);

impl Timestamp {
    pub fn from_unix(seconds: u64) -> Option<Self> {
        (seconds <= MAX_SECONDS).then_some(Timestamp(seconds))
    }

    pub fn unix(self) -> u64 {
        self.0
    }

    /// The current time, or `SOURCE_DATE_EPOCH` when set, so that release builds can
    /// produce byte-identical bundles (reproducible-builds.org convention).
    pub fn now_or_source_date_epoch() -> Option<Self> {
        if let Ok(value) = std::env::var("SOURCE_DATE_EPOCH") {
            return value.trim().parse().ok().and_then(Self::from_unix);
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
        Self::from_unix(now.as_secs())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0 / 86_400;
        let secs = self.0 % 86_400;
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = || TimestampError(text.chars().take(40).collect());
        let b = text.as_bytes();
        if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
            return Err(fail());
        }
        if b[13] != b':' || b[16] != b':' || b[19] != b'Z' {
            return Err(fail());
        }
        let num = |range: std::ops::Range<usize>| -> Result<u64, TimestampError> {
            let digits = &b[range];
            if !digits.iter().all(u8::is_ascii_digit) {
                return Err(fail());
            }
            Ok(digits.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
        };
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if year < 1970 || !(1..=12).contains(&month) || hour > 23 || minute > 59 || second > 59 {
            return Err(fail());
        }
        if day < 1 || day > days_in_month(year, month) {
            return Err(fail());
        }
        let days = days_from_civil(year, month, day);
        Ok(Timestamp(
            days * 86_400 + hour * 3600 + minute * 60 + second,
        ))
    }
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date, for years >= 1970.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

impl TryFrom<String> for Timestamp {
    type Error = TimestampError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Timestamp> for String {
    fn from(t: Timestamp) -> String {
        t.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_709_210_096, "2024-02-29T12:34:56Z"),
            (MAX_SECONDS, "9999-12-31T23:59:59Z"),
        ];
        for (secs, text) in cases {
            let t = Timestamp::from_unix(secs).unwrap();
            assert_eq!(t.to_string(), text);
            assert_eq!(text.parse::<Timestamp>().unwrap(), t);
        }
        assert_eq!(Timestamp::from_unix(MAX_SECONDS + 1), None);
    }

    #[test]
    fn round_trips_every_day_boundary_for_decades() {
        for day in (0..40_000u64).step_by(7) {
            let t = Timestamp(day * 86_400 + 86_399);
            assert_eq!(t.to_string().parse::<Timestamp>().unwrap(), t);
        }
    }

    #[test]
    fn refuses_other_spellings_and_impossible_dates() {
        for s in [
            "2024-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-00-01T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:60:00Z",
            "2024-01-01T00:00:60Z",
            "2024-01-01 00:00:00Z",
            "2024-01-01T00:00:00+00:00",
            "2024-01-01T00:00:00z",
            "2024-01-01T00:00:00.0Z",
            "1969-12-31T23:59:59Z",
            "+024-01-01T00:00:00Z",
        ] {
            assert!(s.parse::<Timestamp>().is_err(), "{s:?} should be refused");
        }
    }
}
