//! Stable machine-readable codes of business errors (GraphQL `userErrors.code`, logs,
//! metrics), written once per variant: the one list makes `code()`, an exhaustive
//! match, and `CODES`, every code there is, so an edge can prove it maps them all.

/// `error_codes!(Error { Variant => "CODE", Tuple(_) => "…", Struct { .. } => "…", })`
macro_rules! error_codes {
    ($error:ty {
        $($variant:ident $(($($tuple:tt)*))? $({$($named:tt)*})? => $code:literal,)*
    }) => {
        impl $error {
            /// Every code [`Self::code`] can return.
            pub const CODES: &'static [&'static str] = &[$($code),*];

            /// A stable machine-readable code (GraphQL `userErrors.code`, logs, metrics).
            pub fn code(&self) -> &'static str {
                match self {
                    $(Self::$variant $(($($tuple)*))? $({$($named)*})? => $code,)*
                }
            }
        }
    };
}
