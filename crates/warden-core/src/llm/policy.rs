//! A workspace's gateway policy: quotas, prices, filters, content capture. Stored as JSON;
//! read strictly (an unknown member is an error, so a typo never turns a limit off).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use warden_llm::filters::FilterConfig;

use crate::{CoreError, CoreResult};

/// Limits of one subject (the workspace as a whole, or each user in it). Absent: no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Requests per minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<i64>,
    /// Tokens (in and out) per minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<i64>,
    /// Requests per day (UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_day: Option<i64>,
    /// Tokens per day.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_day: Option<i64>,
    /// Requests per calendar month (UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_month: Option<i64>,
    /// Tokens per month.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_month: Option<i64>,
    /// Spend per month, in millionths of the price table's currency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spend_micros_per_month: Option<i64>,
}

impl Limits {
    /// Whether any limit is set.
    pub fn any(&self) -> bool {
        *self != Self::default()
    }

    /// The limits of one period: requests, tokens, spend.
    pub fn of(&self, period: Period) -> [Option<i64>; 3] {
        match period {
            Period::Minute => [self.requests_per_minute, self.tokens_per_minute, None],
            Period::Day => [self.requests_per_day, self.tokens_per_day, None],
            Period::Month => [
                self.requests_per_month,
                self.tokens_per_month,
                self.spend_micros_per_month,
            ],
        }
    }

    fn check(&self, field: &'static str) -> CoreResult<()> {
        for p in Period::ALL {
            if self.of(p).iter().flatten().any(|&v| v < 0) {
                return Err(CoreError::invalid(field, "A limit is zero or more."));
            }
        }
        Ok(())
    }
}

/// A quota period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    /// A UTC minute.
    Minute,
    /// A UTC day.
    Day,
    /// A UTC calendar month.
    Month,
}

impl Period {
    /// Every period.
    pub const ALL: [Period; 3] = [Self::Minute, Self::Day, Self::Month];

    /// Its stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Day => "day",
            Self::Month => "month",
        }
    }

    /// The start (µs) of the period holding `now_us`, and when it ends.
    pub fn bounds(self, now_us: i64) -> (i64, i64) {
        const MIN: i64 = 60_000_000;
        const DAY: i64 = 86_400_000_000;
        match self {
            Self::Minute => {
                let s = now_us - now_us.rem_euclid(MIN);
                (s, s + MIN)
            }
            Self::Day => {
                let s = now_us - now_us.rem_euclid(DAY);
                (s, s + DAY)
            }
            Self::Month => {
                let (start, end) = month_bounds_days(now_us.div_euclid(DAY) as i32);
                (i64::from(start) * DAY, i64::from(end) * DAY)
            }
        }
    }
}

/// The first day of the month holding `day` (days since 1970), and the first of the next.
pub fn month_bounds_days(day: i32) -> (i32, i32) {
    let date = time::Date::from_julian_day(day + 2_440_588).unwrap_or(time::Date::MIN);
    let first = date.replace_day(1).unwrap_or(date);
    let next = if first.month() == time::Month::December {
        time::Date::from_calendar_date(first.year() + 1, time::Month::January, 1)
    } else {
        time::Date::from_calendar_date(first.year(), first.month().next(), 1)
    }
    .unwrap_or(first);
    (
        first.to_julian_day() - 2_440_588,
        next.to_julian_day() - 2_440_588,
    )
}

/// Quotas of the workspace and of each user in it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Quotas {
    /// Of the workspace, all keys together.
    pub workspace: Limits,
    /// Of each user (a user's keys and their sessions' tokens).
    pub per_user: Limits,
}

/// A model's price, in millionths of the currency per million tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Per million input tokens.
    pub input_micros_per_million: i64,
    /// Per million output tokens.
    pub output_micros_per_million: i64,
}

impl Price {
    /// The cost of a call, in millionths (rounded up).
    pub fn cost(&self, input: i64, output: i64) -> i64 {
        let total = i128::from(input) * i128::from(self.input_micros_per_million)
            + i128::from(output) * i128::from(self.output_micros_per_million);
        i64::try_from((total + 999_999) / 1_000_000).unwrap_or(i64::MAX)
    }
}

/// Whether prompts and responses are kept, sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Capture {
    /// Keep them.
    pub enabled: bool,
    /// For this many days.
    pub retention_days: i64,
}

impl Default for Capture {
    fn default() -> Self {
        Self {
            enabled: false,
            retention_days: 30,
        }
    }
}

/// A workspace's policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Quotas.
    pub quotas: Quotas,
    /// Prices per model (the spend limit counts only priced models).
    pub prices: BTreeMap<String, Price>,
    /// Output tokens reserved for a request that names no `max_tokens`.
    pub default_max_tokens: i64,
    /// Filters.
    pub filters: FilterConfig,
    /// Content capture.
    pub capture: Capture,
    /// How long call records are kept (days).
    pub record_retention_days: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            quotas: Quotas::default(),
            prices: BTreeMap::new(),
            default_max_tokens: 4096,
            filters: FilterConfig::default(),
            capture: Capture::default(),
            record_retention_days: 90,
        }
    }
}

impl Policy {
    /// Reads a stored policy (an unreadable one is the default, with secrets blocked).
    pub fn from_stored(json: &str) -> Self {
        serde_json::from_str(json).unwrap_or_default()
    }

    /// Checks a policy an administrator sent.
    pub fn check(&self) -> CoreResult<()> {
        self.quotas.workspace.check("quotas.workspace")?;
        self.quotas.per_user.check("quotas.per_user")?;
        if !(1..=1_000_000).contains(&self.default_max_tokens) {
            return Err(CoreError::invalid(
                "default_max_tokens",
                "Reserve 1 to 1,000,000 tokens for a request that names none.",
            ));
        }
        if self.prices.len() > 500
            || self
                .prices
                .values()
                .any(|p| p.input_micros_per_million < 0 || p.output_micros_per_million < 0)
        {
            return Err(CoreError::invalid(
                "prices",
                "At most 500 models, each price zero or more.",
            ));
        }
        if !(1..=3650).contains(&self.capture.retention_days)
            || !(1..=3650).contains(&self.record_retention_days)
        {
            return Err(CoreError::invalid(
                "capture.retention_days",
                "Keep content and records 1 to 3650 days.",
            ));
        }
        self.filters
            .check()
            .map_err(|e| CoreError::invalid("filters", e.0))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_and_prices() {
        // 2026-12-03T10:20:30Z
        let now = 1_796_293_230_000_000;
        let (s, e) = Period::Minute.bounds(now);
        assert_eq!((s % 60_000_000, e - s), (0, 60_000_000));
        let (s, e) = Period::Month.bounds(now);
        let day = |us: i64| us / 86_400_000_000;
        // December 2026 has 31 days.
        assert_eq!(day(e) - day(s), 31);
        assert!(s <= now && now < e);
        let p = Price {
            input_micros_per_million: 2_500_000,
            output_micros_per_million: 10_000_000,
        };
        assert_eq!(p.cost(1000, 500), 7_500);
        assert!(
            Policy::from_stored("{\"quotas\":{\"workspace\":{\"tokens_per_mnute\":5}}}")
                == Policy::default()
        );
    }
}
