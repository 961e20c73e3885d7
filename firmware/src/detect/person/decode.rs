//! From the model's raw outputs to scored boxes: the SSD box coder against the anchors,
//! and a sigmoid on the person logit. This is the post-processing the TensorFlow graph
//! did before it was cut for TFLite (`firmware/models/README.md`).

/// A box in the model's normalised input coordinates (0..1 across the model's input,
/// which may lie a little outside it: the box coder does not clip).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Corners {
    pub ymin: f32,
    pub xmin: f32,
    pub ymax: f32,
    pub xmax: f32,
}

impl Corners {
    pub fn area(&self) -> f32 {
        (self.ymax - self.ymin).max(0.0) * (self.xmax - self.xmin).max(0.0)
    }

    /// Intersection over union; 0 when either box is empty.
    pub fn iou(&self, other: &Corners) -> f32 {
        let h = (self.ymax.min(other.ymax) - self.ymin.max(other.ymin)).max(0.0);
        let w = (self.xmax.min(other.xmax) - self.xmin.max(other.xmin)).max(0.0);
        let intersection = h * w;
        let union = self.area() + other.area() - intersection;
        if union > 0.0 {
            intersection / union
        } else {
            0.0
        }
    }

    /// Clipped to the model's input (0..1): the model saw nothing beyond it.
    pub fn clipped(&self) -> Corners {
        Corners {
            ymin: self.ymin.clamp(0.0, 1.0),
            xmin: self.xmin.clamp(0.0, 1.0),
            ymax: self.ymax.clamp(0.0, 1.0),
            xmax: self.xmax.clamp(0.0, 1.0),
        }
    }
}

/// A decoded, scored box, before non-maximum suppression.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub score: f32,
    pub corners: Corners,
}

/// The scales of the TensorFlow Object Detection API's `FasterRcnnBoxCoder` as SSD
/// configurations set them: y and x centres, then height and width.
pub const BOX_CODER_SCALES: [f32; 4] = [10.0, 10.0, 5.0, 5.0];

pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The box `encoding` (ty, tx, th, tw) describes relative to `anchor`.
pub fn decode_box(encoding: [f32; 4], anchor: &Corners) -> Corners {
    let [ty, tx, th, tw] = encoding;
    let [sy, sx, sh, sw] = BOX_CODER_SCALES;
    let ha = anchor.ymax - anchor.ymin;
    let wa = anchor.xmax - anchor.xmin;
    let ya = anchor.ymin + ha / 2.0;
    let xa = anchor.xmin + wa / 2.0;
    let yc = ty / sy * ha + ya;
    let xc = tx / sx * wa + xa;
    let h = (th / sh).exp() * ha;
    let w = (tw / sw).exp() * wa;
    Corners {
        ymin: yc - h / 2.0,
        xmin: xc - w / 2.0,
        ymax: yc + h / 2.0,
        xmax: xc + w / 2.0,
    }
}

/// Every anchor whose person score reaches `floor`, decoded. `encodings` is the
/// model's `[N, 4]` output flattened, `logits` its `[N, classes]` output flattened;
/// only the boxes that pass are decoded (a handful of the 1917).
pub fn candidates(
    encodings: &[f32],
    logits: &[f32],
    classes: usize,
    class: usize,
    anchors: &[Corners],
    floor: f32,
) -> Vec<Candidate> {
    debug_assert_eq!(encodings.len(), anchors.len() * 4);
    debug_assert_eq!(logits.len(), anchors.len() * classes);
    anchors
        .iter()
        .zip(encodings.chunks_exact(4))
        .zip(logits.chunks_exact(classes))
        .filter_map(|((anchor, encoding), logits)| {
            let score = sigmoid(logits[class]);
            (score >= floor).then(|| Candidate {
                score,
                corners: decode_box([encoding[0], encoding[1], encoding[2], encoding[3]], anchor),
            })
        })
        .collect()
}

/// Reads an anchors file: `expected` anchors of four little-endian f32 each (ymin,
/// xmin, ymax, xmax). Refuses a file of another length, and anchors that are not
/// finite or have no extent (the box coder would divide them into nonsense). Anchors
/// may reach outside 0..1: SSD's largest ones do.
pub fn parse_anchors(bytes: &[u8], expected: usize) -> Result<Vec<Corners>, String> {
    if bytes.len() != expected * 16 {
        return Err(format!(
            "holds {} bytes; the model has {expected} anchors, so {} bytes \
             ({expected} × 4 little-endian f32) were expected",
            bytes.len(),
            expected * 16
        ));
    }
    let mut anchors = Vec::with_capacity(expected);
    for (i, chunk) in bytes.chunks_exact(16).enumerate() {
        let f = |k: usize| {
            f32::from_le_bytes([
                chunk[4 * k],
                chunk[4 * k + 1],
                chunk[4 * k + 2],
                chunk[4 * k + 3],
            ])
        };
        let anchor = Corners {
            ymin: f(0),
            xmin: f(1),
            ymax: f(2),
            xmax: f(3),
        };
        let finite = [anchor.ymin, anchor.xmin, anchor.ymax, anchor.xmax]
            .iter()
            .all(|v| v.is_finite());
        if !finite || anchor.ymax <= anchor.ymin || anchor.xmax <= anchor.xmin {
            return Err(format!(
                "anchor {i} is {anchor:?}: not a box (is this an anchors file of \
                 (ymin, xmin, ymax, xmax) f32?)"
            ));
        }
        anchors.push(anchor);
    }
    Ok(anchors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-5
    }

    const ANCHOR: Corners = Corners {
        ymin: 0.2,
        xmin: 0.4,
        ymax: 0.6,
        xmax: 0.6,
    };

    #[test]
    fn a_zero_encoding_is_the_anchor_itself() {
        let b = decode_box([0.0; 4], &ANCHOR);
        assert!(close(b.ymin, 0.2) && close(b.xmin, 0.4), "{b:?}");
        assert!(close(b.ymax, 0.6) && close(b.xmax, 0.6), "{b:?}");
    }

    #[test]
    fn encodings_shift_and_scale_by_the_box_coder_scales() {
        // Anchor: centre (0.4, 0.5), size 0.4 × 0.2. ty = 10 moves the centre down by
        // one anchor height; th = 5 ln 2 doubles the height; tx, tw likewise for x.
        let ln2 = std::f32::consts::LN_2;
        let b = decode_box([10.0, -5.0, 5.0 * ln2, 0.0], &ANCHOR);
        // Centre y 0.4 + 0.4 = 0.8, height 0.8; centre x 0.5 - 0.1 = 0.4, width 0.2.
        assert!(close(b.ymin, 0.4) && close(b.ymax, 1.2), "{b:?}");
        assert!(close(b.xmin, 0.3) && close(b.xmax, 0.5), "{b:?}");
    }

    #[test]
    fn sigmoid_maps_logits_to_scores() {
        assert!(close(sigmoid(0.0), 0.5));
        assert!(close(sigmoid(2.0), 0.880_797));
        assert!(close(sigmoid(-2.0), 1.0 - 0.880_797));
        assert_eq!(sigmoid(-200.0), 0.0);
        assert_eq!(sigmoid(200.0), 1.0);
    }

    #[test]
    fn only_anchors_above_the_floor_become_candidates_scored_by_their_class() {
        let anchors = [ANCHOR; 3];
        let encodings = [0.0; 12];
        // Two classes per anchor: background, person. The background logit is ignored.
        let logits = [9.0, -3.0, -9.0, 1.0, 0.0, 0.0];
        let found = candidates(&encodings, &logits, 2, 1, &anchors, 0.3);
        let scores: Vec<f32> = found.iter().map(|c| c.score).collect();
        assert_eq!(scores.len(), 2, "{found:?}");
        assert!(close(scores[0], sigmoid(1.0)) && close(scores[1], 0.5));
        assert_eq!(found[0].corners, decode_box([0.0; 4], &ANCHOR));
    }

    #[test]
    fn iou_of_overlapping_disjoint_and_empty_boxes() {
        let a = Corners {
            ymin: 0.0,
            xmin: 0.0,
            ymax: 1.0,
            xmax: 1.0,
        };
        let half = Corners { xmax: 0.5, ..a };
        assert!(close(a.iou(&half), 0.5));
        assert!(close(a.iou(&a), 1.0));
        let apart = Corners {
            xmin: 2.0,
            xmax: 3.0,
            ..a
        };
        assert_eq!(a.iou(&apart), 0.0);
        let empty = Corners { xmax: 0.0, ..a };
        assert_eq!(empty.iou(&empty), 0.0);
    }

    #[test]
    fn anchors_files_are_read_and_checked() {
        let mut bytes = Vec::new();
        for v in [0.1f32, 0.2, 0.5, 0.6, -0.4, -0.4, 1.4, 1.4] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let anchors = parse_anchors(&bytes, 2).unwrap();
        assert_eq!(
            anchors[0],
            Corners {
                ymin: 0.1,
                xmin: 0.2,
                ymax: 0.5,
                xmax: 0.6
            }
        );
        assert_eq!(anchors[1].ymin, -0.4, "large anchors reach outside 0..1");

        let err = parse_anchors(&bytes, 3).unwrap_err();
        assert!(
            err.contains("32 bytes") && err.contains("48 bytes"),
            "{err}"
        );
        // An anchor with ymax < ymin: the file is not what it claims to be.
        bytes[8..12].copy_from_slice(&0.0f32.to_le_bytes());
        let err = parse_anchors(&bytes, 2).unwrap_err();
        assert!(err.starts_with("anchor 0 "), "{err}");
    }
}
