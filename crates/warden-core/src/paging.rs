//! Paged listings: the page a use case returns and the page sizes it accepts.

use crate::{Code, CoreError, CoreResult};

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items, oldest first.
    pub items: Vec<T>,
    /// Pass as the cursor for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// A page size: 1–200, 50 when not given.
pub fn page_limit(limit: Option<i64>) -> CoreResult<i64> {
    let limit = limit.unwrap_or(50);
    if (1..=200).contains(&limit) {
        Ok(limit)
    } else {
        Err(Code::InvalidLimit.into())
    }
}

/// The cursor of a newest-first listing keyed by creation time (µs): `None` for the first
/// page; anything but a number this listing handed out is refused.
pub fn time_cursor(cursor: Option<&str>) -> CoreResult<Option<i64>> {
    cursor
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| CoreError::invalid("cursor", "is not a cursor from this list"))
        })
        .transpose()
}

impl<T> Page<T> {
    /// A page of a newest-first listing keyed by creation time: full pages carry the last
    /// item's time as the next cursor.
    pub fn by_time(items: Vec<T>, limit: i64, created_at: impl Fn(&T) -> i64) -> Self {
        let full = i64::try_from(items.len()).unwrap_or(0) == limit;
        let next_cursor = items
            .last()
            .filter(|_| full)
            .map(|r| created_at(r).to_string());
        Self { items, next_cursor }
    }
}
