//! What a rebuild reads: which streams (the whole deployment or one tenant's), up to
//! which point of the log, and how the customer streams are split between workers.
//! Pure, so the splitting and the bounds are tested without a database.

use crate::log::Checkpoint;

/// Whose rows a rebuild replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every tenant's: the deployment's operators (the CLI, a deployment admin).
    All,
    /// One tenant's rows only; the other tenants keep theirs, untouched.
    Tenant(String),
}

impl Scope {
    pub fn tenant(&self) -> Option<&str> {
        match self {
            Scope::All => None,
            Scope::Tenant(t) => Some(t),
        }
    }

    /// The tenant's stream ids as a half-open range `[from, to)` in byte order: ids are
    /// `<tenant>:<id>` and `;` is the byte after `:`. Only valid where text compares
    /// bytewise (SQLite, a PostgreSQL database with the C collation); it narrows an
    /// index scan, the exact tenant filter stays beside it.
    pub fn byte_range(&self) -> Option<(String, String)> {
        self.tenant().map(|t| (format!("{t}:"), format!("{t};")))
    }
}

/// A half-open range of customer stream ids, `[from, to)`, open where `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// What one worker reads: streams of one aggregate type, in one key range, of the
/// scope, up to the bound, from one table.
#[derive(Debug, Clone)]
pub struct Slice {
    pub aggregate_type: &'static str,
    pub range: KeyRange,
    /// `events`, or one of its shards on a Citus worker.
    pub table: String,
}

impl Slice {
    /// Every stream of `aggregate_type` in `table`.
    pub fn whole(aggregate_type: &'static str, table: &str) -> Self {
        Self {
            aggregate_type,
            range: KeyRange {
                from: None,
                to: None,
            },
            table: table.to_string(),
        }
    }
}

/// Splits the key space into at most `parts` ranges of about equal size, cut at the
/// quantiles of `sample`: stream ids drawn from the scope, in the database's own order
/// (its collation decides what `<` means, so the cuts are never re-sorted here). Cuts
/// are stream ids, so one stream is never split; equal cuts collapse, so a small sample
/// gives fewer ranges.
pub fn split(sample: &[String], parts: usize) -> Vec<KeyRange> {
    let parts = parts.max(1);
    let mut cuts: Vec<&String> = (1..parts)
        .filter_map(|i| sample.get(i * sample.len() / parts))
        .collect();
    cuts.dedup();
    let mut ranges = Vec::with_capacity(cuts.len() + 1);
    let mut start = None;
    for cut in cuts {
        ranges.push(KeyRange {
            from: start.replace(cut.clone()),
            to: Some(cut.clone()),
        });
    }
    ranges.push(KeyRange {
        from: start,
        to: None,
    });
    ranges
}

/// How far the rebuild reads: every event at or before `last`. On PostgreSQL a full
/// rebuild reads below the snapshot's xmin (every older transaction has ended, so that
/// set cannot grow); a tenant's rebuild reads up to the projection's own checkpoint, so
/// its rows can replace the tenant's live ones in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    pub last: Checkpoint,
}

impl Bound {
    /// Everything of the transactions older than `xmin`.
    pub fn below_xmin(xmin: i64) -> Self {
        Self {
            last: Checkpoint {
                txid: xmin - 1,
                position: i64::MAX,
            },
        }
    }

    pub fn up_to(last: Checkpoint) -> Self {
        Self { last }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("acme:wm{i:05}")).collect()
    }

    fn contains(r: &KeyRange, id: &str) -> bool {
        r.from.as_deref().is_none_or(|f| id >= f) && r.to.as_deref().is_none_or(|t| id < t)
    }

    #[test]
    fn given_a_sample_when_split_then_the_ranges_cover_the_key_space_without_overlap() {
        for parts in [1, 2, 7] {
            let ranges = split(&ids(1_000), parts);
            assert_eq!(ranges.len(), parts);
            assert_eq!(ranges[0].from, None);
            assert_eq!(ranges.last().unwrap().to, None);
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].to, pair[1].from);
            }
            // Every id falls in exactly one range, and the ranges are about equal.
            for id in ids(1_000) {
                assert_eq!(ranges.iter().filter(|r| contains(r, &id)).count(), 1);
            }
            for r in &ranges {
                let n = ids(1_000).iter().filter(|id| contains(r, id)).count();
                assert!(n.abs_diff(1_000 / parts) <= 1, "{n} in {r:?}");
            }
        }
    }

    #[test]
    fn given_fewer_distinct_ids_than_parts_when_split_then_fewer_ranges() {
        let sample = ["a:1", "a:1", "a:2"].map(String::from);
        assert!(split(&sample, 7).len() <= 3);
        assert_eq!(split(&[], 7).len(), 1);
    }

    #[test]
    fn a_tenants_byte_range_holds_its_streams_and_no_other_tenants() {
        let (from, to) = Scope::Tenant("acme".into()).byte_range().unwrap();
        let inside = |id: &str| id >= from.as_str() && id < to.as_str();
        assert!(inside("acme:wm1") && inside("acme:library"));
        assert!(!inside("acme-2:wm1") && !inside("acmf:x") && !inside("acm:x"));
        assert_eq!(Scope::All.byte_range(), None);
    }

    #[test]
    fn below_xmin_takes_every_event_of_older_transactions_and_none_of_newer() {
        let bound = Bound::below_xmin(100);
        let older = Checkpoint {
            txid: 99,
            position: i64::MAX - 1,
        };
        let newer = Checkpoint {
            txid: 100,
            position: 0,
        };
        assert!(older <= bound.last);
        assert!(newer > bound.last);
    }
}
