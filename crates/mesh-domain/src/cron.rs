//! EventBridge Scheduler schedule expressions, parsed as EventBridge reads them:
//! `cron(minutes hours day-of-month month day-of-week year)` and `rate(N unit)`.
//!
//! The rules are those of the EventBridge cron reference: six fields, their ranges (0-59, 0-23,
//! 1-31, 1-12 or JAN-DEC, 1-7 or SUN-SAT, 1970-2199), the wildcards each field takes
//! (`, - * /` everywhere but day-of-week, which has no `/`; `?` `L` `W` in day-of-month; `?` `L`
//! `#` in day-of-week), exactly one of the two day fields `?`, and a single expression in a
//! day-of-week field that uses `#`. Where the reference is silent, EventBridge follows Quartz,
//! and so does this parser: `L`, `LW` and `NW` stand alone in day-of-month, `L`, `NL` and `N#k`
//! (k from 1 to 5) alone in day-of-week; a step is at most the field's largest value (`*/60` in
//! the minutes is refused); a range whose end comes first wraps around (`FRI-MON`, `22-2`),
//! except in the year. Names and letters are read without regard to case.
//!
//! EventBridge accepts an expression that never fires (`cron(0 6 31 2 ? *)`, `cron(0 6 ? * 2#5
//! 2026)` where no February has five Mondays…), so a parsed cron is searched for its first and
//! last fire day over every day from 1970 to 2199, and [`check_schedule`] refuses one that never
//! fires, or fires only before now.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::param::days_in_month;

/// A schedule that EventBridge would refuse, or that never fires: what is wrong and how to
/// write it instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleError {
    pub message: String,
    pub help: String,
}

impl std::fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A parsed schedule expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    Cron(Cron),
    Rate { value: u32, unit: RateUnit },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateUnit {
    Minute,
    Hour,
    Day,
}

/// A parsed `cron(…)`: each field as the set of values it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    /// Indexed by value: `minutes[5]` is whether minute 5 matches.
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days: Days,
    months: Vec<bool>,
    years: Vec<bool>,
}

/// The day fields: day-of-month or day-of-week (the other one is `?`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Days {
    /// Day-of-month values, indexed 1..=31.
    OfMonth(Vec<bool>),
    /// `L` in day-of-month.
    LastOfMonth,
    /// `LW`: the last weekday (Monday to Friday) of the month.
    LastWeekdayOfMonth,
    /// `NW`: the weekday nearest day N, within its month.
    NearestWeekday(u32),
    /// Day-of-week values, indexed 1..=7 (1 is Sunday).
    OfWeek(Vec<bool>),
    /// `NL`: the last weekday N of the month (`6L`: the last Friday).
    LastInMonth(u32),
    /// `N#k`: the k-th weekday N of the month (`3#2`: the second Tuesday).
    Nth(u32, u32),
}

/// One cron field's rules.
#[derive(Debug, Clone, Copy)]
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names standing for `min`, `min + 1`, …
    names: &'static [&'static str],
    /// The largest step after `/`; 0 when the field takes no `/`.
    max_step: u32,
    /// Whether a range may wrap around (`22-2`).
    cyclic: bool,
    /// What the field takes, for the help line.
    takes: &'static str,
}

const MINUTES: Field = Field {
    name: "minutes",
    min: 0,
    max: 59,
    names: &[],
    max_step: 59,
    cyclic: true,
    takes: "minutes take 0-59 and the wildcards , - * /",
};
const HOURS: Field = Field {
    name: "hours",
    min: 0,
    max: 23,
    names: &[],
    max_step: 23,
    cyclic: true,
    takes: "hours take 0-23 (UTC) and the wildcards , - * /",
};
const DAY_OF_MONTH: Field = Field {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
    max_step: 31,
    cyclic: true,
    takes: "day-of-month takes 1-31, the wildcards , - * / and ?, or alone `L` (last day), `LW` (last weekday) or one day with `W` such as `15W`",
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
    max_step: 12,
    cyclic: true,
    takes: "month takes 1-12 or JAN-DEC and the wildcards , - * /",
};
const DAY_OF_WEEK: Field = Field {
    name: "day-of-week",
    min: 1,
    max: 7,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
    max_step: 0,
    cyclic: true,
    takes: "day-of-week takes 1-7 or SUN-SAT (1 is Sunday), the wildcards , - * and ?, or alone `L`, `5L` (last Thursday) or `2#1` (first Monday)",
};
const YEAR: Field = Field {
    name: "year",
    min: 1970,
    max: 2199,
    names: &[],
    max_step: 2199 - 1970,
    cyclic: false,
    takes: "year takes 1970-2199 and the wildcards , - * /",
};

const EXAMPLES: &str =
    "e.g. cron(0 6 * * ? *) (06:00 UTC daily), cron(0 6 ? * MON-FRI *), rate(1 hour) or rate(15 minutes)";

/// Checks an EventBridge Scheduler expression: it parses as EventBridge parses it and, for a
/// cron expression, fires at least once after now.
pub fn check_schedule(expr: &str) -> Result<Schedule, ScheduleError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    check_schedule_at(expr, now)
}

/// [`check_schedule`] with "now" given, in seconds since 1970 (UTC).
pub fn check_schedule_at(expr: &str, now_secs: i64) -> Result<Schedule, ScheduleError> {
    let schedule = parse_schedule(expr)?;
    if let Schedule::Cron(c) = &schedule {
        let shown = crate::diagnostic::truncate(expr);
        let Some((y, m, d)) = c.last_fire_day() else {
            return Err(ScheduleError {
                message: format!(
                    "`{shown}` never fires: no day from 1970 to 2199 matches its day-of-month, month, day-of-week and year together"
                ),
                help: c.never_fires_help(),
            });
        };
        let last_minute = days_from_civil(y, m, d) * 1440
            + c.hours.iter().rposition(|h| *h).unwrap_or(0) as i64 * 60
            + c.minutes.iter().rposition(|m| *m).unwrap_or(0) as i64;
        if last_minute * 60 < now_secs {
            return Err(ScheduleError {
                message: format!("`{shown}` last fires on {y:04}-{m:02}-{d:02}: it never fires again"),
                help: "widen the year field (`*` for every year) or remove the schedule".into(),
            });
        }
    }
    Ok(schedule)
}

/// Parses `cron(…)` or `rate(…)` without asking whether it ever fires.
pub fn parse_schedule(expr: &str) -> Result<Schedule, ScheduleError> {
    let shown = crate::diagnostic::truncate(expr);
    if let Some(inner) = expr.strip_prefix("cron(").and_then(|s| s.strip_suffix(')')) {
        return parse_cron(inner)
            .map(Schedule::Cron)
            .map_err(|(message, help)| ScheduleError {
                message: format!("`{shown}`: {message}"),
                help,
            });
    }
    if let Some(inner) = expr.strip_prefix("rate(").and_then(|s| s.strip_suffix(')')) {
        return parse_rate(inner).map_err(|(message, help)| ScheduleError {
            message: format!("`{shown}`: {message}"),
            help,
        });
    }
    Err(ScheduleError {
        message: format!("`{shown}` is not a schedule expression"),
        help: format!("EventBridge Scheduler takes cron(minutes hours day-of-month month day-of-week year) or rate(N unit): {EXAMPLES}"),
    })
}

type Problem = (String, String);

fn parse_rate(inner: &str) -> Result<Schedule, Problem> {
    let help = "write rate(N unit) with N ≥ 1 and unit minute, hour or day (plural when N > 1): rate(1 hour), rate(15 minutes), rate(2 days)";
    let parts: Vec<&str> = inner.split_whitespace().collect();
    let [n, unit] = parts.as_slice() else {
        return Err(("a rate is a number and a unit".into(), help.into()));
    };
    let value = match n.parse::<u32>() {
        Ok(v) if v > 0 && n.bytes().all(|b| b.is_ascii_digit()) => v,
        _ => return Err((format!("`{n}` is not a positive whole number"), help.into())),
    };
    let (unit, plural) = match *unit {
        "minute" => (RateUnit::Minute, false),
        "minutes" => (RateUnit::Minute, true),
        "hour" => (RateUnit::Hour, false),
        "hours" => (RateUnit::Hour, true),
        "day" => (RateUnit::Day, false),
        "days" => (RateUnit::Day, true),
        other => return Err((format!("`{other}` is not a rate unit"), help.into())),
    };
    // EventBridge: "If the value is equal to 1, then the unit must be singular", and plural above.
    if plural != (value > 1) {
        let singular = match unit {
            RateUnit::Minute => "minute",
            RateUnit::Hour => "hour",
            RateUnit::Day => "day",
        };
        let fixed = if value > 1 {
            format!("rate({value} {singular}s)")
        } else {
            format!("rate(1 {singular})")
        };
        return Err((
            format!(
                "EventBridge takes the unit in the {} with {value}",
                if value > 1 { "plural" } else { "singular" }
            ),
            format!("write {fixed}"),
        ));
    }
    Ok(Schedule::Rate { value, unit })
}

fn parse_cron(inner: &str) -> Result<Cron, Problem> {
    let upper = inner.to_ascii_uppercase();
    let fields: Vec<&str> = upper.split_whitespace().collect();
    if fields.len() != 6 {
        return Err((
            format!(
                "{} fields; an EventBridge cron has 6: minutes hours day-of-month month day-of-week year",
                fields.len()
            ),
            format!("add the year (usually `*`) and `?` for the unused day field: {EXAMPLES}"),
        ));
    }
    let in_field = |f: Field| move |message: String| (format!("{}: {message}", f.name), f.takes.to_string());
    let minutes = parse_list(fields[0], MINUTES).map_err(in_field(MINUTES))?;
    let hours = parse_list(fields[1], HOURS).map_err(in_field(HOURS))?;
    let months = parse_list(fields[3], MONTH).map_err(in_field(MONTH))?;
    let years = parse_list(fields[5], YEAR).map_err(in_field(YEAR))?;
    let days = match (fields[2], fields[4]) {
        ("?", "?") => {
            return Err((
                "day-of-month and day-of-week are both `?`".into(),
                "one of them must name the days: `*` in day-of-month for every day, e.g. cron(0 6 * * ? *)".into(),
            ))
        }
        (dom, "?") => parse_day_of_month(dom).map_err(in_field(DAY_OF_MONTH))?,
        ("?", dow) => parse_day_of_week(dow).map_err(in_field(DAY_OF_WEEK))?,
        _ => {
            return Err((
                "one of day-of-month and day-of-week must be `?`".into(),
                "EventBridge takes days from one of the two fields: cron(0 6 * * ? *) for every day, cron(0 6 ? * MON *) for Mondays".into(),
            ))
        }
    };
    Ok(Cron {
        minutes,
        hours,
        days,
        months,
        years,
    })
}

fn parse_day_of_month(text: &str) -> Result<Days, String> {
    match text {
        "L" => return Ok(Days::LastOfMonth),
        "LW" => return Ok(Days::LastWeekdayOfMonth),
        _ => {}
    }
    if let Some(day) = text.strip_suffix('W') {
        if !day.is_empty() && day.bytes().all(|b| b.is_ascii_digit()) {
            return value(day, DAY_OF_MONTH).map(Days::NearestWeekday);
        }
    }
    if text.contains(['L', 'W']) {
        return Err(format!(
            "`{text}`: `L` and `W` stand alone in day-of-month (`L`, `LW` or one day such as `15W`), not in a list or a range"
        ));
    }
    parse_list(text, DAY_OF_MONTH).map(Days::OfMonth)
}

fn parse_day_of_week(text: &str) -> Result<Days, String> {
    if text == "L" {
        // The last day of the week: Saturday.
        let mut set = vec![false; 8];
        set[7] = true;
        return Ok(Days::OfWeek(set));
    }
    if text.contains('#') {
        if text.contains(',') {
            return Err(format!(
                "`{text}`: a day-of-week with `#` holds one expression only (`3#1,6#3` is two)"
            ));
        }
        let (day, nth) = text.split_once('#').unwrap_or((text, ""));
        let day = value(day, DAY_OF_WEEK)?;
        return match nth.parse::<u32>() {
            Ok(k @ 1..=5) if nth.bytes().all(|b| b.is_ascii_digit()) => Ok(Days::Nth(day, k)),
            _ => Err(format!(
                "`{text}`: the number after `#` is the week of the month, 1 to 5"
            )),
        };
    }
    if let Some(day) = text.strip_suffix('L') {
        if !day.is_empty() && !day.contains(['L', ',', '-', '*', '/']) {
            return value(day, DAY_OF_WEEK).map(Days::LastInMonth);
        }
    }
    if text.contains('L') {
        return Err(format!(
            "`{text}`: `L` stands alone in day-of-week (`L` or one day such as `6L`, the last Friday), not in a list or a range"
        ));
    }
    parse_list(text, DAY_OF_WEEK).map(Days::OfWeek)
}

/// A list of `*`, values, ranges and steps: the set of values it matches, indexed by value.
fn parse_list(text: &str, f: Field) -> Result<Vec<bool>, String> {
    let mut set = vec![false; f.max as usize + 1];
    for item in text.split(',') {
        if item.is_empty() {
            return Err(format!("`{text}` has an empty item"));
        }
        if item.contains('?') {
            return Err(format!(
                "`{item}`: `?` stands alone, and only in day-of-month or day-of-week"
            ));
        }
        let (range, step) = match item.split_once('/') {
            None => (item, None),
            Some(_) if f.max_step == 0 => {
                return Err(format!("`{item}`: {} takes no `/`", f.name));
            }
            Some((range, step)) => match step.parse::<u32>() {
                Ok(s @ 1..) if s <= f.max_step && step.bytes().all(|b| b.is_ascii_digit()) => (range, Some(s)),
                _ => {
                    return Err(format!(
                        "`{item}`: the step after `/` must be a whole number from 1 to {}",
                        f.max_step
                    ))
                }
            },
        };
        let (lo, hi) = if range == "*" {
            (f.min, f.max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, f)?, value(b, f)?)
        } else {
            let v = value(range, f)?;
            // `5/15` runs from 5 to the field's end.
            (v, if step.is_some() { f.max } else { v })
        };
        let values: Vec<u32> = if lo <= hi {
            (lo..=hi).collect()
        } else if f.cyclic {
            (lo..=f.max).chain(f.min..=hi).collect()
        } else {
            return Err(format!("`{range}` runs backwards"));
        };
        for v in values.into_iter().step_by(step.unwrap_or(1) as usize) {
            set[v as usize] = true;
        }
    }
    Ok(set)
}

/// One value of field `f`: a number in its range or one of its names.
fn value(text: &str, f: Field) -> Result<u32, String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u32>() {
            Ok(v) if (f.min..=f.max).contains(&v) => Ok(v),
            _ => Err(format!(
                "{} is out of range {}-{}",
                crate::diagnostic::truncate(text),
                f.min,
                f.max
            )),
        };
    }
    if let Some(i) = f.names.iter().position(|n| *n == text) {
        return Ok(f.min + i as u32);
    }
    Err(format!(
        "`{}` is not a {} value",
        crate::diagnostic::truncate(text),
        f.name
    ))
}

impl Cron {
    /// The first day (year, month, day) this expression fires on, from 1970 to 2199.
    pub fn first_fire_day(&self) -> Option<(i32, u32, u32)> {
        self.fire_days(false)
    }

    /// The last day this expression fires on, up to 2199.
    pub fn last_fire_day(&self) -> Option<(i32, u32, u32)> {
        self.fire_days(true)
    }

    fn fire_days(&self, backwards: bool) -> Option<(i32, u32, u32)> {
        let mut years: Vec<u32> = (YEAR.min..=YEAR.max).filter(|y| self.years[*y as usize]).collect();
        let mut months: Vec<u32> = (1..=12).filter(|m| self.months[*m as usize]).collect();
        if backwards {
            years.reverse();
            months.reverse();
        }
        for y in years {
            let y = y as i32;
            for &m in &months {
                let dim = days_in_month(y, m).unwrap_or(31);
                let mut days: Vec<u32> = (1..=dim).collect();
                if backwards {
                    days.reverse();
                }
                if let Some(d) = days.into_iter().find(|d| self.day_matches(y, m, *d, dim)) {
                    return Some((y, m, d));
                }
            }
        }
        None
    }

    fn day_matches(&self, y: i32, m: u32, d: u32, dim: u32) -> bool {
        let wd = weekday(y, m, d);
        match &self.days {
            Days::OfMonth(set) => set[d as usize],
            Days::LastOfMonth => d == dim,
            Days::LastWeekdayOfMonth => {
                let last = match weekday(y, m, dim) {
                    7 => dim - 1,
                    1 => dim - 2,
                    _ => dim,
                };
                d == last
            }
            Days::NearestWeekday(n) => {
                let n = *n;
                if n > dim {
                    return false;
                }
                // Saturday moves to Friday, Sunday to Monday, never out of the month.
                let target = match weekday(y, m, n) {
                    7 if n == 1 => 3,
                    7 => n - 1,
                    1 if n == dim => n - 2,
                    1 => n + 1,
                    _ => n,
                };
                d == target
            }
            Days::OfWeek(set) => set[wd as usize],
            Days::LastInMonth(w) => wd == *w && d + 7 > dim,
            Days::Nth(w, k) => wd == *w && (d - 1) / 7 + 1 == *k,
        }
    }

    /// Why nothing matches, in the terms of the fields that cause it.
    fn never_fires_help(&self) -> String {
        match &self.days {
            Days::OfMonth(set) if !set[1..=28].iter().any(|b| *b) => {
                "the day-of-month names only days some months lack (February has 28 or 29 days; April, June, September and November 30): add a month that has them, or use `L` for the last day of the month".into()
            }
            Days::NearestWeekday(_) => {
                "the day before `W` does not exist in the months named: pick a smaller day or `LW` for the last weekday".into()
            }
            Days::Nth(_, 5) => "no month named has a fifth such weekday in the years named: use `L` after the day (`2L`, the last Monday) or a smaller number after `#`".into(),
            _ => "no day matches the day, month and year fields together: widen one of them".into(),
        }
    }
}

/// Day of the week, 1 (Sunday) to 7 (Saturday), as EventBridge numbers them.
fn weekday(y: i32, m: u32, d: u32) -> u32 {
    // 1970-01-01 was a Thursday (5).
    (days_from_civil(y, m, d) + 4).rem_euclid(7) as u32 + 1
}

/// Days from 1970-01-01 to the proleptic Gregorian date `y-m-d`.
fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    // Count from 1 March so February, with its leap day, ends each shifted year.
    let (y, m) = if m <= 2 {
        (i64::from(y) - 1, m + 9)
    } else {
        (i64::from(y), m - 3)
    };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * i64::from(m) + 2) / 5 + i64::from(d) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-07T00:00:00Z.
    const NOW: i64 = 1_796_601_600;

    fn ok(expr: &str) -> Cron {
        match check_schedule_at(expr, NOW) {
            Ok(Schedule::Cron(c)) => c,
            other => panic!("{expr}: {other:?}"),
        }
    }

    /// Parsed only: these dates are in the past.
    fn parsed(expr: &str) -> Cron {
        match parse_schedule(expr) {
            Ok(Schedule::Cron(c)) => c,
            other => panic!("{expr}: {other:?}"),
        }
    }

    #[track_caller]
    fn refused(expr: &str, wanted: &str) -> ScheduleError {
        let e = check_schedule_at(expr, NOW).expect_err(expr);
        assert!(e.message.contains(wanted), "{expr}: `{wanted}` not in {e:?}");
        assert!(!e.help.is_empty(), "{expr}: no help");
        e
    }

    #[test]
    fn calendar_arithmetic() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 12, 7) * 86_400, NOW);
        assert_eq!(weekday(1970, 1, 1), 5, "Thursday");
        assert_eq!(weekday(2026, 12, 7), 2, "Monday");
        assert_eq!(weekday(2000, 2, 29), 3, "Tuesday");
        assert_eq!(weekday(2199, 12, 31), 3, "Tuesday");
    }

    #[test]
    fn valid_expressions_parse() {
        for e in [
            "cron(0 6 * * ? *)",
            "cron(30 5 * * ? *)",
            "cron(0/15 * * * ? *)",
            "cron(*/5 8-17 ? * MON-FRI *)",
            "cron(0-15/1 8-8 ? * 2,3,4,5,6,7 *)",
            "cron(0 0 1-31/30 * ? *)",
            "cron(0 11-23/2 * * ? *)",
            "cron(0 0 1 1-12/3 ? *)",
            "cron(0 18 L * ? *)",
            "cron(0 9 LW * ? *)",
            "cron(0 9 15W * ? *)",
            "cron(0 9 1W * ? *)",
            "cron(0 10 ? * 6L 2030-2040)",
            "cron(0 10 ? * FRIL *)",
            "cron(0 10 ? * 3#2 *)",
            "cron(0 10 ? * tue#2 *)",
            "cron(0 10 ? * L *)",
            "cron(0 22-2 ? * FRI-MON *)",
            "cron(0 0 29 2 ? *)",
            "cron(0 0 31 JAN,MAR ? *)",
            "cron(59 23 31 12 ? 2199)",
            "cron(0 6 * jan-dec ? 2027/2)",
            "rate(1 minute)",
            "rate(15 minutes)",
            "rate(1 hour)",
            "rate(2 days)",
        ] {
            assert!(
                check_schedule_at(e, NOW).is_ok(),
                "{e}: {:?}",
                check_schedule_at(e, NOW)
            );
        }
    }

    #[test]
    fn out_of_range_values_are_refused_naming_the_field() {
        refused("cron(0 25 * * ? *)", "hours: 25 is out of range 0-23");
        refused("cron(60 6 * * ? *)", "minutes: 60 is out of range 0-59");
        refused("cron(0 6 0 * ? *)", "day-of-month: 0 is out of range 1-31");
        refused("cron(0 6 32 * ? *)", "day-of-month: 32");
        refused("cron(0 6 1 13 ? *)", "month: 13 is out of range 1-12");
        refused("cron(0 6 1 0 ? *)", "month: 0");
        refused("cron(0 6 ? * 8 *)", "day-of-week: 8 is out of range 1-7");
        refused("cron(0 6 ? * 0 *)", "day-of-week: 0");
        refused("cron(0 6 ? * 1-8 *)", "day-of-week: 8");
        refused("cron(0 6 * * ? 1969)", "year: 1969 is out of range 1970-2199");
        refused("cron(0 6 * * ? 2200)", "year: 2200");
        refused("cron(0 6 * * ? 2020-2200)", "year: 2200");
        refused("cron(0 6 32W * ? *)", "day-of-month: 32 is out of range");
        refused("cron(0 6 0W * ? *)", "day-of-month: 0 is out of range");
        refused("cron(0 6 ? * 8L *)", "day-of-week: 8");
        refused("cron(0 6 ? * 8#1 *)", "day-of-week: 8");
        refused("cron(0 6 ? * 2#6 *)", "1 to 5");
        refused("cron(0 6 ? * 2#0 *)", "1 to 5");
        refused("cron(0 99999999999 * * ? *)", "hours: 99999999999 is out of range");
        refused("cron(0 6 * FOO ? *)", "month: `FOO` is not a month value");
        refused("cron(0 6 ? * MON-FOO *)", "`FOO` is not a day-of-week value");
        refused("cron(0 6 * * ? -1)", "year");
    }

    #[test]
    fn day_fields_need_exactly_one_question_mark() {
        refused("cron(0 6 ? * ? *)", "both `?`");
        refused("cron(0 6 * * * *)", "must be `?`");
        refused("cron(0 6 1 * MON *)", "must be `?`");
        refused("cron(0 6 * ? * *)", "month");
        refused("cron(? 6 * * ? *)", "minutes");
        refused("cron(0 6 1,? * ? *)", "stands alone");
    }

    #[test]
    fn wildcards_only_where_eventbridge_takes_them() {
        refused("cron(0 6 ? * MON/2 *)", "day-of-week takes no `/`");
        refused("cron(L 6 * * ? *)", "minutes");
        refused("cron(0 6 * L ? *)", "month");
        refused("cron(0 6 ? * 2W *)", "day-of-week");
        refused("cron(0 6 1#2 * ? *)", "day-of-month");
        refused("cron(0 6 1W,15W * ? *)", "stand alone");
        refused("cron(0 6 1-5W * ? *)", "stand alone");
        refused("cron(0 6 L-3 * ? *)", "stand alone");
        refused("cron(0 6 ? * 3#1,6#3 *)", "one expression");
        refused("cron(0 6 ? * 1L,2 *)", "stands alone");
        refused("cron(*/60 * * * ? *)", "from 1 to 59");
        refused("cron(0/0 * * * ? *)", "from 1 to 59");
        refused("cron(0 */24 * * ? *)", "from 1 to 23");
        refused("cron(0 6 1/32 * ? *)", "from 1 to 31");
        refused("cron(0 6 1 */13 ? *)", "from 1 to 12");
        refused("cron(0 6 * * ? 2030-2020)", "runs backwards");
        refused("cron(0 6 1,,2 * ? *)", "empty item");
        refused("cron(0 6 * * ?)", "5 fields");
        refused("cron(0 0 6 * * ? *)", "7 fields");
        refused("cron(0 6 * * ? *", "not a schedule");
        refused("0 6 * * *", "not a schedule");
        refused("CRON(0 6 * * ? *)", "not a schedule");
    }

    #[test]
    fn rates_follow_eventbridge() {
        refused("rate(0 minutes)", "positive");
        refused("rate(-1 hours)", "positive");
        refused("rate(1.5 hours)", "positive");
        refused("rate(1 hours)", "singular");
        refused("rate(5 hour)", "plural");
        refused("rate(2 weeks)", "not a rate unit");
        refused("rate(1)", "a number and a unit");
        refused("rate(1 day extra)", "a number and a unit");
        assert_eq!(
            check_schedule_at("rate(5 hour)", NOW).unwrap_err().help,
            "write rate(5 hours)"
        );
    }

    #[test]
    fn schedules_that_never_fire_are_refused() {
        for e in [
            "cron(0 6 31 2 ? *)",
            "cron(0 6 30 2 ? *)",
            "cron(0 6 30,31 FEB ? *)",
            "cron(0 6 31 4,6,9,11 ? *)",
            "cron(0 6 31 APR-JUN/2 ? *)",
            "cron(0 6 31W 2 ? *)",
            "cron(0 6 30W 2 ? *)",
        ] {
            let err = refused(e, "never fires");
            assert!(err.help.contains("day"), "{e}: {err:?}");
        }
        // 29 February: leap years only; none in 2100 to 2103.
        refused("cron(0 6 29 2 ? 2100-2103)", "never fires");
        ok("cron(0 6 29 2 ? 2100-2104)");
        // A fifth Monday in February: a leap year whose February starts on a Monday (2016,
        // then 2044).
        let e = refused("cron(0 6 ? 2 2#5 2017-2043)", "never fires");
        assert!(e.help.contains("fifth"), "{e:?}");
        assert_eq!(ok("cron(0 6 ? 2 2#5 2017-2044)").first_fire_day(), Some((2044, 2, 29)));
        assert_eq!(ok("cron(0 6 ? 2 MON#5 *)").first_fire_day(), Some((1988, 2, 29)));
        // 31 in a month with 31 days somewhere in the list fires.
        ok("cron(0 6 31 4,5 ? *)");
        ok("cron(0 6 31 NOV-JAN ? *)");
    }

    #[test]
    fn schedules_that_fire_only_in_the_past_are_refused() {
        let e = refused("cron(0 6 * * ? 2020)", "last fires on 2020-12-31");
        assert!(e.help.contains("year"), "{e:?}");
        refused("cron(0 6 ? * MON 1970-2025)", "never fires again");
        // Today at 23:59 is still ahead of midnight.
        ok("cron(59 23 7 12 ? 2026)");
        refused("cron(59 23 6 12 ? 2026)", "last fires on 2026-12-06");
    }

    #[test]
    fn fire_days_follow_quartz_semantics() {
        // 2026-02: 1st is a Sunday, 28th a Saturday.
        assert_eq!(parsed("cron(0 6 1W 2 ? 2026)").first_fire_day(), Some((2026, 2, 2)));
        assert_eq!(parsed("cron(0 6 28W 2 ? 2026)").first_fire_day(), Some((2026, 2, 27)));
        assert_eq!(parsed("cron(0 6 LW 2 ? 2026)").first_fire_day(), Some((2026, 2, 27)));
        assert_eq!(parsed("cron(0 6 L 2 ? 2028)").first_fire_day(), Some((2028, 2, 29)));
        // 2026-08-01 is a Saturday: 1W is Monday the 3rd, not Friday in July.
        assert_eq!(parsed("cron(0 6 1W 8 ? 2026)").first_fire_day(), Some((2026, 8, 3)));
        // 2026-05-31 is a Sunday: 31W is Friday the 29th.
        assert_eq!(parsed("cron(0 6 31W 5 ? 2026)").first_fire_day(), Some((2026, 5, 29)));
        // Second Tuesday of March 2027 (1 March 2027 is a Monday).
        assert_eq!(parsed("cron(0 6 ? 3 3#2 2027)").first_fire_day(), Some((2027, 3, 9)));
        // Last Friday of January 2027; FRIL is the same.
        assert_eq!(parsed("cron(0 6 ? 1 6L 2027)").first_fire_day(), Some((2027, 1, 29)));
        assert_eq!(
            parsed("cron(0 6 ? JAN FRIL 2027)").first_fire_day(),
            Some((2027, 1, 29))
        );
        // `L` in day-of-week is Saturday.
        assert_eq!(parsed("cron(0 6 ? 1 L 2027)").first_fire_day(), Some((2027, 1, 2)));
        // Wrapping ranges: FRI-MON from Friday 1 January 2027 includes Sunday the 3rd.
        let c = parsed("cron(0 6 ? 1 FRI-MON 2027)");
        assert!(c.day_matches(2027, 1, 3, 31) && !c.day_matches(2027, 1, 5, 31));
        // `5/10` in day-of-month: 5, 15, 25.
        let c = parsed("cron(0 6 5/10 * ? *)");
        let days: Vec<u32> = (1..=31).filter(|d| c.day_matches(2027, 1, *d, 31)).collect();
        assert_eq!(days, [5, 15, 25]);
        // `22-2/2` in hours: 22, 0, 2.
        let c = parsed("cron(0 22-2/2 * * ? *)");
        let hours: Vec<usize> = (0..24).filter(|h| c.hours[*h]).collect();
        assert_eq!(hours, [0, 2, 22]);
        assert_eq!(parsed("cron(0 6 * * ? 2199)").last_fire_day(), Some((2199, 12, 31)));
    }
}
