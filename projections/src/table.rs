//! Read-model tables described once and written three ways: DDL for either backend,
//! multi-row INSERTs (incremental updates, SQLite rebuilds) and COPY text (PostgreSQL
//! rebuilds). Every table is keyed by tenant first.

use chrono::{DateTime, Utc};

/// One column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
    Time(DateTime<Utc>),
    OptTime(Option<DateTime<Utc>>),
    Bool(bool),
}

/// Column types, mapped to each backend's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Text,
    Int,
    Time,
    Bool,
}

impl Ty {
    fn pg(self) -> &'static str {
        match self {
            Ty::Text => "text",
            Ty::Int => "bigint",
            Ty::Time => "timestamptz",
            Ty::Bool => "boolean",
        }
    }

    fn sqlite(self) -> &'static str {
        match self {
            Ty::Text | Ty::Time => "text",
            Ty::Int | Ty::Bool => "integer",
        }
    }
}

/// A read-model table: columns (name, type, nullable), key and secondary indexes.
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [(&'static str, Ty, bool)],
    pub key: &'static [&'static str],
    pub indexes: &'static [&'static [&'static str]],
}

impl Table {
    pub fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| c.0)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `CREATE TABLE` for `physical` (the live name or a rebuild's `<name>__next`).
    pub fn create_sql(&self, physical: &str, postgres: bool) -> String {
        self.create_sql_keyed(physical, postgres, true)
    }

    /// `CREATE TABLE`, with or without its primary key: a bulk load into a fresh table is
    /// faster with the key built afterwards ([`Table::add_key_sql`]).
    pub fn create_sql_keyed(&self, physical: &str, postgres: bool, keyed: bool) -> String {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|(name, ty, nullable)| {
                let ty = if postgres { ty.pg() } else { ty.sqlite() };
                let null = if *nullable { "" } else { " NOT NULL" };
                format!("{name} {ty}{null}")
            })
            .collect();
        if keyed {
            format!(
                "CREATE TABLE IF NOT EXISTS {physical} ({}, PRIMARY KEY ({}))",
                cols.join(", "),
                self.key.join(", ")
            )
        } else {
            format!(
                "CREATE TABLE IF NOT EXISTS {physical} ({})",
                cols.join(", ")
            )
        }
    }

    /// PostgreSQL's second wall between tenants: row-level security (forced, so only a
    /// role with BYPASSRLS, the projector's, sees across tenants) and read access for the
    /// API's `scrm_app` role. A policy follows its table through the rebuild's rename.
    pub fn isolation_sql(&self, physical: &str) -> [String; 5] {
        [
            format!("ALTER TABLE {physical} ENABLE ROW LEVEL SECURITY"),
            format!("ALTER TABLE {physical} FORCE ROW LEVEL SECURITY"),
            format!("DROP POLICY IF EXISTS tenant_isolation ON {physical}"),
            format!(
                "CREATE POLICY tenant_isolation ON {physical} \
                 USING (tenant_id = current_setting('app.tenant_id', true))"
            ),
            format!("GRANT SELECT ON {physical} TO scrm_app"),
        ]
    }

    /// Adds the primary key to a table made by `create_sql_keyed(.., false)` (PostgreSQL),
    /// under the name PostgreSQL would have given it.
    pub fn add_key_sql(&self, physical: &str) -> String {
        format!(
            "ALTER TABLE {physical} ADD CONSTRAINT {physical}_pkey PRIMARY KEY ({})",
            self.key.join(", ")
        )
    }

    /// Secondary indexes, named after `physical` so a rebuild's set never collides.
    pub fn index_sql(&self, physical: &str) -> Vec<String> {
        self.indexes
            .iter()
            .enumerate()
            .map(|(i, cols)| {
                format!(
                    "CREATE INDEX IF NOT EXISTS {physical}_ix{i} ON {physical} ({})",
                    cols.join(", ")
                )
            })
            .collect()
    }
}

/// The header of a COPY in PostgreSQL's binary format: signature, flags, no extension.
pub const COPY_BINARY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// Its trailer: a field count of -1.
pub const COPY_BINARY_TRAILER: &[u8] = &[0xff, 0xff];

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Appends one row in COPY's binary format. The server then parses no text: for a
/// rebuild's millions of rows, timestamps above all, that is most of COPY's work.
pub fn copy_row_binary(buf: &mut Vec<u8>, row: &[Val]) {
    buf.extend_from_slice(&(row.len() as i16).to_be_bytes());
    let field = |buf: &mut Vec<u8>, bytes: &[u8]| {
        buf.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        buf.extend_from_slice(bytes);
    };
    for v in row {
        match v {
            Val::Text(s) | Val::OptText(Some(s)) => field(buf, s.as_bytes()),
            Val::OptText(None) | Val::OptInt(None) | Val::OptTime(None) => {
                buf.extend_from_slice(&(-1i32).to_be_bytes())
            }
            Val::Int(n) | Val::OptInt(Some(n)) => field(buf, &n.to_be_bytes()),
            Val::Time(t) | Val::OptTime(Some(t)) => {
                field(buf, &(t.timestamp_micros() - PG_EPOCH_MICROS).to_be_bytes())
            }
            Val::Bool(b) => field(buf, &[u8::from(*b)]),
        }
    }
}

/// Binds one value into a multi-row INSERT being built.
macro_rules! push_val {
    ($b:expr, $v:expr) => {
        match $v {
            $crate::table::Val::Text(s) => $b.push_bind(s.clone()),
            $crate::table::Val::OptText(s) => $b.push_bind(s.clone()),
            $crate::table::Val::Int(n) => $b.push_bind(*n),
            $crate::table::Val::OptInt(n) => $b.push_bind(*n),
            $crate::table::Val::Time(t) => $b.push_bind(*t),
            $crate::table::Val::OptTime(t) => $b.push_bind(*t),
            $crate::table::Val::Bool(x) => $b.push_bind(*x),
        }
    };
}
pub(crate) use push_val;

#[cfg(test)]
mod tests {
    use super::*;

    const T: Table = Table {
        name: "rm_x",
        columns: &[("tenant_id", Ty::Text, false), ("n", Ty::Int, true)],
        key: &["tenant_id"],
        indexes: &[&["tenant_id", "n"]],
    };

    #[test]
    fn ddl_follows_the_backend() {
        assert_eq!(
            T.create_sql("rm_x__next", true),
            "CREATE TABLE IF NOT EXISTS rm_x__next (tenant_id text NOT NULL, n bigint, PRIMARY KEY (tenant_id))"
        );
        assert!(T.create_sql("rm_x", false).contains("n integer"));
        assert_eq!(
            T.index_sql("rm_x__next"),
            vec!["CREATE INDEX IF NOT EXISTS rm_x__next_ix0 ON rm_x__next (tenant_id, n)"]
        );
    }

    #[test]
    fn binary_copy_rows_carry_lengths_nulls_and_postgres_epoch_times() {
        let mut buf = Vec::new();
        let t = chrono::DateTime::parse_from_rfc3339("2000-01-01T00:00:01Z")
            .unwrap()
            .to_utc();
        copy_row_binary(
            &mut buf,
            &[
                Val::Text("王".into()),
                Val::OptText(None),
                Val::Int(7),
                Val::Time(t),
                Val::Bool(true),
            ],
        );
        let mut expected = vec![0, 5];
        expected.extend([0, 0, 0, 3, 0xe7, 0x8e, 0x8b]);
        expected.extend([0xff, 0xff, 0xff, 0xff]);
        expected.extend([0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7]);
        expected.extend([0, 0, 0, 8, 0, 0, 0, 0, 0, 0x0f, 0x42, 0x40]);
        expected.extend([0, 0, 0, 1, 1]);
        assert_eq!(buf, expected);
        assert_eq!(COPY_BINARY_HEADER.len(), 19);
    }
}

/// Declares a read-model row type and its table in one place: the struct, the `Table`
/// description, and the conversions to and from column values.
///
/// Column kinds: `text`, `opt_text`, `int`, `opt_int`, `time`, `opt_time`, `bool`.
macro_rules! table_row {
    (
        $(#[$doc:meta])*
        $row:ident in $table:ident = $name:literal,
        key [$($key:literal),+],
        indexes [$([$($ix:literal),+]),*],
        { $($field:ident : $kind:ident),+ $(,)? }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $row {
            $(pub $field: $crate::table::kind_type!($kind)),+
        }

        pub const $table: $crate::table::Table = $crate::table::Table {
            name: $name,
            columns: &[$((stringify!($field), $crate::table::kind_ty!($kind), $crate::table::kind_nullable!($kind))),+],
            key: &[$($key),+],
            indexes: &[$(&[$($ix),+]),*],
        };

        impl $crate::table::Row for $row {
            const TABLE: &'static $crate::table::Table = &$table;

            fn values(&self) -> Vec<$crate::table::Val> {
                vec![$($crate::table::kind_val!($kind, self.$field.clone())),+]
            }

            fn from_values(values: Vec<$crate::table::Val>) -> Self {
                let mut values = values.into_iter();
                Self {
                    $($field: $crate::table::kind_from!($kind, values.next())),+
                }
            }
        }
    };
}
pub(crate) use table_row;

macro_rules! kind_type {
    (text) => { String };
    (opt_text) => { Option<String> };
    (int) => { i64 };
    (opt_int) => { Option<i64> };
    (time) => { chrono::DateTime<chrono::Utc> };
    (opt_time) => { Option<chrono::DateTime<chrono::Utc>> };
    (bool) => { bool };
}
pub(crate) use kind_type;

macro_rules! kind_ty {
    (text) => {
        $crate::table::Ty::Text
    };
    (opt_text) => {
        $crate::table::Ty::Text
    };
    (int) => {
        $crate::table::Ty::Int
    };
    (opt_int) => {
        $crate::table::Ty::Int
    };
    (time) => {
        $crate::table::Ty::Time
    };
    (opt_time) => {
        $crate::table::Ty::Time
    };
    (bool) => {
        $crate::table::Ty::Bool
    };
}
pub(crate) use kind_ty;

macro_rules! kind_nullable {
    (opt_text) => {
        true
    };
    (opt_int) => {
        true
    };
    (opt_time) => {
        true
    };
    ($other:ident) => {
        false
    };
}
pub(crate) use kind_nullable;

macro_rules! kind_val {
    (text, $v:expr) => {
        $crate::table::Val::Text($v)
    };
    (opt_text, $v:expr) => {
        $crate::table::Val::OptText($v)
    };
    (int, $v:expr) => {
        $crate::table::Val::Int($v)
    };
    (opt_int, $v:expr) => {
        $crate::table::Val::OptInt($v)
    };
    (time, $v:expr) => {
        $crate::table::Val::Time($v)
    };
    (opt_time, $v:expr) => {
        $crate::table::Val::OptTime($v)
    };
    (bool, $v:expr) => {
        $crate::table::Val::Bool($v)
    };
}
pub(crate) use kind_val;

macro_rules! kind_from {
    ($kind:ident, $v:expr) => {
        $crate::table::FromVal::from_val($v.expect("a value per column"))
    };
}
pub(crate) use kind_from;

/// Rows go in and out of the database as column values, in column order.
pub trait Row {
    /// The table this row type is a row of.
    const TABLE: &'static Table;
    fn values(&self) -> Vec<Val>;
    fn from_values(values: Vec<Val>) -> Self;
}

/// The typed value inside a [`Val`] (a mismatch is a bug in a table declaration).
pub trait FromVal {
    fn from_val(v: Val) -> Self;
}

macro_rules! from_val {
    ($t:ty, $($pat:pat => $out:expr),+) => {
        impl FromVal for $t {
            fn from_val(v: Val) -> Self {
                match v {
                    $($pat => $out,)+
                    other => panic!("column holds {other:?}, not {}", stringify!($t)),
                }
            }
        }
    };
}

from_val!(String, Val::Text(s) => s, Val::OptText(Some(s)) => s);
from_val!(Option<String>, Val::OptText(s) => s, Val::Text(s) => Some(s));
from_val!(i64, Val::Int(n) => n, Val::OptInt(Some(n)) => n);
from_val!(Option<i64>, Val::OptInt(n) => n, Val::Int(n) => Some(n));
from_val!(DateTime<Utc>, Val::Time(t) => t, Val::OptTime(Some(t)) => t);
from_val!(Option<DateTime<Utc>>, Val::OptTime(t) => t, Val::Time(t) => Some(t));
from_val!(bool, Val::Bool(b) => b);
