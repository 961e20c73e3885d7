//! The weekly recording schedule: windows of local time in which another mode applies
//! (say, continuous on weekday nights, events only otherwise). Local time is the
//! device's time zone, so "18:00" stays 18:00 across daylight-saving changes.

use std::fmt;

use jiff::tz::TimeZone;

use super::RecordingMode;

/// Minutes in a day: a window ends at most here ("24:00").
pub const DAY_MINUTES: u16 = 24 * 60;

/// One window: on the chosen weekdays, from `from` to `to` (minutes after midnight),
/// record in `mode`. A window with `to <= from` runs past midnight into the next day
/// and belongs to the day it starts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Monday first.
    pub days: [bool; 7],
    pub from: u16,
    pub to: u16,
    pub mode: RecordingMode,
}

/// The base mode and the windows; the first window covering an instant wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub base: RecordingMode,
    pub windows: Vec<Window>,
}

impl Window {
    fn covers(&self, weekday: usize, minute: u16) -> bool {
        let yesterday = (weekday + 6) % 7;
        if self.from < self.to {
            self.days[weekday] && (self.from..self.to).contains(&minute)
        } else {
            // Past midnight: the evening part today, the morning part from yesterday.
            (self.days[weekday] && minute >= self.from)
                || (self.days[yesterday] && minute < self.to)
        }
    }
}

impl Schedule {
    /// The mode at local `weekday` (0 = Monday) and `minute` after midnight.
    pub fn mode_at(&self, weekday: usize, minute: u16) -> RecordingMode {
        self.windows
            .iter()
            .find(|w| w.covers(weekday % 7, minute))
            .map_or(self.base, |w| w.mode)
    }

    /// The mode now in `tz`.
    pub fn mode_now(&self, tz: &TimeZone) -> RecordingMode {
        let now = jiff::Timestamp::now().to_zoned(tz.clone());
        let weekday = now.weekday().to_monday_zero_offset() as usize;
        let minute = now.hour() as u16 * 60 + now.minute() as u16;
        self.mode_at(weekday, minute)
    }
}

impl From<crate::config::RecordMode> for RecordingMode {
    fn from(mode: crate::config::RecordMode) -> Self {
        use crate::config::RecordMode as M;
        match mode {
            M::Off => Self::Off,
            M::Continuous => Self::Continuous,
            M::Event => Self::Event,
        }
    }
}

impl Schedule {
    /// The schedule `config` describes.
    pub fn from_config(config: &crate::config::RecordingConfig) -> Self {
        Self {
            base: config.mode.into(),
            windows: config
                .schedule
                .iter()
                .map(|w| Window {
                    days: w.days,
                    from: w.from,
                    to: w.to,
                    mode: w.mode.into(),
                })
                .collect(),
        }
    }
}

/// How often the schedule is looked at: a window starts at most this late.
const CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(20);

/// Applies the schedule to the recorder for as long as the service runs: sets the
/// mode whenever local time crosses into or out of a window. A manual recording is
/// not touched (it works in every mode).
pub async fn follow(schedule: Schedule, tz: TimeZone, recording: std::rc::Rc<super::Recording>) {
    loop {
        if let Some(control) = recording.control() {
            let want = schedule.mode_now(&tz);
            if control.mode() != want {
                tracing::info!(mode = ?want, "recording schedule: switching mode");
                control.set_mode(want);
            }
        }
        tokio::time::sleep(CHECK_EVERY).await;
    }
}

/// The time zone named in the configuration, or the system's (`/etc/localtime`), or
/// UTC when the system has none (a fresh image before the owner picks one).
pub fn time_zone(name: Option<&str>) -> Result<TimeZone, jiff::Error> {
    match name {
        Some(name) => TimeZone::get(name),
        None => Ok(TimeZone::try_system().unwrap_or(TimeZone::UTC)),
    }
}

/// Parses a day list: `mon-fri`, `sat,sun`, `daily`, `mon,wed-fri`.
pub fn parse_days(text: &str) -> Option<[bool; 7]> {
    const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let index = |s: &str| NAMES.iter().position(|n| s.trim().eq_ignore_ascii_case(n));
    let mut days = [false; 7];
    if text.trim().eq_ignore_ascii_case("daily") {
        return Some([true; 7]);
    }
    for part in text.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (index(a)?, index(b)?);
                // `fri-mon` wraps over the weekend.
                let mut d = a;
                loop {
                    days[d] = true;
                    if d == b {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => days[index(part)?] = true,
        }
    }
    Some(days)
}

/// Parses `HH:MM` (00:00–24:00) into minutes after midnight.
pub fn parse_clock(text: &str) -> Option<u16> {
    let (h, m) = text.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    let minutes = h.checked_mul(60)?.checked_add(m)?;
    (m < 60 && minutes <= DAY_MINUTES).then_some(minutes)
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02} {:?}",
            self.from / 60,
            self.from % 60,
            self.to / 60,
            self.to % 60,
            self.mode
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(days: &str, from: &str, to: &str, mode: RecordingMode) -> Window {
        Window {
            days: parse_days(days).unwrap(),
            from: parse_clock(from).unwrap(),
            to: parse_clock(to).unwrap(),
            mode,
        }
    }

    #[test]
    fn weekday_nights_continuous_otherwise_events() {
        let s = Schedule {
            base: RecordingMode::Event,
            windows: vec![window(
                "mon-fri",
                "18:00",
                "07:30",
                RecordingMode::Continuous,
            )],
        };
        let at = |d: usize, h: u16, m: u16| s.mode_at(d, h * 60 + m);
        assert_eq!(at(0, 17, 59), RecordingMode::Event);
        assert_eq!(at(0, 18, 0), RecordingMode::Continuous);
        assert_eq!(
            at(1, 7, 29),
            RecordingMode::Continuous,
            "Monday night into Tuesday"
        );
        assert_eq!(at(1, 7, 30), RecordingMode::Event);
        assert_eq!(
            at(5, 3, 0),
            RecordingMode::Continuous,
            "Friday night into Saturday"
        );
        assert_eq!(
            at(5, 18, 0),
            RecordingMode::Event,
            "not on Saturday evening"
        );
        assert_eq!(
            at(0, 3, 0),
            RecordingMode::Event,
            "Sunday night is not in the window"
        );
    }

    #[test]
    fn first_window_wins_and_whole_days_work() {
        let s = Schedule {
            base: RecordingMode::Continuous,
            windows: vec![
                window("sat,sun", "00:00", "24:00", RecordingMode::Off),
                window("daily", "12:00", "13:00", RecordingMode::Event),
            ],
        };
        assert_eq!(s.mode_at(6, 12 * 60 + 30), RecordingMode::Off);
        assert_eq!(s.mode_at(2, 12 * 60 + 30), RecordingMode::Event);
        assert_eq!(s.mode_at(2, 11 * 60), RecordingMode::Continuous);
        assert_eq!(s.mode_at(6, 23 * 60 + 59), RecordingMode::Off);
    }

    #[test]
    fn day_and_clock_parsing() {
        assert_eq!(
            parse_days("fri-mon").unwrap(),
            [true, false, false, false, true, true, true]
        );
        assert_eq!(
            parse_days("Mon, wed").unwrap(),
            [true, false, true, false, false, false, false]
        );
        for bad in ["", "mo", "mon-", "funday", "mon--fri"] {
            assert!(parse_days(bad).is_none(), "{bad:?}");
        }
        assert_eq!(parse_clock("24:00"), Some(1440));
        assert_eq!(parse_clock("07:05"), Some(425));
        for bad in ["7:05", "24:01", "12:60", "ab:cd", "", "12:345"] {
            assert!(parse_clock(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn named_time_zones_resolve_from_the_system_database() {
        // Debian ships tzdata; the Pi image must too (docs/image.md).
        let tz = time_zone(Some("Europe/Berlin")).unwrap();
        let summer = jiff::Timestamp::from_second(1_751_371_200).unwrap(); // 2025-07-01 12:00 UTC
        assert_eq!(summer.to_zoned(tz).hour(), 14);
        assert!(time_zone(Some("Mars/Olympus_Mons")).is_err());
    }
}
