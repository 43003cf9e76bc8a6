//! Every projection, its tables and its code version. A projection whose stored version
//! differs from its code's is rebuilt before it is fed again, never mixed.

use crate::departures::Departures;
use crate::funnel::Funnel;
use crate::model::ReadModel;
use crate::portrait::fold::PortraitSet;
use crate::table::Table;

#[derive(Debug)]
pub struct Projection {
    pub name: &'static str,
    pub version: i64,
    /// Each table with the column that partitions it.
    pub tables: &'static [(&'static Table, &'static str)],
}

impl Projection {
    const fn of<M: ReadModel>() -> Self {
        Self {
            name: M::NAME,
            version: M::VERSION,
            tables: M::TABLES,
        }
    }
}

pub const PORTRAIT: Projection = Projection::of::<PortraitSet>();
pub const DEPARTURES: Projection = Projection::of::<Departures>();
pub const FUNNEL: Projection = Projection::of::<Funnel>();

pub const ALL: &[&Projection] = &[&PORTRAIT, &DEPARTURES, &FUNNEL];

pub fn find(name: &str) -> Option<&'static Projection> {
    ALL.iter().copied().find(|p| p.name == name)
}

/// Runs `$body` with `$model` naming the read-model type of projection `$p`.
macro_rules! with_model {
    ($p:expr, |$model:ident| $body:expr) => {{
        let name: &str = $p.name;
        if name == <$crate::portrait::fold::PortraitSet as $crate::model::ReadModel>::NAME {
            type $model = $crate::portrait::fold::PortraitSet;
            $body
        } else if name == <$crate::departures::Departures as $crate::model::ReadModel>::NAME {
            type $model = $crate::departures::Departures;
            $body
        } else if name == <$crate::funnel::Funnel as $crate::model::ReadModel>::NAME {
            type $model = $crate::funnel::Funnel;
            $body
        } else {
            unreachable!("projection {name} is not in the registry")
        }
    }};
}
pub(crate) use with_model;
