//! The manifest: what a bundle claims to be and what it carries.
//!
//! It travels as compact JSON and the signature covers those exact bytes. Parsing is
//! strict and ends with a canonical-form check — the bytes must equal what this module
//! would serialize for the parsed value — so a manifest has exactly one spelling:
//! no unknown fields, duplicate keys, reordered keys, whitespace or alternative number
//! and string spellings can smuggle meaning past one parser and not another.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::format::FORMAT_VERSION;
use crate::hex;
use crate::timestamp::Timestamp;
use crate::version::Version;

/// The product every ME_CAM bundle names; the policy refuses anything else.
pub const PRODUCT: &str = "mecam";
/// A bundle carries at most this many payloads (today: a root filesystem and boot files).
pub const MAX_PAYLOADS: usize = 16;
/// Longest product, board or payload name.
pub const MAX_NAME_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Must equal the header's format version.
    pub format: u16,
    pub product: String,
    pub version: Version,
    pub board: String,
    pub created: Timestamp,
    /// In the order their bytes follow the signature.
    pub payloads: Vec<PayloadInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayloadInfo {
    pub name: String,
    pub kind: PayloadKind,
    pub size: u64,
    pub sha256: Sha256,
}

/// What a payload is, and so where the device puts it. A kind the device does not
/// know is a parse error: an old device must not install half of a newer bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadKind {
    /// The root filesystem image (SquashFS/EROFS), written raw to the inactive root partition.
    Rootfs,
    /// The slot's boot files (kernel, device tree, cmdline.txt) as an archive, unpacked
    /// into the inactive slot's directory on the boot partition.
    Boot,
}

impl PayloadKind {
    pub const ALL: [PayloadKind; 2] = [PayloadKind::Rootfs, PayloadKind::Boot];

    pub fn as_str(self) -> &'static str {
        match self {
            PayloadKind::Rootfs => "rootfs",
            PayloadKind::Boot => "boot",
        }
    }
}

impl fmt::Display for PayloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PayloadKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        PayloadKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown payload kind {s:?} (known: rootfs, boot)"))
    }
}

/// A SHA-256 digest; lower-case hex in JSON and in messages.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256(pub [u8; 32]);

impl Sha256 {
    pub fn of(bytes: &[u8]) -> Self {
        Self::from_digest(&ring::digest::digest(&ring::digest::SHA256, bytes))
    }

    pub(crate) fn from_digest(d: &ring::digest::Digest) -> Self {
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        Sha256(out)
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({self})")
    }
}

impl TryFrom<String> for Sha256 {
    type Error = &'static str;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        hex::decode_array(&s)
            .map(Sha256)
            .ok_or("sha256 must be 64 lower-case hex digits")
    }
}

impl From<Sha256> for String {
    fn from(d: Sha256) -> String {
        d.to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not valid: {0}")]
    Json(String),
    #[error("manifest is not in canonical form (compact JSON, fields in the documented order)")]
    NotCanonical,
    #[error("manifest says format {manifest} but the header says {header}")]
    FormatMismatch { manifest: u16, header: u16 },
    #[error(
        "invalid {what} {value:?}: use 1-{MAX_NAME_LEN} characters from a-z, 0-9, '.', '_', '-'"
    )]
    InvalidName { what: &'static str, value: String },
    #[error("manifest lists no payloads")]
    NoPayloads,
    #[error("manifest lists {count} payloads; at most {MAX_PAYLOADS} are allowed")]
    TooManyPayloads { count: usize },
    #[error("payload name {0:?} appears more than once")]
    DuplicateName(String),
    #[error("more than one payload of kind {0}")]
    DuplicateKind(PayloadKind),
    #[error("payload {0:?} is empty")]
    EmptyPayload(String),
    #[error("payload sizes add up to more than 2^64 bytes")]
    SizeOverflow,
}

impl Manifest {
    /// Parses and validates manifest bytes from a bundle whose header names `header_format`.
    pub fn from_bytes(bytes: &[u8], header_format: u16) -> Result<Self, ManifestError> {
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
        manifest.validate()?;
        if manifest.format != header_format {
            return Err(ManifestError::FormatMismatch {
                manifest: manifest.format,
                header: header_format,
            });
        }
        if manifest.to_bytes()? != bytes {
            return Err(ManifestError::NotCanonical);
        }
        Ok(manifest)
    }

    /// The canonical bytes: what goes into the bundle and under the signature.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ManifestError> {
        self.validate()?;
        serde_json::to_vec(self).map_err(|e| ManifestError::Json(e.to_string()))
    }

    /// Everything the type system does not already guarantee.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if self.format != FORMAT_VERSION {
            // Also caught by the header check; here so that a builder cannot write one.
            return Err(ManifestError::FormatMismatch {
                manifest: self.format,
                header: FORMAT_VERSION,
            });
        }
        check_name("product", &self.product)?;
        check_name("board", &self.board)?;
        if self.payloads.is_empty() {
            return Err(ManifestError::NoPayloads);
        }
        if self.payloads.len() > MAX_PAYLOADS {
            return Err(ManifestError::TooManyPayloads {
                count: self.payloads.len(),
            });
        }
        let mut names = HashSet::new();
        let mut kinds = HashSet::new();
        for p in &self.payloads {
            check_name("payload name", &p.name)?;
            if !names.insert(p.name.as_str()) {
                return Err(ManifestError::DuplicateName(p.name.clone()));
            }
            // The device has one place per kind; two would leave it guessing.
            if !kinds.insert(p.kind) {
                return Err(ManifestError::DuplicateKind(p.kind));
            }
            if p.size == 0 {
                return Err(ManifestError::EmptyPayload(p.name.clone()));
            }
        }
        self.payload_bytes()?;
        Ok(())
    }

    /// Sum of all payload sizes.
    pub fn payload_bytes(&self) -> Result<u64, ManifestError> {
        self.payloads
            .iter()
            .try_fold(0u64, |sum, p| sum.checked_add(p.size))
            .ok_or(ManifestError::SizeOverflow)
    }

    pub fn payload(&self, kind: PayloadKind) -> Option<&PayloadInfo> {
        self.payloads.iter().find(|p| p.kind == kind)
    }
}

fn check_name(what: &'static str, value: &str) -> Result<(), ManifestError> {
    let ok = !value.is_empty()
        && value.len() <= MAX_NAME_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ManifestError::InvalidName {
            what,
            value: value.chars().take(MAX_NAME_LEN + 1).collect(),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Manifest {
        Manifest {
            format: FORMAT_VERSION,
            product: PRODUCT.into(),
            version: "1.2.3-rc.1".parse().unwrap(),
            board: "rpi-zero2w".into(),
            created: "2026-05-01T12:00:00Z".parse().unwrap(),
            payloads: vec![
                PayloadInfo {
                    name: "rootfs".into(),
                    kind: PayloadKind::Rootfs,
                    size: 300,
                    sha256: Sha256::of(b"x"),
                },
                PayloadInfo {
                    name: "boot".into(),
                    kind: PayloadKind::Boot,
                    size: 200,
                    sha256: Sha256([0xab; 32]),
                },
            ],
        }
    }

    fn reparse(json: &str) -> Result<Manifest, ManifestError> {
        Manifest::from_bytes(json.as_bytes(), FORMAT_VERSION)
    }

    #[test]
    fn canonical_bytes_round_trip_and_look_as_documented() {
        let m = sample();
        let bytes = m.to_bytes().unwrap();
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(
            text.starts_with(
                r#"{"format":1,"product":"mecam","version":"1.2.3-rc.1","board":"rpi-zero2w","created":"2026-05-01T12:00:00Z","payloads":[{"name":"rootfs","kind":"rootfs","size":300,"sha256":"2d711642"#
            ),
            "{text}"
        );
        assert_eq!(reparse(text).unwrap(), m);
    }

    #[test]
    fn refuses_non_canonical_spellings() {
        let text = String::from_utf8(sample().to_bytes().unwrap()).unwrap();
        let spaced = text.replacen(",", ", ", 1);
        assert_eq!(reparse(&spaced), Err(ManifestError::NotCanonical));
        let escaped = text.replacen("\"mecam\"", "\"\\u006decam\"", 1);
        assert_eq!(reparse(&escaped), Err(ManifestError::NotCanonical));
        let reordered = text.replacen(
            r#""format":1,"product":"mecam""#,
            r#""product":"mecam","format":1"#,
            1,
        );
        assert_eq!(reparse(&reordered), Err(ManifestError::NotCanonical));
    }

    #[test]
    fn refuses_unknown_fields_duplicates_and_bad_values() {
        let text = String::from_utf8(sample().to_bytes().unwrap()).unwrap();
        let expect_json_error = |json: String, needle: &str| match reparse(&json) {
            Err(ManifestError::Json(msg)) => assert!(msg.contains(needle), "{msg}"),
            other => panic!("expected a JSON error mentioning {needle:?}, got {other:?}"),
        };
        expect_json_error(text.replacen("{", r#"{"extra":1,"#, 1), "unknown field");
        expect_json_error(
            text.replacen("{", r#"{"board":"other","#, 1),
            "duplicate field",
        );
        expect_json_error(
            text.replacen("\"rootfs\",\"size\"", "\"kernel\",\"size\"", 1),
            "kernel",
        );
        expect_json_error(
            text.replacen("\"size\":300", "\"size\":-1", 1),
            "expected u64",
        );
        expect_json_error(
            text.replacen("\"size\":300", "\"size\":18446744073709551616", 1),
            "",
        );
        expect_json_error(text.replacen("1.2.3-rc.1", "1.2", 1), "invalid version");
        expect_json_error(text.replacen("2d711642", "2D711642", 1), "sha256");
        expect_json_error(text.replacen("12:00:00Z", "12:00:00", 1), "timestamp");
        expect_json_error(format!("{text} x"), "trailing");
    }

    #[test]
    fn validation_names_the_problem() {
        let mut m = sample();
        m.payloads[1].name = "rootfs".into();
        assert_eq!(
            m.validate(),
            Err(ManifestError::DuplicateName("rootfs".into()))
        );

        let mut m = sample();
        m.payloads[1].kind = PayloadKind::Rootfs;
        assert_eq!(
            m.validate(),
            Err(ManifestError::DuplicateKind(PayloadKind::Rootfs))
        );

        let mut m = sample();
        m.payloads[0].size = u64::MAX;
        assert_eq!(m.validate(), Err(ManifestError::SizeOverflow));

        let mut m = sample();
        m.payloads[0].size = 0;
        assert_eq!(
            m.validate(),
            Err(ManifestError::EmptyPayload("rootfs".into()))
        );

        let mut m = sample();
        m.payloads.clear();
        assert_eq!(m.validate(), Err(ManifestError::NoPayloads));

        let mut m = sample();
        m.payloads = (0..=MAX_PAYLOADS)
            .map(|i| PayloadInfo {
                name: format!("p{i}"),
                ..sample().payloads[0].clone()
            })
            .collect();
        assert!(matches!(
            m.validate(),
            Err(ManifestError::TooManyPayloads { .. })
        ));

        for bad in ["", "Rpi", "rpi zero", "a/b", &"x".repeat(MAX_NAME_LEN + 1)] {
            let mut m = sample();
            m.board = bad.into();
            assert!(
                matches!(
                    m.validate(),
                    Err(ManifestError::InvalidName { what: "board", .. })
                ),
                "{bad:?}"
            );
        }

        let mut m = sample();
        m.format = 2;
        assert!(matches!(
            m.validate(),
            Err(ManifestError::FormatMismatch { .. })
        ));
    }
}
