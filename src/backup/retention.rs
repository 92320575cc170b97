//! Which scheduled backups to keep: the newest of each of the last `keep_daily` days,
//! `keep_weekly` ISO weeks and `keep_monthly` months that have a backup (UTC), and always the
//! newest of all. Scheduled backups are named for the moment they were taken
//! (`confidant-20261207T023000.000Z.backup`); a file not named so is not one of them and is
//! never deleted.

use std::collections::BTreeSet;

use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;

const PREFIX: &str = "confidant-";
const SUFFIX: &str = "Z.backup";
const STAMP: &[FormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second].[subsecond digits:3]");

/// How many backups of each period are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keep {
    /// Days.
    pub daily: u32,
    /// ISO weeks.
    pub weekly: u32,
    /// Months.
    pub monthly: u32,
}

/// The file name of a scheduled backup taken at `at_ms` (UTC ms).
pub fn file_name(at_ms: i64) -> String {
    let at = moment(at_ms);
    let stamp = at.format(STAMP).unwrap_or_else(|_| at_ms.to_string());
    format!("{PREFIX}{stamp}{SUFFIX}")
}

/// When the scheduled backup named `name` was taken, or `None` if `name` is not one.
pub fn taken_at(name: &str) -> Option<OffsetDateTime> {
    let stamp = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let at = time::PrimitiveDateTime::parse(stamp, STAMP).ok()?;
    Some(at.assume_utc())
}

/// Of `names` (files of the backup directory), the scheduled backups that `keep` lets go.
pub fn to_delete(names: &[String], keep: Keep) -> Vec<String> {
    let mut backups: Vec<(OffsetDateTime, &String)> =
        names.iter().filter_map(|n| taken_at(n).map(|at| (at, n))).collect();
    backups.sort_by(|a, b| b.cmp(a));
    let (mut days, mut weeks, mut months) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    let mut doomed = Vec::new();
    for (n, (at, name)) in backups.into_iter().enumerate() {
        let mut kept = n == 0;
        let date = at.date();
        kept |= claim(&mut days, keep.daily, date);
        let (iso_year, week, _) = date.to_iso_week_date();
        kept |= claim(&mut weeks, keep.weekly, (iso_year, week));
        kept |= claim(&mut months, keep.monthly, (date.year(), date.month() as u8));
        if !kept {
            doomed.push(name.clone());
        }
    }
    doomed
}

/// Keeps the newest backup of `period` (it comes first) while fewer than `limit` periods hold one.
fn claim<T: Ord>(periods: &mut BTreeSet<T>, limit: u32, period: T) -> bool {
    if periods.contains(&period) || periods.len() >= limit as usize {
        return false;
    }
    periods.insert(period);
    true
}

fn moment(at_ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;
    /// Monday 2026-12-07 02:30 UTC.
    const MONDAY: i64 = 1_796_610_600_000;

    fn names(times: &[i64]) -> Vec<String> {
        times.iter().map(|t| file_name(*t)).collect()
    }

    #[test]
    fn a_name_reads_back_as_its_moment() {
        let name = file_name(MONDAY + 123);
        assert_eq!(name, "confidant-20261207T023000.123Z.backup");
        assert_eq!(taken_at(&name).map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64), Some(MONDAY + 123));
        assert_eq!(taken_at("practice.backup"), None);
        assert_eq!(taken_at("confidant-20261207T023000.123Z.partial"), None);
    }

    #[test]
    fn the_newest_of_each_day_week_and_month_is_kept() {
        // Every day for 70 days back, twice a day.
        let times: Vec<i64> = (0..140).map(|n| MONDAY - n * DAY / 2).collect();
        let all = names(&times);
        let doomed = to_delete(&all, Keep { daily: 3, weekly: 3, monthly: 2 });
        let kept: Vec<&String> = all.iter().filter(|n| !doomed.contains(n)).collect();
        let days: Vec<&str> = kept.iter().map(|n| &n[10..18]).collect();
        // Three days (the 7th, 6th, 5th); three weeks: this one (the 7th), the last (Sunday the
        // 6th) and the one before (Sunday 29 November); two months: December (the 7th) and
        // November (its newest, the 30th).
        assert_eq!(days, ["20261207", "20261206", "20261205", "20261130", "20261129"]);
    }

    #[test]
    fn the_newest_is_kept_even_when_nothing_else_is() {
        let all = names(&[MONDAY, MONDAY - 1000, MONDAY - 2000]);
        let doomed = to_delete(&all, Keep { daily: 0, weekly: 0, monthly: 0 });
        assert_eq!(doomed, all[1..].to_vec());
    }

    #[test]
    fn files_the_schedule_did_not_name_are_never_deleted() {
        let mut all = names(&[MONDAY, MONDAY - DAY]);
        all.push("before-the-move.backup".to_owned());
        let doomed = to_delete(&all, Keep { daily: 1, weekly: 0, monthly: 0 });
        assert_eq!(doomed, vec![all[1].clone()]);
    }
}
