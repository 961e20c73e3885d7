//! The person detector: an SSD-style TFLite model (SSDLite-MobileNetV2, one class)
//! run with tract on the region where motion was seen (design decision 8).
//!
//! ```text
//! Frame (I420) ─crop to region─► RGB 300×300, -1..1 ─tract─► [1,N,4] boxes + [1,N,C] logits
//!   ─box coder × anchors, sigmoid, floor─► candidates ─NMS─► Detections (whole-frame coordinates)
//! ```
//!
//! - [`model`]: checksum-verified load, shape checks, inference ([`PersonDetector`]).
//! - [`preprocess`]: crop, colour conversion, bilinear resize; boxes back to the frame.
//! - [`decode`]: the SSD box coder, the sigmoid, the anchors file.
//! - [`nms`]: greedy non-maximum suppression.
//!
//! The model files live in `firmware/models/` in the source tree and in
//! `/usr/share/mecam/models/` on the device ([`ModelFiles::locate`]); they are read at
//! start, never compiled into the binary (12 MB). See `docs/detection.md`.

pub mod checksum;
pub mod decode;
// The runtime itself: tract is a large build, which the fuzz targets leave out.
#[cfg(feature = "tract")]
pub mod model;
pub mod nms;
pub mod preprocess;
#[doc(hidden)]
pub mod testdata;

#[cfg(all(test, feature = "tract"))]
mod photos;

use std::io;
use std::path::{Path, PathBuf};

pub use checksum::Sha256;
#[cfg(feature = "tract")]
pub use model::{PersonDetector, RawOutputs};

/// The shipped model's file name.
pub const MODEL_FILE: &str = "ssdlite_mnv2_person_300_float.tflite";
/// Its anchors' file name.
pub const ANCHORS_FILE: &str = "anchors_1917x4.f32";
/// Where the Pi image installs the model files.
pub const DEVICE_MODEL_DIR: &str = "/usr/share/mecam/models";
/// Where they are in the source tree (for `./scripts/run`, tests and benches).
pub const SOURCE_MODEL_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/models");

/// Index of the person class in the model's logits (0 is the background, as in every
/// TensorFlow Object Detection API model).
pub const PERSON_CLASS: usize = 1;
/// Detections scoring below this are dropped before suppression. The runner applies
/// the configured threshold (0.5 by default), which `detection.person_threshold` lets
/// a user lower to 0.05: the floor must not be above that, or lowering the threshold
/// below it would silently change nothing.
pub const SCORE_FLOOR: f32 = 0.05;
/// Boxes overlapping a better one by more than this (intersection over union) are
/// the same person seen by neighbouring anchors.
pub const NMS_IOU: f32 = 0.6;

/// The checksums of the shipped files, as committed next to them. Only this small text
/// is compiled in: the firmware knows which model it was built and tested with.
const SHIPPED_SUMS: &str = include_str!("../../../models/SHA256SUMS");

/// The SHA-256 of the shipped model.
pub fn shipped_sha256() -> Sha256 {
    checksum::lookup(SHIPPED_SUMS, MODEL_FILE)
        .expect("firmware/models/SHA256SUMS lists the shipped model")
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(
        "cannot read {path}: {source}; the person model and its anchors ship in \
         {DEVICE_MODEL_DIR} (firmware/models in the source tree), or set \
         detection.model and detection.anchors"
    )]
    Read { path: PathBuf, source: io::Error },
    #[error(
        "the person model {path} has SHA-256 {actual}, but {expected} was expected: the \
         file is damaged or not the model this build was made for; reinstall it (for a \
         model of your own, give it another file name and list it in a SHA256SUMS file \
         next to it)"
    )]
    Checksum {
        path: PathBuf,
        actual: Sha256,
        expected: Sha256,
    },
    #[error("{path} is not a TFLite model tract can run: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error(
        "the person model {path} does not fit: {tensor} is {found}, expected {expected}; \
         only SSD-style models with the shipped model's inputs and outputs can replace it \
         (see firmware/models/README.md)"
    )]
    Shape {
        path: PathBuf,
        tensor: String,
        found: String,
        expected: String,
    },
    #[error("the anchors file {path} {problem}")]
    Anchors { path: PathBuf, problem: String },
    #[error("SHA256SUMS next to the person model, {path}: {problem}")]
    Sums { path: PathBuf, problem: String },
    #[error("the person model failed on a frame: {0}")]
    Inference(String),
}

/// The files of a person model, and the checksum the model must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFiles {
    pub model: PathBuf,
    pub anchors: PathBuf,
    /// `None`: the model is loaded unchecked (a model of one's own without a
    /// `SHA256SUMS` line; a warning is logged).
    pub sha256: Option<Sha256>,
}

impl ModelFiles {
    /// The files to load, from `detection.model` and `detection.anchors` (each `None`
    /// when not configured):
    ///
    /// - the model: as configured, else [`default_model_path`];
    /// - the anchors: as configured, else [`ANCHORS_FILE`] in the model's folder;
    /// - the checksum: a file named [`MODEL_FILE`] must be the shipped model (its
    ///   checksum is compiled in); any other model is checked against the line for
    ///   its name in a `SHA256SUMS` file in its folder, if there is one.
    pub fn locate(model: Option<&Path>, anchors: Option<&Path>) -> Result<Self, ModelError> {
        let model = model.map_or_else(default_model_path, Path::to_owned);
        let dir = model.parent().unwrap_or(Path::new("."));
        let anchors = anchors.map_or_else(|| dir.join(ANCHORS_FILE), Path::to_owned);
        let name = model.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let sha256 = if name == MODEL_FILE {
            Some(shipped_sha256())
        } else {
            let sums = dir.join("SHA256SUMS");
            match std::fs::read_to_string(&sums) {
                Ok(text) => checksum::lookup(&text, name),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => {
                    return Err(ModelError::Sums {
                        path: sums,
                        problem: e.to_string(),
                    });
                }
            }
        };
        if sha256.is_none() {
            tracing::warn!(
                model = %model.display(),
                "the person model has no checksum to verify; add its line to a SHA256SUMS \
                 file next to it (sha256sum {name} >> SHA256SUMS)"
            );
        }
        Ok(Self {
            model,
            anchors,
            sha256,
        })
    }
}

#[cfg(feature = "tract")]
impl PersonDetector {
    /// [`PersonDetector::load`] for `files`.
    pub fn open(files: &ModelFiles) -> Result<Self, ModelError> {
        Self::load(&files.model, &files.anchors, files.sha256)
    }
}

/// Where the model is when `detection.model` is not set: the device's
/// [`DEVICE_MODEL_DIR`] when it holds the model, else the source tree's
/// `firmware/models` (so `./scripts/run` finds it from any directory), else the
/// device's path (which the error then names).
pub fn default_model_path() -> PathBuf {
    [DEVICE_MODEL_DIR, SOURCE_MODEL_DIR]
        .iter()
        .map(|dir| Path::new(dir).join(MODEL_FILE))
        .find(|p| p.is_file())
        .unwrap_or_else(|| Path::new(DEVICE_MODEL_DIR).join(MODEL_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> ModelFiles {
        ModelFiles::locate(Some(&Path::new(SOURCE_MODEL_DIR).join(MODEL_FILE)), None).unwrap()
    }

    #[test]
    fn the_compiled_in_checksum_is_the_committed_model_file() {
        let files = shipped();
        let bytes = std::fs::read(&files.model).unwrap();
        assert_eq!(files.sha256, Some(Sha256::of(&bytes)));
        assert_eq!(
            files.anchors,
            Path::new(SOURCE_MODEL_DIR).join(ANCHORS_FILE)
        );
        // And the anchors are the ones SHA256SUMS lists.
        let anchors = std::fs::read(&files.anchors).unwrap();
        assert_eq!(
            checksum::lookup(SHIPPED_SUMS, ANCHORS_FILE),
            Some(Sha256::of(&anchors))
        );
    }

    #[test]
    fn a_model_of_ones_own_is_checked_against_the_sums_next_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("own.tflite");
        let files = ModelFiles::locate(Some(&own), None).unwrap();
        assert_eq!(files.sha256, None, "no SHA256SUMS: unchecked");
        assert_eq!(files.anchors, dir.path().join(ANCHORS_FILE));

        let hex = "ab".repeat(32);
        std::fs::write(
            dir.path().join("SHA256SUMS"),
            format!("{hex}  own.tflite\n"),
        )
        .unwrap();
        let anchors = dir.path().join("a.f32");
        let files = ModelFiles::locate(Some(&own), Some(&anchors)).unwrap();
        assert_eq!(files.sha256, Some(hex.parse().unwrap()));
        assert_eq!(files.anchors, anchors);

        // Whatever SHA256SUMS says, a file under the shipped name must be the shipped model.
        let renamed = dir.path().join(MODEL_FILE);
        let files = ModelFiles::locate(Some(&renamed), None).unwrap();
        assert_eq!(files.sha256, Some(shipped_sha256()));
    }

    #[test]
    fn without_configuration_the_source_tree_model_is_found() {
        // On a device DEVICE_MODEL_DIR wins; on a build host it is absent.
        if Path::new(DEVICE_MODEL_DIR).join(MODEL_FILE).is_file() {
            return;
        }
        assert_eq!(
            default_model_path(),
            Path::new(SOURCE_MODEL_DIR).join(MODEL_FILE)
        );
        assert_eq!(ModelFiles::locate(None, None).unwrap(), shipped());
    }
}
