//! Paged listings: the page a use case returns and the page sizes it accepts.

use crate::{Code, CoreResult};

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
