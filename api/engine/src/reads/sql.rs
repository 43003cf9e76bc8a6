//! A query assembled from pieces with numbered placeholders, bound the same way on both
//! backends.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Text(String),
    Int(i64),
    Time(DateTime<Utc>),
}

#[derive(Debug, Clone, Default)]
pub struct Sql {
    pub text: String,
    pub args: Vec<Arg>,
}

impl Sql {
    pub fn new(text: &str) -> Self {
        Self {
            text: text.to_string(),
            args: Vec::new(),
        }
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder for `arg`.
    pub fn bind(&mut self, arg: Arg) -> &mut Self {
        self.args.push(arg);
        self.text.push_str(&format!("${}", self.args.len()));
        self
    }

    /// `(a, b, c)` of placeholders for a list.
    pub fn bind_list(&mut self, args: impl IntoIterator<Item = Arg>) -> &mut Self {
        self.text.push('(');
        for (i, arg) in args.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.bind(arg);
        }
        self.text.push(')');
        self
    }
}

/// Binds every argument of `$sql` to a `query_as` for whichever backend `$conn` is.
macro_rules! fetch_all {
    ($sql:expr, $row:ty, $conn:expr) => {{
        let sql: &$crate::reads::Sql = &$sql;
        let mut q = sqlx::query_as::<_, $row>(&sql.text);
        for arg in &sql.args {
            q = match arg {
                $crate::reads::Arg::Text(v) => q.bind(v.clone()),
                $crate::reads::Arg::Int(v) => q.bind(*v),
                $crate::reads::Arg::Time(v) => q.bind(*v),
            };
        }
        q.fetch_all($conn).await?
    }};
}
pub(crate) use fetch_all;
