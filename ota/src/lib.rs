//! ME_CAM update bundles.
//!
//! A bundle is one file: a header, a signed manifest (product, version, board, and the
//! size and SHA-256 of each payload), then the payloads (root filesystem image, slot
//! boot files). It is built for streaming: a device verifies the signature from the
//! first few KiB, before any payload byte exists, and then writes each payload to the
//! inactive slot as it arrives, hashing on the way, in constant memory. The byte
//! layout is in [`format`](mod@format) and `ota/README.md`.
//!
//! - [`BundleVerifier`]: push-based verification for the device (no I/O of its own).
//! - [`verify_reader`]: the same, from a blocking reader.
//! - [`BundleReader`]: pull-based, from a blocking reader: verifies the manifest and
//!   the install policy, then hands out each payload as a hashing `Read`.
//! - [`check_install`]: board, product and downgrade policy.
//! - [`TrustedKeys`], [`SigningKey`], [`PublicKey`]: Ed25519 keys and their files.
//! - [`create`]: writing and re-signing bundles (the `mecam-bundle` host tool).

pub mod create;
mod error;
pub mod format;
mod hex;
pub mod keys;
pub mod manifest;
pub mod policy;
pub mod reader;
pub mod timestamp;
pub mod verify;
pub mod version;

pub use error::{OtaError, Section};
pub use format::Prelude;
pub use keys::{KeyError, KeyId, PublicKey, SigningKey, TrustedKeys};
pub use manifest::{Manifest, ManifestError, PRODUCT, PayloadInfo, PayloadKind, Sha256};
pub use policy::{Refusal, check_install};
pub use reader::{BundleReader, InstallTarget, PayloadReader};
pub use timestamp::Timestamp;
pub use verify::{BundleVerifier, Event, VerifiedBundle, verify_reader};
pub use version::Version;
