//! SCIM searches: a [`Pred`] tree (built by the use cases from a SCIM filter) rendered as SQL
//! with every value bound, never spliced into the text, and run a page at a time.

use uuid::Uuid;
use warden_domain::organizations::OrgId;

use super::{GROUP_COLUMNS, USER_COLUMNS, USER_FROM};
use crate::db::on_tx;
use crate::{StoreError, Tx};

/// What a search can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The resource's id.
    Id,
    /// A user's userName (compared without case).
    UserName,
    /// The directory's id for the resource (compared exactly).
    ExternalId,
    /// A user's or a group's display name (compared without case).
    DisplayName,
    /// Whether a user is active.
    Active,
    /// A user's email (compared without case).
    Email,
    /// When the resource was provisioned (µs).
    Created,
    /// When it last changed (µs).
    LastModified,
    /// A group's member (by account id; `eq` only).
    Member,
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Equal.
    Eq,
    /// Not equal.
    Ne,
    /// Contains.
    Co,
    /// Starts with.
    Sw,
    /// Ends with.
    Ew,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Ge,
    /// Less than.
    Lt,
    /// Less than or equal.
    Le,
}

/// A value compared against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    /// Text.
    Text(String),
    /// A boolean.
    Bool(bool),
    /// An integer (timestamps, µs).
    Int(i64),
    /// An id.
    Id(Uuid),
}

/// A search predicate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pred {
    /// Both.
    And(Box<Pred>, Box<Pred>),
    /// Either.
    Or(Box<Pred>, Box<Pred>),
    /// Not.
    Not(Box<Pred>),
    /// The field has a value.
    Present(Field),
    /// The field compares to the value.
    Cmp(Field, Op, Val),
    /// Never true (an id that cannot exist).
    False,
}

/// Which resource a search runs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Over {
    Users,
    Groups,
}

/// SQL text with its bound values.
struct Sql {
    text: String,
    binds: Vec<Val>,
    postgres: bool,
}

impl Sql {
    fn bind(&mut self, v: Val) -> String {
        self.binds.push(v);
        format!("${}", self.binds.len())
    }

    fn column(over: Over, f: Field) -> Option<(&'static str, bool)> {
        // (expression, compared without case)
        Some(match (over, f) {
            (Over::Users, Field::Id) => ("s.user_id", false),
            (Over::Users, Field::UserName) => ("s.user_name_key", true),
            (Over::Users, Field::ExternalId) => ("s.external_id", false),
            (Over::Users, Field::DisplayName) => ("lower(u.display_name)", true),
            (Over::Users, Field::Active) => ("u.active", false),
            (Over::Users, Field::Email) => ("u.email", true),
            (Over::Users, Field::Created) => ("s.created_at", false),
            (Over::Users, Field::LastModified) => ("s.updated_at", false),
            (Over::Groups, Field::Id) => ("g.id", false),
            (Over::Groups, Field::DisplayName) => ("lower(g.display_name)", true),
            (Over::Groups, Field::ExternalId) => ("g.external_id", false),
            (Over::Groups, Field::Created) => ("g.created_at", false),
            (Over::Groups, Field::LastModified) => ("g.updated_at", false),
            _ => return None,
        })
    }

    fn render(&mut self, over: Over, p: &Pred) -> Result<String, StoreError> {
        Ok(match p {
            Pred::And(a, b) => format!("({} AND {})", self.render(over, a)?, self.render(over, b)?),
            Pred::Or(a, b) => format!("({} OR {})", self.render(over, a)?, self.render(over, b)?),
            // Two-valued logic: a missing value neither equals nor contains anything, and `not`
            // of that holds (`IS NOT TRUE`, where `NOT NULL` would be NULL). The comparisons
            // themselves stay bare, so an indexed column is searched by its index.
            Pred::Not(a) => format!("(({}) IS NOT TRUE)", self.render(over, a)?),
            Pred::False => "(1 = 0)".to_owned(),
            Pred::Present(Field::Member) if over == Over::Groups => {
                "EXISTS (SELECT 1 FROM scim_group_members m WHERE m.group_id = g.id)".to_owned()
            }
            Pred::Present(f) => {
                let (col, _) = Self::column(over, *f).ok_or_else(unsupported)?;
                format!("({col} IS NOT NULL)")
            }
            Pred::Cmp(Field::Member, Op::Eq, Val::Id(id)) if over == Over::Groups => {
                let n = self.bind(Val::Id(*id));
                format!(
                    "EXISTS (SELECT 1 FROM scim_group_members m WHERE m.group_id = g.id \
                     AND m.user_id = {n})"
                )
            }
            Pred::Cmp(f, op, v) => {
                let (col, no_case) = Self::column(over, *f).ok_or_else(unsupported)?;
                let v = match v {
                    Val::Text(t) if no_case => Val::Text(t.to_lowercase()),
                    v => v.clone(),
                };
                let cmp = match (op, &v) {
                    (Op::Co | Op::Sw | Op::Ew, Val::Text(t)) => {
                        let t = t.clone();
                        let n = self.bind(Val::Text(t));
                        match op {
                            Op::Co if self.postgres => format!("strpos({col}, {n}) > 0"),
                            Op::Co => format!("instr({col}, {n}) > 0"),
                            Op::Sw => format!("substr({col}, 1, length({n})) = {n}"),
                            _ => format!(
                                "(length({col}) >= length({n}) AND \
                                 substr({col}, length({col}) - length({n}) + 1) = {n})"
                            ),
                        }
                    }
                    (Op::Co | Op::Sw | Op::Ew, _) => return Err(unsupported()),
                    _ => {
                        let sym = match op {
                            Op::Eq => "=",
                            Op::Ne => "<>",
                            Op::Gt => ">",
                            Op::Ge => ">=",
                            Op::Lt => "<",
                            _ => "<=",
                        };
                        let n = self.bind(v);
                        format!("{col} {sym} {n}")
                    }
                };
                format!("({cmp})")
            }
        })
    }
}

fn unsupported() -> StoreError {
    StoreError::Invalid("a SCIM search named a field this resource does not have".to_owned())
}

/// A page of a search: how many match in all, and this page of them.
#[derive(Debug, Clone)]
pub struct Found<T> {
    /// How many match.
    pub total: i64,
    /// The page.
    pub rows: Vec<T>,
}

macro_rules! bind_all {
    ($q:expr, $binds:expr) => {{
        let mut q = $q;
        for b in $binds {
            q = match b {
                Val::Text(t) => q.bind(t.clone()),
                Val::Bool(v) => q.bind(*v),
                Val::Int(v) => q.bind(*v),
                Val::Id(v) => q.bind(*v),
            };
        }
        q
    }};
}

impl Tx {
    pub(super) async fn search<T>(
        &mut self,
        over: Over,
        org: OrgId,
        filter: Option<&Pred>,
        offset: i64,
        count: i64,
    ) -> Result<Found<T>, StoreError>
    where
        T: Send + Unpin + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>,
        T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        let (columns, from, order, org_column) = match over {
            Over::Users => (
                USER_COLUMNS,
                USER_FROM,
                "s.created_at, s.user_id",
                "s.organization_id",
            ),
            Over::Groups => (
                GROUP_COLUMNS,
                "FROM scim_groups g",
                "g.created_at, g.id",
                "g.organization_id",
            ),
        };
        let mut sql = Sql {
            text: String::new(),
            binds: Vec::new(),
            postgres: self.backend() == crate::Backend::Postgres,
        };
        // The organization first, whatever the filter says.
        let o = sql.bind(Val::Id(org.uuid()));
        let cond = match filter {
            Some(p) => format!("{org_column} = {o} AND {}", sql.render(over, p)?),
            None => format!("{org_column} = {o}"),
        };
        // Only column names of these tables and `$n` placeholders reach the text. The page
        // comes first: one with fewer rows than asked for is the last, and gives the total
        // without counting — so a directory's lookup (`userName eq …`) is one statement.
        let mut rows = Vec::new();
        if count > 0 {
            let filter_binds = sql.binds.len();
            let l = sql.bind(Val::Int(count));
            let o = sql.bind(Val::Int(offset));
            sql.text = format!(
                "SELECT {columns} {from} WHERE {cond} ORDER BY {order} LIMIT {l} OFFSET {o}"
            );
            rows = on_tx!(self, |c| bind_all!(
                sqlx::query_as::<_, T>(sqlx::AssertSqlSafe(sql.text.clone())),
                &sql.binds
            )
            .fetch_all(c)
            .await)?;
            let got = i64::try_from(rows.len()).unwrap_or(i64::MAX);
            if got < count && (got > 0 || offset == 0) {
                let total = offset + got;
                return Ok(Found { total, rows });
            }
            sql.binds.truncate(filter_binds);
        }
        sql.text = format!("SELECT COUNT(*) {from} WHERE {cond}");
        let total = on_tx!(self, |c| bind_all!(
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.text.clone())),
            &sql.binds
        )
        .fetch_one(c)
        .await)?;
        Ok(Found { total, rows })
    }
}
