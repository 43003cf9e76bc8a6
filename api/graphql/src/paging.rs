//! Connections: keyset pages read from the database (`limit + 1` rows after the
//! cursor's key tell whether there is more) and offset pages of short in-memory lists.

use async_graphql::connection::{Connection, Edge};
use async_graphql::OutputType;
use chrono::{DateTime, Utc};

use crate::errors::ApiError;
use crate::ids::{self, page_size};

pub type Page<T> = Connection<String, T>;

/// The parts of a (time, id) cursor.
pub type TimeKey = (DateTime<Utc>, String);

/// What a page request asks for, once its arguments are checked.
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    limit: i64,
    had_after: bool,
}

impl Paging {
    /// A page after an opaque key cursor, and the key.
    pub fn keyed(first: i32, after: Option<&str>) -> Result<(Self, Option<String>), ApiError> {
        Self::new(first, after, |a| Ok(ids::uncursor(a, 1)?.remove(0)))
    }

    /// A page after a (time, id) cursor, and the cursor's parts.
    pub fn timed(first: i32, after: Option<&str>) -> Result<(Self, Option<TimeKey>), ApiError> {
        Self::new(first, after, ids::untime_cursor)
    }

    /// `first` checked before the cursor, as every list always did.
    fn new<K>(
        first: i32,
        after: Option<&str>,
        key: impl Fn(&str) -> Result<K, ApiError>,
    ) -> Result<(Self, Option<K>), ApiError> {
        let limit = page_size(first)?;
        let after = after.map(key).transpose()?;
        let had_after = after.is_some();
        Ok((Self { limit, had_after }, after))
    }

    /// How many rows to read: one more than the page, to know whether there is more.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }

    /// The page of `rows` (as read with [`Self::fetch`]), each made an item by `wrap`
    /// and given the cursor `cursor` names.
    pub fn page<R, T: OutputType>(
        &self,
        rows: Vec<R>,
        wrap: impl FnMut(R) -> T,
        cursor: impl Fn(&T) -> String,
    ) -> Page<T> {
        let more = rows.len() as i64 > self.limit;
        let mut page = Connection::new(self.had_after, more);
        page.edges.extend(
            rows.into_iter()
                .take(self.limit as usize)
                .map(wrap)
                .map(|item| Edge::new(cursor(&item), item)),
        );
        page
    }
}

/// The cursor of a keyset page by one key.
pub fn key_cursor(key: &str) -> String {
    ids::cursor(&[key])
}

/// Pages an in-memory list by offset cursors.
pub fn page_vec<T: OutputType>(
    items: Vec<T>,
    first: i32,
    after: Option<String>,
) -> Result<Page<T>, ApiError> {
    let limit = page_size(first)? as usize;
    let start = match after {
        Some(raw) => {
            ids::uncursor(&raw, 1)?[0]
                .parse::<usize>()
                .map_err(|_| ApiError::BadInput("invalid cursor".into()))?
                + 1
        }
        None => 0,
    };
    let total = items.len();
    let mut page = Connection::new(start > 0, start + limit < total);
    page.edges.extend(
        items
            .into_iter()
            .enumerate()
            .skip(start)
            .take(limit)
            .map(|(i, item)| Edge::new(ids::cursor(&[&i.to_string()]), item)),
    );
    Ok(page)
}
