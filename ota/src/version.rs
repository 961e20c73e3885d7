//! Release versions: semantic versioning `MAJOR.MINOR.PATCH[-PRERELEASE]`.
//!
//! Hand-written rather than the `semver` crate because the device needs exactly one
//! thing from it — a total order for the downgrade check — and a stricter grammar:
//! build metadata (`+…`) is refused, because semver ignores it when ordering, so two
//! different bundles could claim "the same version" and neither would be installable
//! over the other without `force`.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// Longest version string accepted; bounds work done on untrusted input.
pub const MAX_VERSION_LEN: usize = 64;

/// A parsed version. Its `Display` output is the canonical spelling, identical to the
/// text it was parsed from (leading zeros and other alternative spellings are refused).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    /// Pre-release identifiers; empty for a release. `1.0.0-rc.1 < 1.0.0`.
    pub pre: Vec<PreId>,
}

/// One dot-separated pre-release identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PreId {
    Numeric(u64),
    Alpha(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid version {text:?}: {reason} (expected MAJOR.MINOR.PATCH with an optional -PRERELEASE)"
)]
pub struct VersionError {
    text: String,
    reason: &'static str,
}

impl Version {
    pub const fn new(major: u64, minor: u64, patch: u64) -> Self {
        Version {
            major,
            minor,
            patch,
            pre: Vec::new(),
        }
    }

    pub fn is_prerelease(&self) -> bool {
        !self.pre.is_empty()
    }
}

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |reason| VersionError {
            // Untrusted input: keep the error message bounded too.
            text: text.chars().take(MAX_VERSION_LEN).collect(),
            reason,
        };
        if text.len() > MAX_VERSION_LEN {
            return Err(fail("too long"));
        }
        if text.contains('+') {
            return Err(fail("build metadata (+...) is not allowed"));
        }
        let (core, pre) = match text.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (text, None),
        };
        let mut parts = core.split('.');
        let mut number = || -> Result<u64, VersionError> {
            let part = parts.next().ok_or_else(|| fail("missing component"))?;
            parse_numeric(part)
                .ok_or_else(|| fail("components must be numbers without leading zeros"))
        };
        let (major, minor, patch) = (number()?, number()?, number()?);
        if parts.next().is_some() {
            return Err(fail("more than three components"));
        }
        let pre = match pre {
            None => Vec::new(),
            Some(pre) => pre
                .split('.')
                .map(|id| parse_pre_id(id).ok_or_else(|| fail("bad pre-release identifier")))
                .collect::<Result<_, _>>()?,
        };
        Ok(Version {
            major,
            minor,
            patch,
            pre,
        })
    }
}

/// A decimal number in canonical form: digits only, no leading zero, fits in u64.
fn parse_numeric(s: &str) -> Option<u64> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if canonical { s.parse().ok() } else { None }
}

fn parse_pre_id(s: &str) -> Option<PreId> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        parse_numeric(s).map(PreId::Numeric)
    } else {
        Some(PreId::Alpha(s.to_owned()))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        for (i, id) in self.pre.iter().enumerate() {
            f.write_str(if i == 0 { "-" } else { "." })?;
            match id {
                PreId::Numeric(n) => write!(f, "{n}")?,
                PreId::Alpha(s) => f.write_str(s)?,
            }
        }
        Ok(())
    }
}

/// Semver precedence (semver.org §11).
impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                // A pre-release comes before the release it leads up to.
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                // Slices compare element-wise, then a shorter prefix first: as semver says.
                (false, false) => self.pre.cmp(&other.pre),
            })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PreId {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PreId::Numeric(a), PreId::Numeric(b)) => a.cmp(b),
            (PreId::Numeric(_), PreId::Alpha(_)) => Ordering::Less,
            (PreId::Alpha(_), PreId::Numeric(_)) => Ordering::Greater,
            (PreId::Alpha(a), PreId::Alpha(b)) => a.as_bytes().cmp(b.as_bytes()),
        }
    }
}

impl PartialOrd for PreId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

// The manifest stores versions as strings; these make serde go through `FromStr`.
impl TryFrom<String> for Version {
    type Error = VersionError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Version> for String {
    fn from(v: Version) -> String {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_prints_canonically() {
        for s in [
            "0.0.0",
            "1.2.3",
            "10.20.30",
            "1.0.0-rc.1",
            "1.0.0-alpha-1.x.7",
            "1.0.0-0",
        ] {
            assert_eq!(v(s).to_string(), s);
        }
        assert_eq!(v("1.2.3"), Version::new(1, 2, 3));
        assert!(v("1.0.0-rc.1").is_prerelease());
    }

    #[test]
    fn refuses_non_canonical_or_malformed() {
        for s in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "1.02.3",
            "1.2.03",
            "1.2.3-",
            "1.2.3-rc..1",
            "1.2.3-01",
            "1.2.3+build",
            "1.2.3-rc+b",
            "v1.2.3",
            " 1.2.3",
            "1.2.3 ",
            "1.2.-3",
            "1.2.3-rc_1",
            "18446744073709551616.0.0",
        ] {
            assert!(s.parse::<Version>().is_err(), "{s:?} should be refused");
        }
        let long = format!("1.2.3-{}", "a".repeat(100));
        let err = long.parse::<Version>().unwrap_err().to_string();
        assert!(err.contains("too long"), "{err}");
    }

    #[test]
    fn orders_by_semver_precedence() {
        // The example chain from semver.org, plus numeric-vs-numeric by value.
        let chain = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.1.0",
            "1.10.0",
            "2.0.0",
        ];
        for pair in chain.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
    }
}
