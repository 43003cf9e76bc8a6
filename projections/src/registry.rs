//! Every projection, its tables and its code version. A projection whose stored version
//! differs from its code's is rebuilt before it is fed again, never mixed.

use crate::table::Table;

#[derive(Debug)]
pub struct Projection {
    pub name: &'static str,
    pub version: i64,
    pub tables: &'static [&'static Table],
}

pub const PORTRAIT: Projection = Projection {
    name: crate::portrait::NAME,
    version: crate::portrait::VERSION,
    tables: crate::portrait::rows::TABLES,
};

pub const ALL: &[&Projection] = &[&PORTRAIT];

pub fn find(name: &str) -> Option<&'static Projection> {
    ALL.iter().copied().find(|p| p.name == name)
}
