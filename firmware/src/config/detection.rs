//! `[detection]`: motion sensitivity, zones and masks, and the person model.

use std::path::PathBuf;
use std::time::Duration;

use toml::{Table, Value};

use super::{ConfigError, Section, describe};

/// A polygon in normalised frame coordinates (0..1, origin top-left).
pub type Points = Vec<(f32, f32)>;

#[derive(Debug, Clone, PartialEq)]
pub struct DetectionConfig {
    /// Motion detection (and the person model it gates) runs at all.
    pub enabled: bool,
    /// 0 (only large, strong changes) to 100 (the slightest change).
    pub sensitivity: u8,
    /// Smallest changed fraction of the unmasked frame that counts as motion.
    pub min_area: f32,
    /// An event ends after this long without motion or a person.
    pub cooldown: Duration,
    /// Person score (0..1) that starts or feeds a person event.
    pub person_threshold: f32,
    /// The person model runs at most this often while there is motion.
    pub max_inferences_per_sec: f32,
    /// The TFLite model; `None` looks in the usual places (see `detect::person`).
    pub model: Option<PathBuf>,
    /// Its anchors (1917×4 little-endian f32 for the shipped model); `None`: next to
    /// the model.
    pub anchors: Option<PathBuf>,
    /// Named areas; events say which they touched. None: the whole frame.
    pub zones: Vec<(String, Points)>,
    /// Areas ignored entirely (a road, a tree).
    pub masks: Vec<Points>,
}

impl Default for DetectionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            sensitivity: 60,
            min_area: 0.005,
            cooldown: Duration::from_secs(5),
            person_threshold: 0.5,
            max_inferences_per_sec: 2.0,
            model: None,
            anchors: None,
            zones: Vec::new(),
            masks: Vec::new(),
        }
    }
}

pub(super) fn read(d: &mut DetectionConfig, t: &Table) -> Result<(), ConfigError> {
    let s = Section::new(
        "detection",
        t,
        &[
            "enabled",
            "sensitivity",
            "min_area_percent",
            "cooldown_secs",
            "person_threshold",
            "max_inferences_per_sec",
            "model",
            "anchors",
            "zone",
            "mask",
        ],
    )?;
    if let Some(v) = s.boolean("enabled")? {
        d.enabled = v;
    }
    if let Some(v) = s.integer("sensitivity", 0..=100)? {
        d.sensitivity = v as u8;
    }
    if let Some(v) = s.float("min_area_percent", 0.0..=100.0)? {
        d.min_area = (v / 100.0) as f32;
    }
    if let Some(v) = s.integer("cooldown_secs", 1..=600)? {
        d.cooldown = Duration::from_secs(v);
    }
    if let Some(v) = s.float("person_threshold", 0.05..=0.99)? {
        d.person_threshold = v as f32;
    }
    if let Some(v) = s.float("max_inferences_per_sec", 0.1..=30.0)? {
        d.max_inferences_per_sec = v as f32;
    }
    if let Some(v) = s.string("model")? {
        d.model = Some(PathBuf::from(v));
    }
    if let Some(v) = s.string("anchors")? {
        d.anchors = Some(PathBuf::from(v));
    }
    for (key, t) in s.tables("zone")? {
        let z = Section::new(key, t, &["name", "polygon"])?;
        let name = z
            .string("name")?
            .ok_or_else(|| ConfigError::new(z.key("name"), "is missing; every zone has a name"))?;
        if name.is_empty() || name.len() > 32 {
            return Err(ConfigError::new(
                z.key("name"),
                "must be 1 to 32 characters",
            ));
        }
        if d.zones.iter().any(|(n, _)| n == name) {
            return Err(ConfigError::new(
                z.key("name"),
                format!("`{name}` is used by another zone"),
            ));
        }
        d.zones.push((name.to_owned(), polygon(&z)?));
    }
    for (key, t) in s.tables("mask")? {
        let m = Section::new(key, t, &["polygon"])?;
        d.masks.push(polygon(&m)?);
    }
    Ok(())
}

/// `polygon = [[x, y], ...]`: at least three points, each within 0..1.
fn polygon(s: &Section<'_>) -> Result<Points, ConfigError> {
    let key = s.key("polygon");
    let expected = "expected at least three [x, y] points with x and y from 0 to 1, \
                    e.g. [[0.1, 0.2], [0.5, 0.2], [0.5, 0.9]]";
    let Some(value) = s.value("polygon") else {
        return Err(ConfigError::new(key, format!("is missing; {expected}")));
    };
    let Value::Array(items) = value else {
        return Err(ConfigError::new(
            key,
            format!("is {}; {expected}", describe(value)),
        ));
    };
    let number = |v: &Value| match v {
        Value::Float(f) => Some(*f),
        Value::Integer(i) => Some(*i as f64),
        _ => None,
    };
    let mut points = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let point = match item {
            Value::Array(xy) if xy.len() == 2 => number(&xy[0]).zip(number(&xy[1])),
            _ => None,
        }
        .filter(|(x, y)| (0.0..=1.0).contains(x) && (0.0..=1.0).contains(y));
        let Some((x, y)) = point else {
            return Err(ConfigError::new(
                format!("{key}[{i}]"),
                format!("is {}; {expected}", describe(item)),
            ));
        };
        points.push((x as f32, y as f32));
    }
    if points.len() < 3 {
        return Err(ConfigError::new(
            key,
            format!("has {} points; {expected}", points.len()),
        ));
    }
    Ok(points)
}
