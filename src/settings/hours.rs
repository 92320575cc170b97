//! [`WorkingHours`]: the days of the week and the local time span a clinician normally works,
//! as configured (`days = ["mon", "tue"]`, `hours = "08:00-18:00"`). Alert escalation asks it
//! whether a moment falls inside them, and when that stretch ends.

use serde::Deserialize;

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const DAY_MS: i64 = 86_400_000;
const MINUTE_MS: i64 = 60_000;

/// Working days and hours, at some offset from UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawHours")]
pub struct WorkingHours {
    /// Monday first.
    days: [bool; 7],
    /// Minutes after local midnight.
    start_minute: u16,
    /// Minutes after local midnight; after `start_minute` (no span across midnight).
    end_minute: u16,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHours {
    days: Vec<String>,
    hours: String,
}

impl TryFrom<RawHours> for WorkingHours {
    type Error = String;

    fn try_from(raw: RawHours) -> Result<Self, String> {
        let mut days = [false; 7];
        for day in &raw.days {
            let index = DAY_NAMES
                .iter()
                .position(|d| d.eq_ignore_ascii_case(day.trim()))
                .ok_or_else(|| format!("unknown day {day:?} (use mon, tue, wed, thu, fri, sat, sun)"))?;
            days[index] = true;
        }
        let bad = || "hours must read HH:MM-HH:MM, the start before the end (\"08:00-18:00\")".to_owned();
        let (start, end) = raw.hours.split_once('-').ok_or_else(bad)?;
        let (start_minute, end_minute) = (minute_of(start).ok_or_else(bad)?, minute_of(end).ok_or_else(bad)?);
        if start_minute >= end_minute {
            return Err(bad());
        }
        Ok(Self { days, start_minute, end_minute })
    }
}

/// `"08:30"` -> 510; `"24:00"` is the end of the day.
fn minute_of(text: &str) -> Option<u16> {
    let (h, m) = text.trim().split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    let minute = h.checked_mul(60)?.checked_add(m)?;
    (m < 60 && minute <= 24 * 60).then_some(minute)
}

impl WorkingHours {
    /// If `at_ms` falls inside these hours read at `utc_offset_minutes`, when that stretch of
    /// working time ends (UTC ms); `None` outside them.
    pub fn stretch_end(&self, at_ms: i64, utc_offset_minutes: i32) -> Option<i64> {
        let local = at_ms + i64::from(utc_offset_minutes) * MINUTE_MS;
        let day_start = local.div_euclid(DAY_MS) * DAY_MS;
        // 1970-01-01 was a Thursday (index 3 with Monday first).
        let weekday = usize::try_from((local.div_euclid(DAY_MS) + 3).rem_euclid(7)).ok()?;
        let minute = (local - day_start) / MINUTE_MS;
        let inside =
            self.days[weekday] && minute >= i64::from(self.start_minute) && minute < i64::from(self.end_minute);
        inside.then(|| day_start + i64::from(self.end_minute) * MINUTE_MS - i64::from(utc_offset_minutes) * MINUTE_MS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours(days: &[&str], span: &str) -> Result<WorkingHours, String> {
        WorkingHours::try_from(RawHours { days: days.iter().map(|d| (*d).to_owned()).collect(), hours: span.into() })
    }

    // 2026-12-07 was a Monday; 10:00 UTC.
    const MONDAY_10_UTC: i64 = 1_796_637_600_000;

    #[test]
    fn a_weekday_morning_is_inside_and_its_stretch_ends_at_closing_time() {
        let week = hours(&["mon", "tue", "wed", "thu", "fri"], "08:00-18:00").unwrap();
        assert_eq!(week.stretch_end(MONDAY_10_UTC, 0), Some(MONDAY_10_UTC + 8 * 3_600_000));
    }

    #[test]
    fn nights_weekends_and_days_off_are_outside() {
        let week = hours(&["mon", "tue", "wed", "thu", "fri"], "08:00-18:00").unwrap();
        assert_eq!(week.stretch_end(MONDAY_10_UTC + 9 * 3_600_000, 0), None, "19:00");
        assert_eq!(week.stretch_end(MONDAY_10_UTC - 3 * 3_600_000, 0), None, "07:00");
        assert_eq!(week.stretch_end(MONDAY_10_UTC - 2 * 86_400_000, 0), None, "Saturday");
        let tuesdays = hours(&["tue"], "08:00-18:00").unwrap();
        assert_eq!(tuesdays.stretch_end(MONDAY_10_UTC, 0), None);
    }

    #[test]
    fn the_offset_moves_the_local_day() {
        // 10:00 UTC is 05:00 at UTC-5: before opening.
        let week = hours(&["mon"], "08:00-18:00").unwrap();
        assert_eq!(week.stretch_end(MONDAY_10_UTC, -300), None);
        // 15:00 UTC is 10:00 at UTC-5; closing is 18:00 local, 23:00 UTC.
        let at = MONDAY_10_UTC + 5 * 3_600_000;
        assert_eq!(week.stretch_end(at, -300), Some(MONDAY_10_UTC + 13 * 3_600_000));
    }

    #[test]
    fn malformed_hours_are_refused() {
        assert!(hours(&["mon"], "18:00-08:00").is_err());
        assert!(hours(&["mon"], "8-18").is_err());
        assert!(hours(&["mon"], "08:00-25:00").is_err());
        assert!(hours(&["monday"], "08:00-18:00").is_err());
    }
}
