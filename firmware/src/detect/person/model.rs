//! The TFLite model in tract: checksum-verified load, shape checks, inference.

use std::fs::File;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::time::Instant;

use tract_tflite::prelude::*;

use super::checksum::{HashingReader, Sha256};
use super::decode::{self, Corners};
use super::preprocess;
use super::{ModelError, NMS_IOU, PERSON_CLASS, SCORE_FLOOR, nms};
use crate::camera::Frame;
use crate::detect::{BBox, Detection};

/// Detections a frame can give at most: more people than this in one view is a crowd,
/// and every extra one costs an event update.
pub const MAX_DETECTIONS: usize = 20;

/// The raw outputs of one inference, flattened.
#[derive(Debug, Clone, PartialEq)]
pub struct RawOutputs {
    /// `[N, 4]` box encodings (ty, tx, th, tw).
    pub boxes: Vec<f32>,
    /// `[N, classes]` class logits.
    pub logits: Vec<f32>,
    pub classes: usize,
}

/// The person detector: an SSD-style TFLite model run with tract, with its anchors.
pub struct PersonDetector {
    path: PathBuf,
    state: TypedSimpleState,
    /// Input width and height.
    size: (usize, usize),
    anchors: Vec<Corners>,
    classes: usize,
    /// Which output holds the box encodings (the other has the logits).
    boxes_output: usize,
    /// The input tensor of the next inference, NHWC.
    input: Vec<f32>,
}

impl std::fmt::Debug for PersonDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonDetector")
            .field("path", &self.path)
            .field("size", &self.size)
            .field("anchors", &self.anchors.len())
            .field("classes", &self.classes)
            .finish_non_exhaustive()
    }
}

/// What the loader found in a model: the input size, the anchor count, the class
/// count and which output holds the boxes. A model that does not fit gets an error
/// naming the tensor.
struct Layout {
    size: (usize, usize),
    anchors: usize,
    classes: usize,
    boxes_output: usize,
}

impl PersonDetector {
    /// Loads the model at `model` with the anchors at `anchors`. When `expected` is
    /// given, the model file must have that SHA-256 (it is hashed in the same pass
    /// that reads it, so the checked bytes are the loaded bytes). Takes about 0.4 s
    /// on an x86 core (docs/performance.md): call it once, at start.
    pub fn load(
        model: &Path,
        anchors: &Path,
        expected: Option<Sha256>,
    ) -> Result<Self, ModelError> {
        let started = Instant::now();
        let path = model.to_owned();
        let read_error = |source: io::Error| ModelError::Read {
            path: path.clone(),
            source,
        };
        let file = File::open(model).map_err(read_error)?;
        // `model_for_path` in two halves: read (and hash) the file, check the
        // checksum, and only then translate the graph.
        let tflite = tract_tflite::tflite();
        let mut reader = HashingReader::new(BufReader::new(file));
        let proto = tflite.proto_model_for_read(&mut reader);
        if let Err(e) = &proto
            && let Some(io) = e.downcast_ref::<io::Error>()
        {
            return Err(read_error(io::Error::new(io.kind(), io.to_string())));
        }
        let actual = reader.finish();
        if let Some(expected) = expected
            && actual != expected
        {
            return Err(ModelError::Checksum {
                path,
                actual,
                expected,
            });
        }
        let parse_error = |e: TractError| ModelError::Parse {
            path: path.clone(),
            reason: format!("{e:#}"),
        };
        let proto = proto.map_err(parse_error)?;
        let mut typed = tflite.model_for_proto_model(&proto).map_err(parse_error)?;
        drop(proto);

        let layout = layout(&typed, &path)?;
        // Before the optimisation, which takes most of the load time.
        let anchors_bytes = std::fs::read(anchors).map_err(|source| ModelError::Read {
            path: anchors.to_owned(),
            source,
        })?;
        let anchors = decode::parse_anchors(&anchors_bytes, layout.anchors).map_err(|problem| {
            ModelError::Anchors {
                path: anchors.to_owned(),
                problem,
            }
        })?;
        let (w, h) = layout.size;
        typed
            .set_input_fact(0, f32::fact([1, h, w, 3]))
            .map_err(parse_error)?;
        let plan = typed
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(parse_error)?;
        let state = plan.spawn().map_err(parse_error)?;

        tracing::info!(
            model = %path.display(),
            sha256 = %actual,
            verified = expected.is_some(),
            input = %format!("{w}x{h}"),
            anchors = anchors.len(),
            classes = layout.classes,
            ms = started.elapsed().as_millis() as u64,
            "person model loaded"
        );
        Ok(Self {
            path,
            state,
            size: layout.size,
            anchors,
            classes: layout.classes,
            boxes_output: layout.boxes_output,
            input: vec![0.0; w * h * 3],
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The model's input width and height.
    pub fn input_size(&self) -> (usize, usize) {
        self.size
    }

    pub fn anchor_count(&self) -> usize {
        self.anchors.len()
    }

    /// Persons in `frame` (in `region` only, when given), best first: every
    /// detection scoring at least [`SCORE_FLOOR`] after non-maximum suppression, with
    /// boxes in normalised coordinates of the whole frame. The caller applies its
    /// threshold.
    pub fn detect(
        &mut self,
        frame: &Frame,
        region: Option<BBox>,
    ) -> Result<Vec<Detection>, ModelError> {
        let crop = self.preprocess(frame, region);
        let raw = self.infer()?;
        Ok(self.postprocess(&raw, crop))
    }

    /// Step one of [`detect`](Self::detect): fills the input tensor from `frame`;
    /// returns the crop the model looks at (normalised frame coordinates).
    pub fn preprocess(&mut self, frame: &Frame, region: Option<BBox>) -> BBox {
        let (w, h) = self.size;
        let image = &frame.image;
        let crop =
            preprocess::crop_region(image.width(), image.height(), region, w as f32 / h as f32);
        preprocess::fill_input(image, crop, self.size, &mut self.input);
        crop
    }

    /// The input tensor [`preprocess`](Self::preprocess) filled, `[1, H, W, 3]` flattened.
    pub fn input(&self) -> &[f32] {
        &self.input
    }

    /// Replaces the input tensor (to run the model on a tensor prepared elsewhere).
    /// Panics if `input` is not `H × W × 3` floats.
    pub fn set_input(&mut self, input: &[f32]) {
        self.input.copy_from_slice(input);
    }

    /// Step two: runs the model on the input tensor.
    pub fn infer(&mut self) -> Result<RawOutputs, ModelError> {
        let (w, h) = self.size;
        let failed = |e: TractError| ModelError::Inference(format!("{e:#}"));
        let input = Tensor::from_shape(&[1, h, w, 3], &self.input).map_err(failed)?;
        let outputs = self.state.run(tvec!(input.into())).map_err(failed)?;
        let slice = |i: usize| -> Result<Vec<f32>, ModelError> {
            let t = outputs
                .get(i)
                .ok_or_else(|| ModelError::Inference(format!("the model gave no output {i}")))?;
            let values = t.cast_to::<f32>().map_err(failed)?;
            let plain = values.try_as_plain_ram().map_err(failed)?;
            Ok(plain.as_slice::<f32>().map_err(failed)?.to_vec())
        };
        let raw = RawOutputs {
            boxes: slice(self.boxes_output)?,
            logits: slice(1 - self.boxes_output)?,
            classes: self.classes,
        };
        let n = self.anchors.len();
        if raw.boxes.len() != n * 4 || raw.logits.len() != n * self.classes {
            return Err(ModelError::Inference(format!(
                "the outputs have {} and {} values; the model was loaded with {n} anchors \
                 and {} classes",
                raw.boxes.len(),
                raw.logits.len(),
                self.classes
            )));
        }
        Ok(raw)
    }

    /// Step three: decodes raw outputs (from [`infer`](Self::infer) or from another
    /// runtime given the same input) for an input made from `crop`.
    pub fn postprocess(&self, raw: &RawOutputs, crop: BBox) -> Vec<Detection> {
        let candidates = decode::candidates(
            &raw.boxes,
            &raw.logits,
            raw.classes,
            PERSON_CLASS,
            &self.anchors,
            SCORE_FLOOR,
        );
        nms::suppress(candidates, NMS_IOU, MAX_DETECTIONS)
            .iter()
            .map(|c| Detection {
                score: c.score,
                bbox: preprocess::to_frame(&c.corners, crop),
            })
            .collect()
    }
}

impl crate::detect::runner::PersonModel for PersonDetector {
    fn detect(&mut self, frame: &Frame, region: Option<BBox>) -> Result<Vec<Detection>, String> {
        PersonDetector::detect(self, frame, region).map_err(|e| e.to_string())
    }
}

/// Checks the model's tensors: one f32 input `[1, H, W, 3]`, two f32 outputs
/// `[1, N, 4]` (box encodings) and `[1, N, C]` (class logits, C ≥ 2), in either order.
/// A model that does not fit is refused with the tensor, its shape and what was
/// expected.
fn layout(model: &TypedModel, path: &Path) -> Result<Layout, ModelError> {
    let misfit = |tensor: String, found: String, expected: &str| ModelError::Shape {
        path: path.to_owned(),
        tensor,
        found,
        expected: expected.to_owned(),
    };
    let broken = |e: TractError| ModelError::Parse {
        path: path.to_owned(),
        reason: format!("{e:#}"),
    };
    let describe = |fact: &TypedFact| {
        let dims: Vec<String> = fact.shape.iter().map(|d| d.to_string()).collect();
        format!("[{}] {:?}", dims.join(", "), fact.datum_type)
    };
    // The dimensions of an f32 tensor of known shape.
    let concrete = |fact: &TypedFact| {
        (fact.datum_type == f32::datum_type())
            .then(|| fact.shape.as_concrete().map(<[usize]>::to_vec))
            .flatten()
    };

    let inputs = model.input_outlets().map_err(broken)?.len();
    if inputs != 1 {
        return Err(misfit(
            "the inputs".into(),
            format!("{inputs} tensors"),
            "one image, [1, H, W, 3] F32",
        ));
    }
    let input = model.input_fact(0).map_err(broken)?;
    let size = match concrete(input).as_deref() {
        Some(&[1, h, w, 3]) if h > 0 && w > 0 => (w, h),
        _ => {
            return Err(misfit(
                "input 0 (the image)".into(),
                describe(input),
                "[1, H, W, 3] F32 (one RGB image scaled to -1..1)",
            ));
        }
    };

    let outputs = model.output_outlets().map_err(broken)?.len();
    if outputs != 2 {
        return Err(misfit(
            "the outputs".into(),
            format!("{outputs} tensors"),
            "two: box encodings [1, N, 4] F32 and class logits [1, N, C] F32",
        ));
    }
    let facts = [
        model.output_fact(0).map_err(broken)?,
        model.output_fact(1).map_err(broken)?,
    ];
    let shapes = facts.map(concrete);
    let is_boxes = |s: &Option<Vec<usize>>| matches!(s.as_deref(), Some(&[1, _, 4]));
    // Box encodings are usually output 0; a converter may put them second.
    let boxes = usize::from(is_boxes(&shapes[1]) && !is_boxes(&shapes[0]));
    let logits = 1 - boxes;
    let anchors = match shapes[boxes].as_deref() {
        Some(&[1, n, 4]) if n > 0 => n,
        _ => {
            return Err(misfit(
                format!("output {boxes} (box encodings)"),
                describe(facts[boxes]),
                "[1, N, 4] F32 (ty, tx, th, tw for each of N anchors)",
            ));
        }
    };
    let classes = match shapes[logits].as_deref() {
        Some(&[1, n, c]) if n == anchors && c > PERSON_CLASS => c,
        _ => {
            return Err(misfit(
                format!("output {logits} (class logits)"),
                describe(facts[logits]),
                &format!(
                    "[1, {anchors}, C] F32, one row per anchor, C ≥ {} classes \
                     (background, person, …)",
                    PERSON_CLASS + 1
                ),
            ));
        }
    };
    Ok(Layout {
        size,
        anchors,
        classes,
        boxes_output: boxes,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use tract_tflite::internal::AxisOp;
    use tract_tflite::internal::tract_core::ops::array::Slice;

    use super::*;
    use crate::detect::person::{ANCHORS_FILE, MODEL_FILE, SOURCE_MODEL_DIR, shipped_sha256};

    fn shipped() -> (PathBuf, PathBuf) {
        let dir = Path::new(SOURCE_MODEL_DIR);
        (dir.join(MODEL_FILE), dir.join(ANCHORS_FILE))
    }

    /// A TFLite file with one f32 input of shape `input` whose outputs are that input
    /// reshaped to each of `outputs` (and, where given, cut to the first `keep` values
    /// of the last axis), written by tract's own TFLite writer.
    fn tiny_model(dir: &Path, input: &[usize], outputs: &[(&[usize], Option<usize>)]) -> PathBuf {
        let mut model = TypedModel::default();
        let source = model.add_source("image", f32::fact(input)).unwrap();
        let dims = |s: &[usize]| s.iter().map(|&d| d.into()).collect::<TVec<TDim>>();
        let mut outlets = Vec::new();
        for (i, (shape, keep)) in outputs.iter().enumerate() {
            let reshape = AxisOp::Reshape(0, dims(input), dims(shape));
            let mut outlet = model
                .wire_node(format!("out{i}"), reshape, &[source])
                .unwrap()[0];
            if let Some(keep) = keep {
                let slice = Slice::new(shape.len() - 1, 0, *keep);
                outlet = model
                    .wire_node(format!("cut{i}"), slice, &[outlet])
                    .unwrap()[0];
            }
            outlets.push(outlet);
        }
        model.select_output_outlets(&outlets).unwrap();
        let path = dir.join("tiny.tflite");
        let mut bytes = Vec::new();
        tract_tflite::tflite().write(&model, &mut bytes).unwrap();
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn anchors_file(dir: &Path, n: usize) -> PathBuf {
        let path = dir.join("anchors.f32");
        let one: Vec<u8> = [0.25f32, 0.25, 0.75, 0.75]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        std::fs::write(&path, one.repeat(n)).unwrap();
        path
    }

    fn refused(model: &Path, anchors: &Path) -> String {
        match PersonDetector::load(model, anchors, None) {
            Ok(d) => panic!("{d:?} was loaded"),
            Err(e) => {
                assert!(matches!(e, ModelError::Shape { .. }), "{e:?}");
                e.to_string()
            }
        }
    }

    #[test]
    fn a_model_with_another_checksum_is_refused_with_both_checksums() {
        let (model, anchors) = shipped();
        let wrong = Sha256([0x5a; 32]);
        let err = PersonDetector::load(&model, &anchors, Some(wrong)).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, ModelError::Checksum { .. }), "{err:?}");
        assert!(message.contains(&shipped_sha256().to_string()), "{message}");
        assert!(message.contains(&"5a".repeat(32)), "{message}");
        assert!(message.contains(MODEL_FILE), "{message}");
    }

    #[test]
    fn missing_files_and_garbage_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nowhere.tflite");
        let err = PersonDetector::load(&missing, &missing, None).unwrap_err();
        assert!(matches!(err, ModelError::Read { .. }), "{err:?}");
        assert!(err.to_string().contains("nowhere.tflite"), "{err}");

        let garbage = dir.path().join("garbage.tflite");
        std::fs::write(&garbage, b"this is no flatbuffer at all").unwrap();
        let err = PersonDetector::load(&garbage, &missing, None).unwrap_err();
        assert!(matches!(err, ModelError::Parse { .. }), "{err:?}");
        // Garbage with a checksum to meet is reported as the wrong file it is.
        let err = PersonDetector::load(&garbage, &missing, Some(shipped_sha256())).unwrap_err();
        assert!(matches!(err, ModelError::Checksum { .. }), "{err:?}");
    }

    #[test]
    fn a_model_whose_tensors_do_not_fit_is_refused_naming_the_tensor() {
        let dir = tempfile::tempdir().unwrap();
        let anchors = anchors_file(dir.path(), 3);

        let grey = tiny_model(
            dir.path(),
            &[1, 2, 2, 1],
            &[(&[1, 1, 4], None), (&[1, 2, 2], None)],
        );
        let message = refused(&grey, &anchors);
        assert!(
            message.contains("input 0 (the image) is [1, 2, 2, 1] F32, expected [1, H, W, 3] F32"),
            "{message}"
        );

        let one_output = tiny_model(dir.path(), &[1, 2, 2, 3], &[(&[1, 3, 4], None)]);
        let message = refused(&one_output, &anchors);
        assert!(message.contains("the outputs is 1 tensors"), "{message}");

        let no_boxes = tiny_model(
            dir.path(),
            &[1, 2, 2, 3],
            &[(&[1, 2, 6], None), (&[1, 2, 6], None)],
        );
        let message = refused(&no_boxes, &anchors);
        assert!(
            message.contains("output 0 (box encodings) is [1, 2, 6] F32, expected [1, N, 4] F32"),
            "{message}"
        );

        // One logit per anchor: no room for a person class beside the background.
        let one_class = tiny_model(
            dir.path(),
            &[1, 2, 2, 3],
            &[(&[1, 3, 4], None), (&[1, 12, 1], None)],
        );
        let message = refused(&one_class, &anchors);
        assert!(
            message.contains("output 1 (class logits) is [1, 12, 1] F32, expected [1, 3, C] F32"),
            "{message}"
        );
    }

    #[test]
    fn another_ssd_style_model_loads_with_its_own_anchors_and_runs() {
        let dir = tempfile::tempdir().unwrap();
        // Three anchors, two classes, the logits first: the loader finds its way.
        let model = tiny_model(
            dir.path(),
            &[1, 2, 2, 3],
            &[(&[1, 3, 4], Some(2)), (&[1, 3, 4], None)],
        );
        let err = PersonDetector::load(&model, &anchors_file(dir.path(), 1917), None).unwrap_err();
        assert!(matches!(err, ModelError::Anchors { .. }), "{err:?}");
        assert!(err.to_string().contains("the model has 3 anchors"), "{err}");

        let mut detector =
            PersonDetector::load(&model, &anchors_file(dir.path(), 3), None).unwrap();
        assert_eq!(
            (detector.input_size(), detector.anchor_count()),
            ((2, 2), 3)
        );
        // The input comes back as the outputs: the boxes whole, the logits cut.
        let input: Vec<f32> = (0..12).map(|i| i as f32).collect();
        detector.set_input(&input);
        let raw = detector.infer().unwrap();
        assert_eq!(raw.boxes, input);
        assert_eq!(raw.logits, [0.0, 1.0, 4.0, 5.0, 8.0, 9.0]);
        assert_eq!(raw.classes, 2);
    }
}
