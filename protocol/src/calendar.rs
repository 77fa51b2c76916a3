//! Business dates: the day a sale belongs to, in the store's time zone, with a day boundary
//! (a bar that closes at 3 am books its night on the day it opened).

use chrono::{DateTime, NaiveDate, TimeDelta};
use chrono_tz::Tz;

/// The store's calendar: its time zone and the minute after local midnight when a business day starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreCalendar {
    pub time_zone: Tz,
    pub day_start_minutes: u32,
}

impl Default for StoreCalendar {
    fn default() -> Self {
        Self {
            time_zone: chrono_tz::Asia::Shanghai,
            day_start_minutes: 0,
        }
    }
}

impl StoreCalendar {
    /// The business date of an instant given in milliseconds since the Unix epoch.
    pub fn business_date(&self, utc_ms: u64) -> NaiveDate {
        let utc = i64::try_from(utc_ms)
            .ok()
            .and_then(DateTime::from_timestamp_millis)
            .unwrap_or(DateTime::UNIX_EPOCH);
        let shifted = utc - TimeDelta::minutes(i64::from(self.day_start_minutes));
        shifted.with_timezone(&self.time_zone).date_naive()
    }

    /// The business date of a wall-clock time in the store's time zone (a sale entered later,
    /// 补录, is booked on the day it was made).
    pub fn business_date_of_local(&self, local: chrono::NaiveDateTime) -> NaiveDate {
        (local - TimeDelta::minutes(i64::from(self.day_start_minutes))).date()
    }

    /// The wall-clock time of an instant in the store's time zone (for receipts and lists).
    pub fn local_time(&self, utc_ms: u64) -> chrono::NaiveDateTime {
        let utc = i64::try_from(utc_ms)
            .ok()
            .and_then(DateTime::from_timestamp_millis)
            .unwrap_or(DateTime::UNIX_EPOCH);
        utc.with_timezone(&self.time_zone).naive_local()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn shanghai_is_eight_hours_ahead() {
        // 2026-11-23 16:30 UTC is 00:30 on the 24th in Shanghai.
        let ms = 1_795_451_400_000;
        assert_eq!(
            StoreCalendar::default().business_date(ms),
            date(2026, 11, 24)
        );
        let late_close = StoreCalendar {
            day_start_minutes: 4 * 60,
            ..Default::default()
        };
        assert_eq!(late_close.business_date(ms), date(2026, 11, 23));
        let utc = StoreCalendar {
            time_zone: chrono_tz::UTC,
            day_start_minutes: 0,
        };
        assert_eq!(utc.business_date(ms), date(2026, 11, 23));
    }
}
