//! Dates and times in the browser's own time zone (the person's), through JavaScript's `Date`.

use js_sys::Date;
use wasm_bindgen::JsValue;

use crate::text;

fn date(ms: f64) -> Date {
    Date::new(&JsValue::from_f64(ms))
}

/// "2:05 PM".
pub fn clock(ms: i64) -> String {
    let d = date(ms as f64);
    let (h, m) = (d.get_hours(), d.get_minutes());
    let h12 = if h % 12 == 0 { 12 } else { h % 12 };
    format!("{h12}:{m:02} {}", if h < 12 { "AM" } else { "PM" })
}

/// "Mon, Jan 18".
pub fn day(ms: i64) -> String {
    let d = date(ms as f64);
    format!(
        "{}, {} {}",
        text::WEEKDAYS[d.get_day() as usize % 7],
        text::MONTHS[d.get_month() as usize % 12],
        d.get_date()
    )
}

/// "Mon, Jan 18, 2:05 PM".
pub fn date_time(ms: i64) -> String {
    format!("{}, {}", day(ms), clock(ms))
}

/// Local midnight of the day holding `ms`.
pub fn start_of_day(ms: f64) -> f64 {
    let d = date(ms);
    d.set_hours(0);
    d.set_minutes(0);
    d.set_seconds(0);
    d.set_milliseconds(0);
    d.get_time()
}

/// Local midnight `days` after the one of `ms` (daylight saving safe).
pub fn add_days(ms: f64, days: i32) -> f64 {
    let d = date(start_of_day(ms));
    d.set_date((d.get_date() as i32 + days) as u32);
    d.get_time()
}

/// The value of an `<input type="datetime-local">` (local time) as UTC milliseconds.
pub fn parse_local(input: &str) -> Option<i64> {
    if input.len() < 16 {
        return None;
    }
    let t = Date::new(&JsValue::from_str(input)).get_time();
    (!t.is_nan()).then_some(t as i64)
}

/// `ms` as the value of an `<input type="datetime-local">`.
pub fn to_local_input(ms: i64) -> String {
    let d = date(ms as f64);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}",
        d.get_full_year(),
        d.get_month() + 1,
        d.get_date(),
        d.get_hours(),
        d.get_minutes()
    )
}
