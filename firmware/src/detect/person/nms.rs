//! Greedy non-maximum suppression: SSD predicts the same person from several
//! neighbouring anchors; keep the best of each cluster.

use super::decode::Candidate;

/// The best-scored candidates, highest first, dropping every candidate that overlaps
/// an already kept one by more than `iou` (intersection over union), and keeping at
/// most `max` of them. Equal scores keep their input order, so the result does not
/// depend on the sort's whims.
pub fn suppress(mut candidates: Vec<Candidate>, iou: f32, max: usize) -> Vec<Candidate> {
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Candidate> = Vec::new();
    for c in candidates {
        if kept.len() == max {
            break;
        }
        if kept.iter().all(|k| k.corners.iou(&c.corners) <= iou) {
            kept.push(c);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::super::decode::Corners;
    use super::*;

    fn boxed(score: f32, xmin: f32, width: f32) -> Candidate {
        Candidate {
            score,
            corners: Corners {
                ymin: 0.0,
                xmin,
                ymax: 1.0,
                xmax: xmin + width,
            },
        }
    }

    fn scores(c: &[Candidate]) -> Vec<f32> {
        c.iter().map(|c| c.score).collect()
    }

    #[test]
    fn keeps_the_best_of_each_overlapping_cluster_in_score_order() {
        let found = suppress(
            vec![
                // Person A, seen by three anchors; person B, by two.
                boxed(0.6, 0.00, 0.2),
                boxed(0.9, 0.01, 0.2),
                boxed(0.7, 0.50, 0.2),
                boxed(0.8, 0.52, 0.2),
                boxed(0.5, 0.02, 0.2),
            ],
            0.6,
            10,
        );
        assert_eq!(scores(&found), [0.9, 0.8]);
        assert_eq!(found[0].corners.xmin, 0.01);
        assert_eq!(found[1].corners.xmin, 0.52);
    }

    #[test]
    fn overlap_at_or_below_the_threshold_is_two_people() {
        // IoU of [0, 0.2] and [0.1, 0.3] is 1/3: side by side, not the same person.
        let found = suppress(vec![boxed(0.9, 0.0, 0.2), boxed(0.8, 0.1, 0.2)], 0.6, 10);
        assert_eq!(scores(&found), [0.9, 0.8]);
        let found = suppress(vec![boxed(0.9, 0.0, 0.2), boxed(0.8, 0.1, 0.2)], 0.3, 10);
        assert_eq!(scores(&found), [0.9]);
    }

    #[test]
    fn stops_at_max() {
        let many = (0..10).map(|i| boxed(i as f32 / 16.0, i as f32, 0.5));
        let found = suppress(many.collect(), 0.6, 3);
        assert_eq!(scores(&found), [9.0 / 16.0, 8.0 / 16.0, 7.0 / 16.0]);
        assert!(suppress(Vec::new(), 0.6, 3).is_empty());
    }
}
