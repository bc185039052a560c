//! Route registration with access rules.
//!
//! Every route is registered through [`Routes::add`] together with its [`Access`] rule; the
//! rules form an [`AccessTable`] that the access guard consults on every request, keyed by
//! method and matched path. A route that reaches the router without a rule (for example via
//! [`Routes::merge_undeclared`]) has no entry, and the guard refuses every request to it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Router;
use axum::http::Method;
use utoipa::openapi::OpenApi;
use utoipa::openapi::path::PathItem;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use warden_domain::access::Access;
use warden_domain::license::{Feature, LicenseRule};

/// What a route declares: who may call it, and what it needs of the licence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Declared {
    /// Who may call it.
    pub access: Access,
    /// What it needs of the licence.
    pub license: LicenseRule,
}

/// The declared rule of every (method, path) the router serves.
#[derive(Debug, Clone, Default)]
pub struct AccessTable {
    /// path pattern → method → rule
    rules: HashMap<String, BTreeMap<String, Declared>>,
}

impl AccessTable {
    /// The rule for `method` on the route pattern `path` (as axum's `MatchedPath` gives it).
    /// `HEAD` falls back to the `GET` rule, since axum answers `HEAD` with the `GET` handler.
    pub fn rule(&self, method: &Method, path: &str) -> Option<Access> {
        self.declared(method, path).map(|d| d.access)
    }

    /// Everything declared for `method` on the route pattern `path` (`HEAD` as `GET`).
    pub fn declared(&self, method: &Method, path: &str) -> Option<Declared> {
        let methods = self.rules.get(path)?;
        methods.get(method.as_str()).copied().or_else(|| {
            if method == Method::HEAD {
                methods.get("GET").copied()
            } else {
                None
            }
        })
    }

    /// The methods declared on a path pattern.
    pub fn methods(&self, path: &str) -> impl Iterator<Item = &str> {
        self.rules
            .get(path)
            .into_iter()
            .flat_map(|m| m.keys().map(String::as_str))
    }

    /// Every declared (method, path, rule), sorted by path then method.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, Access)> {
        self.declarations().map(|(m, p, d)| (m, p, d.access))
    }

    /// Every declared (method, path, declaration), sorted by path then method.
    pub fn declarations(&self) -> impl Iterator<Item = (&str, &str, Declared)> {
        let mut all: Vec<_> = self
            .rules
            .iter()
            .flat_map(|(p, ms)| ms.iter().map(move |(m, d)| (m.as_str(), p.as_str(), *d)))
            .collect();
        all.sort_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)));
        all.into_iter()
    }

    fn insert(&mut self, method: &str, path: &str, declared: Declared) {
        self.rules
            .entry(path.to_owned())
            .or_default()
            .insert(method.to_owned(), declared);
    }

    fn extend(&mut self, other: AccessTable) {
        for (path, methods) in other.rules {
            for (method, declared) in methods {
                self.insert(&method, &path, declared);
            }
        }
    }
}

/// Builds the router, its OpenAPI document and its access table together, so none of the
/// three can list a route the others do not.
pub struct Routes<S> {
    router: OpenApiRouter<S>,
    undeclared: Vec<Router<S>>,
    table: AccessTable,
}

impl<S> std::fmt::Debug for Routes<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routes")
            .field("access", &self.table)
            .finish()
    }
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    /// No routes yet.
    pub fn new() -> Self {
        Self {
            router: OpenApiRouter::new(),
            undeclared: Vec::new(),
            table: AccessTable::default(),
        }
    }

    /// Registers the handlers of `route` (built with `utoipa_axum::routes!`) under `access`.
    /// Under `/api/`, it needs a valid licence (when Warden is licensed).
    #[must_use]
    pub fn add(self, access: Access, route: UtoipaMethodRouter<S>) -> Self {
        self.declare(access, LicenseRule::Required, route)
    }

    /// Like [`Routes::add`], for the routes that recover from a missing or invalid licence
    /// (licence status and upload, machine info, sign-in, sign-out, the current user).
    #[must_use]
    pub fn add_recovery(self, access: Access, route: UtoipaMethodRouter<S>) -> Self {
        self.declare(access, LicenseRule::Recovery, route)
    }

    /// Like [`Routes::add`], for a route that also needs `feature` in the licence.
    #[must_use]
    pub fn add_feature(
        self,
        access: Access,
        feature: Feature,
        route: UtoipaMethodRouter<S>,
    ) -> Self {
        self.declare(access, LicenseRule::Feature(feature), route)
    }

    fn declare(
        mut self,
        access: Access,
        license: LicenseRule,
        route: UtoipaMethodRouter<S>,
    ) -> Self {
        for (path, item) in &route.1.paths {
            for method in methods(item) {
                self.table
                    .insert(method, path, Declared { access, license });
            }
        }
        self.router = self.router.routes(route);
        self
    }

    /// Adds all routes of `other`, with their rules.
    #[must_use]
    pub fn merge(mut self, other: Routes<S>) -> Self {
        self.router = self.router.merge(other.router);
        self.undeclared.extend(other.undeclared);
        self.table.extend(other.table);
        self
    }

    /// Adds all routes of `other`, with their rules, under `prefix` (empty, or `/` and
    /// segments without a trailing `/`): `other`'s `/v1/models` is served, documented and
    /// guarded as `{prefix}/v1/models`.
    #[must_use]
    pub fn nest(mut self, prefix: &str, other: Routes<S>) -> Self {
        if prefix.is_empty() {
            return self.merge(other);
        }
        self.router = self.router.nest(prefix, other.router);
        self.undeclared.extend(
            other
                .undeclared
                .into_iter()
                .map(|r| Router::new().nest(prefix, r)),
        );
        for (path, methods) in other.table.rules {
            for (method, declared) in methods {
                self.table
                    .insert(&method, &format!("{prefix}{path}"), declared);
            }
        }
        self
    }

    /// Merges plain axum routes that declare no access rule. They are served, but the access
    /// guard refuses every request to them: routes fail closed.
    #[must_use]
    pub fn merge_undeclared(mut self, router: Router<S>) -> Self {
        self.undeclared.push(router);
        self
    }

    /// The access table of the routes so far.
    pub fn access(&self) -> &AccessTable {
        &self.table
    }

    /// The parts: the axum router (without the access guard), the OpenAPI document and the
    /// access table.
    pub fn into_parts(self) -> (Router<S>, OpenApi, Arc<AccessTable>) {
        let (mut router, openapi) = self.router.split_for_parts();
        for extra in self.undeclared {
            router = router.merge(extra);
        }
        (router, openapi, Arc::new(self.table))
    }
}

fn methods(item: &PathItem) -> impl Iterator<Item = &'static str> + '_ {
    [
        ("GET", item.get.is_some()),
        ("PUT", item.put.is_some()),
        ("POST", item.post.is_some()),
        ("DELETE", item.delete.is_some()),
        ("OPTIONS", item.options.is_some()),
        ("HEAD", item.head.is_some()),
        ("PATCH", item.patch.is_some()),
        ("TRACE", item.trace.is_some()),
    ]
    .into_iter()
    .filter_map(|(m, present)| present.then_some(m))
}
