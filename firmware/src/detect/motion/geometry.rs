//! Masks and zones: polygons in normalised frame coordinates, checked once and
//! rasterised once into per-pixel masks at the analysis size, so the per-frame work
//! only ever reads bytes.

use super::{Polygon, PolygonProblem};

/// Smallest area (as a share of the frame) a polygon may enclose: below this its
/// corners are on one line, repeated, or a slip of the finger.
const MIN_POLYGON_AREA: f32 = 1e-5;

impl Polygon {
    /// Checks the shape alone, whatever the frame size: at least three corners, all
    /// inside the frame, enclosing some area.
    pub fn check(&self) -> Result<(), PolygonProblem> {
        let points = &self.0;
        if points.len() < 3 {
            return Err(PolygonProblem::TooFewPoints(points.len()));
        }
        if let Some((index, &(x, y))) = points
            .iter()
            .enumerate()
            .find(|(_, (x, y))| !(0.0..=1.0).contains(x) || !(0.0..=1.0).contains(y))
        {
            return Err(PolygonProblem::OutsideFrame { index, x, y });
        }
        if self.area() < MIN_POLYGON_AREA {
            return Err(PolygonProblem::NoArea);
        }
        Ok(())
    }

    /// Enclosed area by the shoelace formula (absolute; for a self-crossing outline,
    /// the net area, which is what makes a "bow tie" of two points count as none).
    fn area(&self) -> f32 {
        let points = &self.0;
        let twice: f32 = points
            .iter()
            .zip(points.iter().cycle().skip(1))
            .map(|(&(x0, y0), &(x1, y1))| x0 * y1 - x1 * y0)
            .sum();
        twice.abs() / 2.0
    }

    /// Even-odd rule: a point on a ray crossing the outline an odd number of times is
    /// inside. Self-crossing outlines are allowed and behave as drawn.
    fn contains(&self, x: f32, y: f32) -> bool {
        let points = &self.0;
        let mut inside = false;
        for (&(x0, y0), &(x1, y1)) in points.iter().zip(points.iter().cycle().skip(1)) {
            if (y0 > y) != (y1 > y) && x < x0 + (y - y0) * (x1 - x0) / (y1 - y0) {
                inside = !inside;
            }
        }
        inside
    }

    /// Where a polygon too small to hold any pixel centre still lands: the mean of its
    /// corners (inside any convex shape; close enough for a tiny one).
    fn centre(&self) -> (f32, f32) {
        let n = self.0.len() as f32;
        let (sx, sy) = self
            .0
            .iter()
            .fold((0.0, 0.0), |(sx, sy), &(x, y)| (sx + x, sy + y));
        (sx / n, sy / n)
    }
}

/// How analysis pixels map back to the frame: pixel `(x, y)` covers source columns
/// `x*factor .. x*factor+factor`, so its centre in normalised frame coordinates is
/// `((x + 0.5) * factor / frame_width, ...)`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Grid {
    pub width: usize,
    pub height: usize,
    /// Normalised frame size of one analysis pixel.
    pub step_x: f32,
    pub step_y: f32,
}

impl Grid {
    /// Sets `mask[i] = value` for every analysis pixel whose centre is inside
    /// `polygon`; if there is none (a polygon smaller than a pixel), for the pixel
    /// under its centre, so a zone the user drew is never silently empty.
    pub fn fill(&self, polygon: &Polygon, mask: &mut [u8], value: u8) {
        let mut any = false;
        for y in 0..self.height {
            let v = (y as f32 + 0.5) * self.step_y;
            let row = &mut mask[y * self.width..(y + 1) * self.width];
            for (x, m) in row.iter_mut().enumerate() {
                if polygon.contains((x as f32 + 0.5) * self.step_x, v) {
                    *m = value;
                    any = true;
                }
            }
        }
        if !any {
            let (cx, cy) = polygon.centre();
            let x = ((cx / self.step_x) as usize).min(self.width - 1);
            let y = ((cy / self.step_y) as usize).min(self.height - 1);
            mask[y * self.width + x] = value;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(x0: f32, y0: f32, x1: f32, y1: f32) -> Polygon {
        Polygon(vec![(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
    }

    #[test]
    fn degenerate_shapes_are_refused_for_what_is_wrong() {
        assert_eq!(
            Polygon(vec![(0.1, 0.1), (0.5, 0.5)]).check(),
            Err(PolygonProblem::TooFewPoints(2))
        );
        assert_eq!(
            Polygon(vec![(0.1, 0.1), (0.2, 0.2), (0.3, 0.3)]).check(),
            Err(PolygonProblem::NoArea),
            "collinear"
        );
        assert_eq!(
            Polygon(vec![(0.1, 0.1), (1.5, 0.1), (0.3, 0.3)]).check(),
            Err(PolygonProblem::OutsideFrame {
                index: 1,
                x: 1.5,
                y: 0.1
            })
        );
        assert!(matches!(
            Polygon(vec![(0.1, f32::NAN), (0.5, 0.1), (0.3, 0.3)]).check(),
            Err(PolygonProblem::OutsideFrame { index: 0, .. })
        ));
        assert_eq!(square(0.1, 0.1, 0.4, 0.9).check(), Ok(()));
    }

    #[test]
    fn rasterises_pixel_centres_inside() {
        let grid = Grid {
            width: 10,
            height: 10,
            step_x: 0.1,
            step_y: 0.1,
        };
        let mut mask = vec![0u8; 100];
        grid.fill(&square(0.0, 0.0, 0.5, 0.3), &mut mask, 1);
        // Columns 0..5 of rows 0..3.
        let expected: Vec<u8> = (0..100)
            .map(|i| u8::from(i % 10 < 5 && i / 10 < 3))
            .collect();
        assert_eq!(mask, expected);

        // A triangle covers about half of its bounding box.
        let mut mask = vec![0u8; 100];
        grid.fill(
            &Polygon(vec![(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)]),
            &mut mask,
            1,
        );
        let n = mask.iter().filter(|&&m| m == 1).count();
        assert!((40..=55).contains(&n), "{n} pixels");
    }

    #[test]
    fn a_zone_smaller_than_a_pixel_still_gets_one() {
        let grid = Grid {
            width: 10,
            height: 10,
            step_x: 0.1,
            step_y: 0.1,
        };
        let mut mask = vec![0u8; 100];
        grid.fill(&square(0.71, 0.42, 0.74, 0.44), &mut mask, 1);
        assert_eq!(mask.iter().filter(|&&m| m == 1).count(), 1);
        assert_eq!(mask[4 * 10 + 7], 1);
    }
}
