//! Service configuration: a TOML file, then command-line overrides, then validation.
//!
//! The file is walked key by key rather than deserialised with serde so that every
//! error names the exact key (`camera.fps`) and what is allowed there. A user editing
//! the file on the boot partition has no other way to learn what went wrong.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::{Table, Value};

mod detection;
mod notify;

pub use detection::{DetectionConfig, Points};
pub use notify::{MqttSettings, NotifyConfig, WebhookSettings};

/// A configuration value that is missing, malformed or out of range.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: `{key}` {problem}")]
pub struct ConfigError {
    /// Dotted key as written in the TOML file (`camera.fps`), or the flag (`--fps`).
    pub key: String,
    /// What is wrong and what is allowed.
    pub problem: String,
}

impl ConfigError {
    pub(crate) fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

/// Where frames come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraSource {
    /// Generated test scene.
    Synthetic,
    /// A directory of JPEG/PNG frames or an MJPEG file, looped.
    Replay(PathBuf),
    /// The best source this build and device have (Pi camera, UVC, then synthetic).
    Auto,
}

impl CameraSource {
    pub const ALLOWED: &'static str = "`synthetic`, `replay:PATH` or `auto`";

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "synthetic" => Some(Self::Synthetic),
            "auto" => Some(Self::Auto),
            _ => {
                let path = s.strip_prefix("replay:")?;
                (!path.is_empty()).then(|| Self::Replay(PathBuf::from(path)))
            }
        }
    }
}

impl fmt::Display for CameraSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Synthetic => f.write_str("synthetic"),
            Self::Auto => f.write_str("auto"),
            Self::Replay(p) => write!(f, "replay:{}", p.display()),
        }
    }
}

/// Frame size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub width: u32,
    pub height: u32,
}

impl Size {
    pub const MIN: u32 = 16;
    pub const MAX: u32 = 4096;
    const ALLOWED: &'static str =
        "WIDTHxHEIGHT with even numbers from 16 to 4096, for example `1280x720`";

    pub fn parse(s: &str) -> Option<Self> {
        let (w, h) = s.split_once(['x', 'X'])?;
        let size = Self {
            width: w.trim().parse().ok()?,
            height: h.trim().parse().ok()?,
        };
        let ok = |v: u32| (Self::MIN..=Self::MAX).contains(&v) && v.is_multiple_of(2);
        (ok(size.width) && ok(size.height)).then_some(size)
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CameraConfig {
    pub source: CameraSource,
    pub size: Size,
    pub fps: u32,
    /// Seed of the synthetic scene: the same seed draws the same scene.
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JpegConfig {
    pub quality: u8,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Optional plain-HTTP port that only redirects to HTTPS.
    pub http_redirect_listen: Option<SocketAddr>,
    /// A client that cannot take written bytes for this long is dropped.
    pub write_timeout: Duration,
    /// A connection that sends no complete request head for this long is closed.
    pub header_timeout: Duration,
    /// Connections beyond this are refused at accept.
    pub max_connections: usize,
    /// Serve clients whose address is public (not loopback, private or link-local).
    /// Off by default: the camera belongs on the LAN, not on the internet.
    pub allow_public_clients: bool,
}

/// Logins and sessions.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthConfig {
    /// A session unused for this long ends.
    pub session_idle: Duration,
    /// A session ends this long after login, however active.
    pub session_max: Duration,
}

/// What is recorded, and for how long it is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingConfig {
    pub mode: RecordMode,
    /// A segment ends at the first keyframe after this much video.
    pub segment: Duration,
    /// Time between keyframes (one MP4 fragment per GOP).
    pub keyframe_interval: Duration,
    /// H.264 target bit rate, bits per second.
    pub bitrate: u32,
    /// Event mode: video kept from before a trigger, and after the last one.
    pub pre_roll: Duration,
    pub post_roll: Duration,
    /// Recordings whose end is older than this are deleted (`None`: no age limit).
    pub max_age: Option<Duration>,
    /// At most this many bytes of recordings (`None`: limited by the disk only).
    pub max_bytes: Option<u64>,
    /// Free space kept on the data partition for everything else.
    pub min_free_bytes: u64,
    /// Weekly windows of local time with another mode than `mode`.
    pub schedule: Vec<ScheduleWindow>,
    /// IANA name of the device's time zone (`None`: the system's, else UTC).
    pub time_zone: Option<String>,
}

/// One `[[recording.schedule]]` entry; see `record::schedule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleWindow {
    /// Monday first.
    pub days: [bool; 7],
    /// Minutes after local midnight; `to <= from` runs past midnight.
    pub from: u16,
    pub to: u16,
    pub mode: RecordMode,
}

/// `recording.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordMode {
    Off,
    Continuous,
    Event,
}

impl RecordMode {
    pub const ALLOWED: &'static str = "`continuous`, `event` or `off`";

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "off" => Some(Self::Off),
            "continuous" => Some(Self::Continuous),
            "event" => Some(Self::Event),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub data_dir: PathBuf,
    pub server: ServerConfig,
    pub camera: CameraConfig,
    pub jpeg: JpegConfig,
    pub auth: AuthConfig,
    pub recording: RecordingConfig,
    pub detection: DetectionConfig,
    pub notify: NotifyConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./mecam-data"),
            server: ServerConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
                http_redirect_listen: None,
                write_timeout: Duration::from_secs(10),
                header_timeout: Duration::from_secs(10),
                max_connections: 128,
                allow_public_clients: false,
            },
            camera: CameraConfig {
                source: CameraSource::Synthetic,
                size: Size {
                    width: 1280,
                    height: 720,
                },
                fps: 25,
                seed: 1,
            },
            jpeg: JpegConfig { quality: 80 },
            auth: AuthConfig {
                session_idle: Duration::from_secs(30 * 60),
                session_max: Duration::from_secs(7 * 24 * 3600),
            },
            recording: RecordingConfig {
                mode: RecordMode::Continuous,
                segment: Duration::from_secs(60),
                keyframe_interval: Duration::from_secs(2),
                bitrate: 2_000_000,
                pre_roll: Duration::from_secs(5),
                post_roll: Duration::from_secs(10),
                max_age: None,
                max_bytes: None,
                min_free_bytes: 128 << 20,
                schedule: Vec::new(),
                time_zone: None,
            },
            detection: DetectionConfig::default(),
            notify: NotifyConfig::default(),
        }
    }
}

/// Values given on the command line; each replaces the file's value.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub http_redirect_listen: Option<String>,
    pub camera: Option<String>,
    pub size: Option<String>,
    pub fps: Option<String>,
    pub jpeg_quality: Option<String>,
    pub seed: Option<String>,
}

pub const FPS_RANGE: std::ops::RangeInclusive<u32> = 1..=120;
const QUALITY_RANGE: std::ops::RangeInclusive<u8> = 1..=100;
const TIMEOUT_RANGE_SECS: std::ops::RangeInclusive<u64> = 1..=300;
const MAX_CONNECTIONS_RANGE: std::ops::RangeInclusive<u64> = 1..=4096;

impl Config {
    /// Reads `path` (if given), applies `overrides`, and validates the result.
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError::new("--config", format!("cannot read {}: {e}", path.display()))
                })?;
                Self::from_toml(&text)?
            }
            None => Self::default(),
        };
        config.apply(overrides)?;
        Ok(config)
    }

    /// Parses a TOML document; keys left out keep their defaults.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let table: Table = text.parse().map_err(|e: toml::de::Error| {
            let key = e
                .span()
                .map(|s| locate(text, s.start))
                .unwrap_or_else(|| "config file".into());
            ConfigError::new(key, format!("is not valid TOML: {}", e.message()))
        })?;
        let mut config = Self::default();
        let root = Section::new(
            "",
            &table,
            &[
                "data_dir",
                "server",
                "camera",
                "jpeg",
                "auth",
                "recording",
                "detection",
                "notify",
            ],
        )?;
        if let Some(v) = root.string("data_dir")? {
            config.data_dir = PathBuf::from(v);
        }
        if let Some(t) = root.table("server")? {
            let s = Section::new(
                "server",
                t,
                &[
                    "listen",
                    "http_redirect_listen",
                    "write_timeout_secs",
                    "header_timeout_secs",
                    "max_connections",
                    "allow_public_clients",
                ],
            )?;
            if let Some(v) = s.string("listen")? {
                config.server.listen = parse_addr(&s.key("listen"), v)?;
            }
            if let Some(v) = s.string("http_redirect_listen")? {
                config.server.http_redirect_listen =
                    Some(parse_addr(&s.key("http_redirect_listen"), v)?);
            }
            if let Some(v) = s.integer("write_timeout_secs", TIMEOUT_RANGE_SECS)? {
                config.server.write_timeout = Duration::from_secs(v);
            }
            if let Some(v) = s.integer("header_timeout_secs", TIMEOUT_RANGE_SECS)? {
                config.server.header_timeout = Duration::from_secs(v);
            }
            if let Some(v) = s.integer("max_connections", MAX_CONNECTIONS_RANGE)? {
                config.server.max_connections = v as usize;
            }
            if let Some(v) = s.boolean("allow_public_clients")? {
                config.server.allow_public_clients = v;
            }
        }
        if let Some(t) = root.table("camera")? {
            let s = Section::new("camera", t, &["source", "size", "fps", "seed"])?;
            if let Some(v) = s.string("source")? {
                config.camera.source = parse_source(&s.key("source"), v)?;
            }
            if let Some(v) = s.string("size")? {
                config.camera.size = parse_size(&s.key("size"), v)?;
            }
            if let Some(v) = s.integer("fps", widen(FPS_RANGE))? {
                config.camera.fps = v as u32;
            }
            if let Some(v) = s.integer("seed", 0..=u64::MAX >> 1)? {
                config.camera.seed = v;
            }
        }
        if let Some(t) = root.table("jpeg")? {
            let s = Section::new("jpeg", t, &["quality"])?;
            if let Some(v) = s.integer("quality", widen(QUALITY_RANGE))? {
                config.jpeg.quality = v as u8;
            }
        }
        if let Some(t) = root.table("auth")? {
            let s = Section::new("auth", t, &["session_idle_secs", "session_max_days"])?;
            if let Some(v) = s.integer("session_idle_secs", 10..=24 * 3600)? {
                config.auth.session_idle = Duration::from_secs(v);
            }
            if let Some(v) = s.integer("session_max_days", 1..=365)? {
                config.auth.session_max = Duration::from_secs(v * 24 * 3600);
            }
        }
        if let Some(t) = root.table("recording")? {
            read_recording(&mut config.recording, t)?;
        }
        if let Some(t) = root.table("detection")? {
            detection::read(&mut config.detection, t)?;
        }
        if let Some(t) = root.table("notify")? {
            notify::read(&mut config.notify, t)?;
        }
        Ok(config)
    }

    fn apply(&mut self, o: &Overrides) -> Result<(), ConfigError> {
        if let Some(d) = &o.data_dir {
            self.data_dir = d.clone();
        }
        if let Some(v) = &o.listen {
            self.server.listen = parse_addr("--listen", v)?;
        }
        if let Some(v) = &o.http_redirect_listen {
            self.server.http_redirect_listen = Some(parse_addr("--http-redirect-listen", v)?);
        }
        if let Some(v) = &o.camera {
            self.camera.source = parse_source("--camera", v)?;
        }
        if let Some(v) = &o.size {
            self.camera.size = parse_size("--size", v)?;
        }
        if let Some(v) = &o.fps {
            self.camera.fps = parse_int("--fps", v, widen(FPS_RANGE))? as u32;
        }
        if let Some(v) = &o.jpeg_quality {
            self.jpeg.quality = parse_int("--jpeg-quality", v, widen(QUALITY_RANGE))? as u8;
        }
        if let Some(v) = &o.seed {
            self.camera.seed = parse_int("--seed", v, 0..=u64::MAX >> 1)?;
        }
        // Port 0 asks the kernel for a free port, so two of them never collide.
        if self.server.http_redirect_listen == Some(self.server.listen)
            && self.server.listen.port() != 0
        {
            return Err(ConfigError::new(
                "server.http_redirect_listen",
                "must differ from `server.listen`",
            ));
        }
        Ok(())
    }
}

fn read_recording(r: &mut RecordingConfig, t: &Table) -> Result<(), ConfigError> {
    let s = Section::new(
        "recording",
        t,
        &[
            "mode",
            "segment_secs",
            "keyframe_interval_secs",
            "bitrate_kbps",
            "pre_roll_secs",
            "post_roll_secs",
            "max_age_days",
            "max_mib",
            "min_free_mib",
            "schedule",
            "time_zone",
        ],
    )?;
    if let Some(v) = s.string("mode")? {
        r.mode = RecordMode::parse(v).ok_or_else(|| {
            ConfigError::new(
                s.key("mode"),
                format!("is `{v}`; allowed: {}", RecordMode::ALLOWED),
            )
        })?;
    }
    let secs = Duration::from_secs;
    if let Some(v) = s.integer("segment_secs", 5..=600)? {
        r.segment = secs(v);
    }
    if let Some(v) = s.integer("keyframe_interval_secs", 1..=10)? {
        r.keyframe_interval = secs(v);
    }
    if let Some(v) = s.integer("bitrate_kbps", 100..=20_000)? {
        r.bitrate = v as u32 * 1000;
    }
    if let Some(v) = s.integer("pre_roll_secs", 0..=30)? {
        r.pre_roll = secs(v);
    }
    if let Some(v) = s.integer("post_roll_secs", 0..=600)? {
        r.post_roll = secs(v);
    }
    // 0 means "no limit" for the two retention keys.
    if let Some(v) = s.integer("max_age_days", 0..=3650)? {
        r.max_age = (v > 0).then(|| secs(v * 24 * 3600));
    }
    if let Some(v) = s.integer("max_mib", 0..=16 << 20)? {
        r.max_bytes = (v > 0).then_some(v << 20);
    }
    if let Some(v) = s.integer("min_free_mib", 0..=64 << 10)? {
        r.min_free_bytes = v << 20;
    }
    if let Some(v) = s.string("time_zone")? {
        crate::record::schedule::time_zone(Some(v)).map_err(|e| {
            ConfigError::new(
                s.key("time_zone"),
                format!("is `{v}`, which is not a known time zone ({e}); use an IANA name such as `Europe/Berlin`"),
            )
        })?;
        r.time_zone = Some(v.to_owned());
    }
    match t.get("schedule") {
        None => {}
        Some(Value::Array(entries)) => {
            r.schedule = entries
                .iter()
                .enumerate()
                .map(|(i, entry)| read_window(i, entry))
                .collect::<Result<_, _>>()?;
        }
        Some(other) => {
            return Err(ConfigError::new(
                "recording.schedule",
                format!(
                    "is {}; expected `[[recording.schedule]]` tables with days, from, to and mode",
                    describe(other)
                ),
            ));
        }
    }
    if r.segment < r.keyframe_interval {
        return Err(ConfigError::new(
            "recording.segment_secs",
            "must be at least `recording.keyframe_interval_secs` (a segment holds whole GOPs)",
        ));
    }
    Ok(())
}

/// One `[[recording.schedule]]` table, e.g.
/// `{ days = "mon-fri", from = "18:00", to = "07:30", mode = "continuous" }`.
fn read_window(index: usize, entry: &Value) -> Result<ScheduleWindow, ConfigError> {
    use crate::record::schedule::{parse_clock, parse_days};
    let prefix = format!("recording.schedule[{index}]");
    let Value::Table(t) = entry else {
        return Err(ConfigError::new(
            prefix,
            format!(
                "is {}; expected a table with days, from, to and mode",
                describe(entry)
            ),
        ));
    };
    let field = |name: &str| -> Result<&str, ConfigError> {
        match t.get(name) {
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(ConfigError::new(
                format!("{prefix}.{name}"),
                format!("is {}; expected a string", describe(other)),
            )),
            None => Err(ConfigError::new(
                format!("{prefix}.{name}"),
                "is missing; each window needs days, from, to and mode",
            )),
        }
    };
    if let Some(unknown) = t
        .keys()
        .find(|k| !["days", "from", "to", "mode"].contains(&k.as_str()))
    {
        return Err(ConfigError::new(
            format!("{prefix}.{unknown}"),
            "is not a known key; allowed here: days, from, to, mode",
        ));
    }
    let days = field("days")?;
    let days = parse_days(days).ok_or_else(|| {
        ConfigError::new(
            format!("{prefix}.days"),
            format!("is `{days}`; expected `daily` or days like `mon-fri` or `sat,sun`"),
        )
    })?;
    let clock = |name: &str| -> Result<u16, ConfigError> {
        let v = field(name)?;
        parse_clock(v).ok_or_else(|| {
            ConfigError::new(
                format!("{prefix}.{name}"),
                format!("is `{v}`; expected a time HH:MM from 00:00 to 24:00"),
            )
        })
    };
    let (from, to) = (clock("from")?, clock("to")?);
    let mode = field("mode")?;
    let mode = RecordMode::parse(mode).ok_or_else(|| {
        ConfigError::new(
            format!("{prefix}.mode"),
            format!("is `{mode}`; allowed: {}", RecordMode::ALLOWED),
        )
    })?;
    Ok(ScheduleWindow {
        days,
        from,
        to,
        mode,
    })
}

/// Names the key at byte `offset` of a TOML text, for syntax errors.
fn locate(text: &str, offset: usize) -> String {
    let line_no = text[..offset.min(text.len())].matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
    match line.split_once('=') {
        Some((key, _)) if !key.trim().is_empty() => {
            format!("{} (line {line_no})", key.trim())
        }
        _ => format!("line {line_no}"),
    }
}

fn widen<T: Into<u64> + Copy>(r: std::ops::RangeInclusive<T>) -> std::ops::RangeInclusive<u64> {
    (*r.start()).into()..=(*r.end()).into()
}

fn parse_addr(key: &str, v: &str) -> Result<SocketAddr, ConfigError> {
    v.parse().map_err(|_| {
        ConfigError::new(
            key,
            format!(
                "is `{v}`; expected ADDRESS:PORT such as `127.0.0.1:8443`, `0.0.0.0:443` or `[::]:443`"
            ),
        )
    })
}

fn parse_source(key: &str, v: &str) -> Result<CameraSource, ConfigError> {
    CameraSource::parse(v).ok_or_else(|| {
        ConfigError::new(key, format!("is `{v}`; allowed: {}", CameraSource::ALLOWED))
    })
}

fn parse_size(key: &str, v: &str) -> Result<Size, ConfigError> {
    Size::parse(v)
        .ok_or_else(|| ConfigError::new(key, format!("is `{v}`; expected {}", Size::ALLOWED)))
}

fn parse_int(key: &str, v: &str, range: std::ops::RangeInclusive<u64>) -> Result<u64, ConfigError> {
    v.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| out_of_range(key, v, &range))
}

fn out_of_range(key: &str, v: &str, range: &std::ops::RangeInclusive<u64>) -> ConfigError {
    ConfigError::new(
        key,
        format!(
            "is `{v}`; expected a whole number from {} to {}",
            range.start(),
            range.end()
        ),
    )
}

/// One `[table]` of the file, checked for unknown keys up front.
pub(crate) struct Section<'a> {
    prefix: String,
    table: &'a Table,
}

impl<'a> Section<'a> {
    pub(crate) fn new(
        prefix: impl Into<String>,
        table: &'a Table,
        known: &[&str],
    ) -> Result<Self, ConfigError> {
        let section = Self {
            prefix: prefix.into(),
            table,
        };
        if let Some(unknown) = table.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(ConfigError::new(
                section.key(unknown),
                format!("is not a known key; allowed here: {}", known.join(", ")),
            ));
        }
        Ok(section)
    }

    pub(crate) fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    pub(crate) fn string(&self, name: &str) -> Result<Option<&'a str>, ConfigError> {
        match self.table.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(ConfigError::new(
                self.key(name),
                format!("is {}; expected a string", describe(other)),
            )),
        }
    }

    pub(crate) fn table(&self, name: &str) -> Result<Option<&'a Table>, ConfigError> {
        match self.table.get(name) {
            None => Ok(None),
            Some(Value::Table(t)) => Ok(Some(t)),
            Some(other) => Err(ConfigError::new(
                self.key(name),
                format!("is {}; expected a table `[{name}]`", describe(other)),
            )),
        }
    }

    pub(crate) fn boolean(&self, name: &str) -> Result<Option<bool>, ConfigError> {
        match self.table.get(name) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(*b)),
            Some(other) => Err(ConfigError::new(
                self.key(name),
                format!("is {}; expected `true` or `false`", describe(other)),
            )),
        }
    }

    /// A number (integer or float) within `range`.
    pub(crate) fn float(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<f64>,
    ) -> Result<Option<f64>, ConfigError> {
        let bad = |shown: String| {
            ConfigError::new(
                self.key(name),
                format!(
                    "is {shown}; expected a number from {} to {}",
                    range.start(),
                    range.end()
                ),
            )
        };
        match self.table.get(name) {
            None => Ok(None),
            Some(Value::Float(f)) if range.contains(f) => Ok(Some(*f)),
            Some(Value::Integer(i)) if range.contains(&(*i as f64)) => Ok(Some(*i as f64)),
            Some(Value::Float(f)) => Err(bad(f.to_string())),
            Some(Value::Integer(i)) => Err(bad(i.to_string())),
            Some(other) => Err(bad(describe(other))),
        }
    }

    /// `[[name]]` tables: each with its indexed key prefix (`notify.webhook[0]`).
    pub(crate) fn tables(&self, name: &str) -> Result<Vec<(String, &'a Table)>, ConfigError> {
        match self.table.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let key = format!("{}[{i}]", self.key(name));
                    match item {
                        Value::Table(t) => Ok((key, t)),
                        other => Err(ConfigError::new(
                            key,
                            format!("is {}; expected a table", describe(other)),
                        )),
                    }
                })
                .collect(),
            Some(other) => Err(ConfigError::new(
                self.key(name),
                format!(
                    "is {}; expected `[[{}]]` tables",
                    describe(other),
                    self.key(name)
                ),
            )),
        }
    }

    /// The raw value, for shapes the other accessors do not cover.
    pub(crate) fn value(&self, name: &str) -> Option<&'a Value> {
        self.table.get(name)
    }

    pub(crate) fn integer(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<Option<u64>, ConfigError> {
        match self.table.get(name) {
            None => Ok(None),
            Some(Value::Integer(i)) => u64::try_from(*i)
                .ok()
                .filter(|n| range.contains(n))
                .map(Some)
                .ok_or_else(|| out_of_range(&self.key(name), &i.to_string(), &range)),
            Some(other) => Err(out_of_range(&self.key(name), &describe(other), &range)),
        }
    }
}

pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("the string {s:?}"),
        other => format!("a {} ({other})", other.type_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> ConfigError {
        Config::from_toml(text).expect_err("config should be refused")
    }

    #[test]
    fn empty_file_gives_laptop_defaults() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8443");
        assert_eq!(c.data_dir, PathBuf::from("./mecam-data"));
        assert_eq!(c.camera.source, CameraSource::Synthetic);
    }

    #[test]
    fn full_file_is_read() {
        let c = Config::from_toml(
            r#"
            data_dir = "/data/mecam"
            [server]
            listen = "0.0.0.0:443"
            http_redirect_listen = "0.0.0.0:80"
            write_timeout_secs = 5
            [camera]
            source = "replay:/tmp/frames"
            size = "640x480"
            fps = 15
            seed = 7
            [jpeg]
            quality = 70
            "#,
        )
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/data/mecam"));
        assert_eq!(c.server.listen.port(), 443);
        assert_eq!(c.server.http_redirect_listen.unwrap().port(), 80);
        assert_eq!(c.server.write_timeout, Duration::from_secs(5));
        assert_eq!(c.camera.source, CameraSource::Replay("/tmp/frames".into()));
        assert_eq!((c.camera.size.width, c.camera.size.height), (640, 480));
        assert_eq!((c.camera.fps, c.camera.seed, c.jpeg.quality), (15, 7, 70));
    }

    #[test]
    fn errors_name_the_key_and_the_allowed_values() {
        let e = err("[camera]\nfps = 500\n");
        assert_eq!(e.key, "camera.fps");
        assert!(e.problem.contains("from 1 to 120"), "{e}");

        let e = err("[camera]\nfps = \"fast\"\n");
        assert_eq!(e.key, "camera.fps");

        let e = err("[camera]\nsource = \"webcam\"\n");
        assert_eq!(e.key, "camera.source");
        assert!(e.problem.contains("replay:PATH"), "{e}");

        let e = err("[camera]\nsize = \"641x480\"\n");
        assert_eq!(e.key, "camera.size");

        let e = err("[server]\nlisten = \"localhost\"\n");
        assert_eq!(e.key, "server.listen");

        let e = err("[jpeg]\nquality = 0\n");
        assert_eq!(e.key, "jpeg.quality");

        let e = err("[server]\nallow_public_clients = 1\n");
        assert_eq!(e.key, "server.allow_public_clients");

        let e = err("[recording]\nmode = \"always\"\n");
        assert_eq!(e.key, "recording.mode");
        assert!(e.problem.contains("continuous"), "{e}");

        let e = err("[recording]\nsegment_secs = 5\nkeyframe_interval_secs = 8\n");
        assert_eq!(e.key, "recording.segment_secs");
    }

    #[test]
    fn detection_and_notify_sections_are_read_and_checked() {
        let c = Config::from_toml(
            r#"
            [detection]
            sensitivity = 80
            min_area_percent = 1.5
            person_threshold = 0.6
            [[detection.zone]]
            name = "door"
            polygon = [[0.1, 0.1], [0.5, 0.1], [0.5, 0.9]]
            [[detection.mask]]
            polygon = [[0, 0], [1, 0], [1, 0.1]]
            [[notify.webhook]]
            url = "http://192.168.1.10:8123/api/webhook/mecam"
            secret = "0123456789abcdef0123"
            [notify.mqtt]
            host = "192.168.1.10"
            base_topic = "mecam/door"
            "#,
        )
        .unwrap();
        let d = &c.detection;
        assert_eq!(d.sensitivity, 80);
        assert!((d.min_area - 0.015).abs() < 1e-6);
        assert_eq!(d.zones[0].0, "door");
        assert_eq!(d.zones[0].1.len(), 3);
        assert_eq!(d.masks.len(), 1);
        assert_eq!(c.notify.webhooks[0].retries, 3);
        let mqtt = c.notify.mqtt.as_ref().unwrap();
        assert_eq!(
            (mqtt.port, mqtt.base_topic.as_deref()),
            (1883, Some("mecam/door"))
        );
        assert!(
            !format!("{c:?}").contains("0123456789abcdef0123"),
            "secrets stay out of logs"
        );

        let e = err("[[detection.zone]]\nname = \"a\"\npolygon = [[0, 0], [1, 1]]\n");
        assert_eq!(e.key, "detection.zone[0].polygon");
        let e = err("[[detection.zone]]\nname = \"a\"\npolygon = [[0, 0], [1, 1], [2, 0]]\n");
        assert_eq!(e.key, "detection.zone[0].polygon[2]");
        let e = err("[detection]\nperson_threshold = 1.5\n");
        assert_eq!(e.key, "detection.person_threshold");
        let e = err("[[notify.webhook]]\nurl = \"ftp://x\"\nsecret = \"0123456789abcdef\"\n");
        assert_eq!(e.key, "notify.webhook[0].url");
        let e = err("[[notify.webhook]]\nurl = \"http://x/\"\nsecret = \"short\"\n");
        assert_eq!(e.key, "notify.webhook[0].secret");
        let e = err("[notify.mqtt]\nhost = \"b\"\nbase_topic = \"a/#\"\n");
        assert_eq!(e.key, "notify.mqtt.base_topic");
        let hook = "[[notify.webhook]]\nurl = \"http://x/\"\nsecret = \"0123456789abcdef\"\n";
        let e = err(&format!("{hook}events = [\"person.begun\"]\n"));
        assert_eq!(e.key, "notify.webhook[0].events");
        assert!(e.problem.contains("person.begun"), "{e}");
        let e = err(&format!("{hook}events = \"person\"\n"));
        assert_eq!(e.key, "notify.webhook[0].events");
        let c = Config::from_toml(&format!("{hook}events = [\"person.ended\"]\n")).unwrap();
        assert_eq!(c.notify.webhooks[0].events.names(), ["person.ended"]);
        let c = Config::from_toml("[notify.mqtt]\nhost = \"b\"\n").unwrap();
        assert_eq!(
            c.notify.mqtt.unwrap().base_topic,
            None,
            "default: per device"
        );
    }

    #[test]
    fn schedule_windows_are_read_and_checked() {
        let c = Config::from_toml(
            "[recording]\nmode = \"event\"\ntime_zone = \"Europe/Berlin\"\n\
             [[recording.schedule]]\ndays = \"mon-fri\"\nfrom = \"18:00\"\nto = \"07:30\"\nmode = \"continuous\"\n",
        )
        .unwrap();
        assert_eq!(c.recording.time_zone.as_deref(), Some("Europe/Berlin"));
        let w = c.recording.schedule[0];
        assert_eq!(
            (w.from, w.to, w.mode),
            (18 * 60, 7 * 60 + 30, RecordMode::Continuous)
        );
        assert!(w.days[4] && !w.days[5]);

        let e = err(
            "[[recording.schedule]]\ndays = \"mon\"\nfrom = \"25:00\"\nto = \"07:00\"\nmode = \"off\"\n",
        );
        assert_eq!(e.key, "recording.schedule[0].from");
        let e = err("[[recording.schedule]]\ndays = \"mon\"\nfrom = \"05:00\"\nto = \"07:00\"\n");
        assert_eq!(e.key, "recording.schedule[0].mode");
        let e = err("[recording]\ntime_zone = \"Atlantis/Capital\"\n");
        assert_eq!(e.key, "recording.time_zone");
    }

    #[test]
    fn recording_and_auth_sections_are_read() {
        let c = Config::from_toml(
            "[recording]\nmode = \"event\"\nmax_age_days = 0\nmax_mib = 10\n\
             [auth]\nsession_idle_secs = 300\n[server]\nallow_public_clients = true\n",
        )
        .unwrap();
        assert_eq!(c.recording.mode, RecordMode::Event);
        assert_eq!(c.recording.max_age, None);
        assert_eq!(c.recording.max_bytes, Some(10 << 20));
        assert!(c.recording.schedule.is_empty());
        assert_eq!(c.auth.session_idle, Duration::from_secs(300));
        assert!(c.server.allow_public_clients);
    }

    #[test]
    fn unknown_keys_are_refused_with_the_allowed_list() {
        let e = err("[camera]\nfsp = 10\n");
        assert_eq!(e.key, "camera.fsp");
        assert!(e.problem.contains("fps"), "{e}");
        let e = err("colour = true\n");
        assert_eq!(e.key, "colour");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = err("[camera]\nfps = = 3\n");
        assert!(e.key.contains("line 2"), "{e}");
    }

    #[test]
    fn overrides_replace_file_values_and_are_validated() {
        let o = Overrides {
            fps: Some("10".into()),
            size: Some("320x240".into()),
            camera: Some("replay:x.mjpg".into()),
            ..Default::default()
        };
        let mut c = Config::default();
        c.apply(&o).unwrap();
        assert_eq!(c.camera.fps, 10);
        assert_eq!(c.camera.size, Size::parse("320x240").unwrap());

        let bad = Overrides {
            fps: Some("0".into()),
            ..Default::default()
        };
        let e = Config::default().apply(&bad).unwrap_err();
        assert_eq!(e.key, "--fps");
    }

    #[test]
    fn redirect_port_must_differ_from_https_port() {
        let o = Overrides {
            listen: Some("127.0.0.1:9000".into()),
            http_redirect_listen: Some("127.0.0.1:9000".into()),
            ..Default::default()
        };
        assert!(Config::default().apply(&o).is_err());
    }
}
