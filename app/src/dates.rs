//! ISO-8601 dates and date-times as Dark Web ID data and ConnectWise use them: one reader, one conversion to UTC,
//! shared by the field mapping (dates sent to ConnectWise) and the compromise import (dates stored). Pure code, for
//! the browser and the server alike.

/// A date or date-time as written (fractions of a second are dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    pub year: i64,
    pub month: i64,
    pub day: i64,
    /// Minutes since midnight; 0 for a date alone.
    pub minutes: i64,
    pub second: i64,
    pub has_time: bool,
    /// Minutes east of UTC; `None` when the text has no zone.
    pub offset: Option<i64>,
}

/// Why a text is not a date, in the order the reader meets the problems.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateError {
    /// Not `YYYY-MM-DD`, optionally followed by `T`/`t`/space, `HH:MM[:SS[.fff]]` and `Z` or `±HH[[:]MM]`.
    Syntax,
    NotACalendarDate {
        year: i64,
        month: i64,
        day: i64,
    },
    ImpossibleTime {
        hour: i64,
        minute: i64,
        second: i64,
    },
    ImpossibleOffset,
}

fn digits(s: &str, n: usize) -> Option<(i64, &str)> {
    let head = s.get(..n)?;
    if !head.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((head.parse().ok()?, &s[n..]))
}

/// Reads `2025-03-14`, `2025-03-14T09:26:53Z`, `2025-03-14 11:26+02:00`, `…+0200`, `…+02`, `…T09:26:53.5z`.
pub fn parse(s: &str) -> Result<DateTime, DateError> {
    use DateError::Syntax;
    let (year, rest) = digits(s, 4).ok_or(Syntax)?;
    let (month, rest) = digits(rest.strip_prefix('-').ok_or(Syntax)?, 2).ok_or(Syntax)?;
    let (day, rest) = digits(rest.strip_prefix('-').ok_or(Syntax)?, 2).ok_or(Syntax)?;
    let mut out = DateTime { year, month, day, minutes: 0, second: 0, has_time: false, offset: None };
    let time = match rest.strip_prefix(['T', 't', ' ']) {
        Some(time) => Some(time),
        None if rest.is_empty() => None,
        None => return Err(Syntax),
    };
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(DateError::NotACalendarDate { year, month, day });
    }
    let Some(rest) = time else { return Ok(out) };
    let (hour, rest) = digits(rest, 2).ok_or(Syntax)?;
    let (minute, mut rest) = digits(rest.strip_prefix(':').ok_or(Syntax)?, 2).ok_or(Syntax)?;
    if let Some(after) = rest.strip_prefix(':') {
        let (second, after) = digits(after, 2).ok_or(Syntax)?;
        out.second = second;
        rest = after;
        if let Some(fraction) = rest.strip_prefix(['.', ',']) {
            let len = fraction.bytes().take_while(u8::is_ascii_digit).count();
            if len == 0 {
                return Err(Syntax);
            }
            rest = &fraction[len..];
        }
    }
    if hour > 23 || minute > 59 || out.second > 59 {
        return Err(DateError::ImpossibleTime { hour, minute, second: out.second });
    }
    out.minutes = hour * 60 + minute;
    out.has_time = true;
    if rest.is_empty() {
        return Ok(out);
    }
    if rest == "Z" || rest == "z" {
        out.offset = Some(0);
        return Ok(out);
    }
    let sign = match rest.as_bytes().first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Err(Syntax),
    };
    let (oh, zone) = digits(&rest[1..], 2).ok_or(Syntax)?;
    let om = if zone.is_empty() {
        0
    } else {
        let (om, zone) = digits(zone.strip_prefix(':').unwrap_or(zone), 2).ok_or(Syntax)?;
        if !zone.is_empty() {
            return Err(Syntax);
        }
        om
    };
    if oh > 23 || om > 59 {
        return Err(DateError::ImpossibleOffset);
    }
    out.offset = Some(sign * (oh * 60 + om));
    Ok(out)
}

impl DateTime {
    /// `YYYY-MM-DDTHH:MM:SSZ`, converted to UTC (a text without a zone is taken as UTC); `None` when the result
    /// falls outside the years 0000–9999.
    pub fn to_utc_string(&self) -> Option<String> {
        let total = days_from_civil(self.year, self.month, self.day) * 1440 + self.minutes - self.offset.unwrap_or(0);
        let (year, month, day) = civil_from_days(total.div_euclid(1440));
        let minutes = total.rem_euclid(1440);
        (0..=9999).contains(&year).then(|| {
            format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", minutes / 60, minutes % 60, self.second)
        })
    }
}

/// `2026-11-27 15:43 UTC` from milliseconds since the Unix epoch: how every page shows a stored time, formatted
/// on the server so SSR and hydration show the same text.
#[cfg(feature = "ssr")]
pub fn format_millis(millis: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (proleptic Gregorian; H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (if month <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_offset_form_and_converts_to_utc() {
        for text in [
            "2025-03-14T11:26:53+02:00",
            "2025-03-14T11:26:53+0200",
            "2025-03-14 11:26:53+02",
            "2025-03-14T09:26:53.75Z",
        ] {
            assert_eq!(
                parse(text).ok().and_then(|d| d.to_utc_string()).as_deref(),
                Some("2025-03-14T09:26:53Z"),
                "{text}"
            );
        }
        assert_eq!(parse("2024-02-29").ok().and_then(|d| d.to_utc_string()).as_deref(), Some("2024-02-29T00:00:00Z"));
        assert_eq!(parse("0000-01-01T00:30+01:00").ok().and_then(|d| d.to_utc_string()), None, "before year 0000");
    }

    #[test]
    fn says_why_a_text_is_not_a_date() {
        assert_eq!(parse("14/03/2025"), Err(DateError::Syntax));
        assert_eq!(parse("2025-02-29"), Err(DateError::NotACalendarDate { year: 2025, month: 2, day: 29 }));
        assert_eq!(parse("2025-03-14T24:00"), Err(DateError::ImpossibleTime { hour: 24, minute: 0, second: 0 }));
        assert_eq!(parse("2025-03-14T10:00+25:00"), Err(DateError::ImpossibleOffset));
        assert_eq!(parse("2025-03-14T10:00+02:"), Err(DateError::Syntax));
    }
}
