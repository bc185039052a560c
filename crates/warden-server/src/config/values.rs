//! The layers of configuration — defaults, the TOML file, `WARDEN_*` variables, command-line
//! flags — read against the settings table: unknown names are refused, each value is checked
//! against its setting's kind, and every problem names the setting and where it was set. The
//! effective value of each setting read is kept, secrets redacted, for `warden config check`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use toml::de::{DeTable, DeValue};

use super::ConfigError;
use super::redact_url;
use super::table::{self, Fallback, Kind, OTHER_VARIABLES, SETTINGS, Setting};

/// Where a value came from, for messages.
#[derive(Debug, Clone)]
enum Origin {
    File { path: PathBuf, line: usize },
    Env(String),
    Flag(&'static str),
}

impl Origin {
    fn describe(&self) -> String {
        match self {
            Self::File { path, line } => {
                format!(" (configuration file {}, line {line})", path.display())
            }
            Self::Env(name) => format!(" (set by {name})"),
            Self::Flag(flag) => format!(" (set by {flag})"),
        }
    }
}

/// A value as given, before its setting's kind checks it.
#[derive(Debug, Clone)]
enum Given {
    /// From the environment, a flag or a default: text.
    Text(String),
    /// From the file, where a value has a type.
    Integer(i128),
    Bool(bool),
    Str(String),
    Strings(Vec<String>),
    /// Any other TOML type (named for the message).
    Other(&'static str),
}

/// A checked value.
enum Checked {
    Whole(u64),
    Switch(bool),
    Text(String),
    List(Vec<String>),
}

/// The layers, ready to be read setting by setting.
pub(super) struct Values {
    given: BTreeMap<&'static str, (Given, Origin)>,
    shown: BTreeMap<&'static str, toml::Value>,
    /// Settings read so far: a setting in the table that no builder reads is a bug (tested).
    read: std::collections::BTreeSet<&'static str>,
}

impl Values {
    /// Reads the file (if any), the `WARDEN_*` variables of `env` and the flags, refusing a
    /// name the table does not know.
    pub(super) fn read(
        file: Option<&Path>,
        env: &BTreeMap<String, String>,
        flags: &[(&'static Setting, &'static str, Option<String>)],
    ) -> Result<Self, ConfigError> {
        let mut given = BTreeMap::new();
        if let Some(path) = file {
            read_file(path, &mut given)?;
        }
        for (name, value) in env {
            let setting = SETTINGS.iter().copied().find(|s| s.env() == *name);
            match setting {
                Some(s) => {
                    given.insert(
                        s.key,
                        (Given::Text(value.clone()), Origin::Env(name.clone())),
                    );
                }
                None if OTHER_VARIABLES.iter().any(|(n, _)| n == name) => {}
                None => return Err(unknown_variable(name)),
            }
        }
        for (setting, flag, value) in flags {
            if let Some(v) = value {
                given.insert(setting.key, (Given::Text(v.clone()), Origin::Flag(flag)));
            }
        }
        Ok(Self {
            given,
            shown: BTreeMap::new(),
            read: Default::default(),
        })
    }

    /// Whether anything but the default sets `s`.
    pub(super) fn is_set(&self, s: &Setting) -> bool {
        match self.given.get(s.key) {
            Some((Given::Text(t), Origin::Env(_))) => !t.trim().is_empty(),
            other => other.is_some(),
        }
    }

    /// A problem with the value of `s`, naming the setting and where it was set.
    pub(super) fn refuse(&self, s: &Setting, problem: impl std::fmt::Display) -> ConfigError {
        let origin = self
            .given
            .get(s.key)
            .map(|(_, o)| o.describe())
            .unwrap_or_default();
        ConfigError::new(format!("{}: {problem}{origin}", s.key))
    }

    /// What `warden config check` shows for `s` (already redacted).
    pub(super) fn show(&mut self, s: &'static Setting, value: impl Into<toml::Value>) {
        self.shown.insert(s.key, value.into());
    }

    /// The effective values read so far, as a TOML document.
    pub(super) fn take_shown(&mut self) -> toml::Table {
        let mut doc = toml::Table::new();
        for (key, value) in std::mem::take(&mut self.shown) {
            match key.split_once('.') {
                Some((section, name)) => {
                    let entry = doc
                        .entry(section)
                        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                    if let toml::Value::Table(t) = entry {
                        t.insert(name.to_owned(), value);
                    }
                }
                None => {
                    doc.insert(key.to_owned(), value);
                }
            }
        }
        doc
    }

    /// A whole number (the table gives it a default).
    pub(super) fn whole(&mut self, s: &'static Setting) -> Result<u64, ConfigError> {
        self.whole_opt(s)?.ok_or_else(|| missing_default(s))
    }

    /// A whole number, or nothing when unset.
    pub(super) fn whole_opt(&mut self, s: &'static Setting) -> Result<Option<u64>, ConfigError> {
        Ok(match self.check(s)? {
            Some(Checked::Whole(n)) => Some(n),
            _ => None,
        })
    }

    /// A switch (the table gives it a default).
    pub(super) fn switch(&mut self, s: &'static Setting) -> Result<bool, ConfigError> {
        match self.check(s)? {
            Some(Checked::Switch(b)) => Ok(b),
            _ => Err(missing_default(s)),
        }
    }

    /// Text (the table gives it a default).
    pub(super) fn text(&mut self, s: &'static Setting) -> Result<String, ConfigError> {
        self.text_opt(s)?.ok_or_else(|| missing_default(s))
    }

    /// Text, or nothing when unset.
    pub(super) fn text_opt(&mut self, s: &'static Setting) -> Result<Option<String>, ConfigError> {
        Ok(match self.check(s)? {
            Some(Checked::Text(t)) => Some(t),
            _ => None,
        })
    }

    /// A path, or nothing when unset.
    pub(super) fn path_opt(&mut self, s: &'static Setting) -> Result<Option<PathBuf>, ConfigError> {
        Ok(self.text_opt(s)?.map(PathBuf::from))
    }

    /// A list (empty when unset).
    pub(super) fn list(&mut self, s: &'static Setting) -> Result<Vec<String>, ConfigError> {
        Ok(match self.check(s)? {
            Some(Checked::List(l)) => l,
            _ => Vec::new(),
        })
    }

    /// A secret, or nothing when unset.
    pub(super) fn secret_opt(
        &mut self,
        s: &'static Setting,
    ) -> Result<Option<SecretString>, ConfigError> {
        Ok(self.text_opt(s)?.map(SecretString::from))
    }

    /// Settings of the table no builder has read.
    #[cfg(test)]
    pub(super) fn unread(&self) -> Vec<&'static str> {
        SETTINGS
            .iter()
            .map(|s| s.key)
            .filter(|k| !self.read.contains(k))
            .collect()
    }

    /// Checks the value of `s` (or its default) against its kind and records what to show.
    fn check(&mut self, s: &'static Setting) -> Result<Option<Checked>, ConfigError> {
        self.read.insert(s.key);
        let given = match (self.given.get(s.key), &s.default) {
            (Some((Given::Text(t), Origin::Env(_))), default) if t.trim().is_empty() => {
                match (&s.kind, default) {
                    // An empty variable clears an optional setting (compose files write
                    // `WARDEN_SMTP_URL=${SMTP_URL:-}`) or a list.
                    (Kind::List, _) | (_, Fallback::Optional) => {
                        self.given.remove(s.key);
                        if matches!(s.kind, Kind::List) {
                            self.show(s, toml::Value::Array(Vec::new()));
                            return Ok(Some(Checked::List(Vec::new())));
                        }
                        return Ok(None);
                    }
                    // One with a default is more likely a mistake than a wish for the default.
                    _ => {
                        return Err(self
                            .refuse(s, format!("is empty; unset {} to use the default", s.env())));
                    }
                }
            }
            (Some((g, _)), _) => g.clone(),
            (None, Fallback::Value(v)) => Given::Text((*v).to_owned()),
            (None, _) => return Ok(None),
        };
        let checked = self.kind_check(s, given)?;
        let shown = match (&s.kind, &checked) {
            (Kind::SecretUrl, Checked::Text(t)) => toml::Value::String(redact_url(t)),
            (Kind::Secret, _) => toml::Value::String("[redacted]".to_owned()),
            (_, Checked::Whole(n)) => toml::Value::Integer(i64::try_from(*n).unwrap_or(i64::MAX)),
            (_, Checked::Switch(b)) => toml::Value::Boolean(*b),
            (_, Checked::Text(t)) => toml::Value::String(t.clone()),
            (_, Checked::List(l)) => {
                toml::Value::Array(l.iter().cloned().map(toml::Value::String).collect())
            }
        };
        self.show(s, shown);
        Ok(Some(checked))
    }

    fn kind_check(&self, s: &Setting, given: Given) -> Result<Checked, ConfigError> {
        let wrong = |expected: &str, found: &Given| {
            let found = match found {
                Given::Text(t) | Given::Str(t) => format!("'{}'", t.trim()),
                Given::Integer(n) => n.to_string(),
                Given::Bool(_) => "true/false".to_owned(),
                Given::Strings(_) => "a list".to_owned(),
                Given::Other(kind) => format!("a TOML {kind}"),
            };
            self.refuse(s, format!("{found} is not {expected}"))
        };
        // A whole number, if the value is one (refusing a negative one outright).
        let number = |given: &Given| match given {
            Given::Text(t) => Ok(t.trim().parse::<u64>().ok()),
            Given::Integer(n) if *n < 0 => {
                Err(self.refuse(s, format!("must not be negative, not {n}")))
            }
            Given::Integer(n) => Ok(u64::try_from(*n).ok()),
            _ => Ok(None),
        };
        match &s.kind {
            Kind::Whole { min, max, unit } => {
                let n = number(&given)?
                    .ok_or_else(|| wrong(&format!("a whole number of {unit}"), &given))?;
                if n < *min {
                    return Err(self.refuse(s, format!("must be at least {min} {unit}, not {n}")));
                }
                if n > *max {
                    return Err(self.refuse(s, format!("must be at most {max} {unit}, not {n}")));
                }
                Ok(Checked::Whole(n))
            }
            Kind::WholeOf(choices) => {
                let list = choices
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                let n = number(&given)?.ok_or_else(|| wrong(&format!("one of {list}"), &given))?;
                if !choices.contains(&n) {
                    return Err(self.refuse(s, format!("must be one of {list}, not {n}")));
                }
                Ok(Checked::Whole(n))
            }
            Kind::Switch => match &given {
                Given::Bool(b) => Ok(Checked::Switch(*b)),
                Given::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
                    "true" | "1" | "on" | "yes" => Ok(Checked::Switch(true)),
                    "false" | "0" | "off" | "no" => Ok(Checked::Switch(false)),
                    _ => Err(wrong("true or false", &given)),
                },
                _ => Err(wrong("true or false", &given)),
            },
            Kind::Word(words) => {
                let word = match &given {
                    Given::Text(t) | Given::Str(t) => t.trim(),
                    _ => return Err(wrong(&format!("one of: {}", words.join(", ")), &given)),
                };
                if !words.contains(&word) {
                    return Err(wrong(&format!("one of: {}", words.join(", ")), &given));
                }
                Ok(Checked::Text(word.to_owned()))
            }
            Kind::Text | Kind::Path | Kind::SecretUrl | Kind::Secret => match given {
                Given::Text(t) | Given::Str(t) => Ok(Checked::Text(t.trim().to_owned())),
                other => Err(wrong("text", &other)),
            },
            Kind::List => match given {
                Given::Text(t) => Ok(Checked::List(
                    t.split(',')
                        .map(str::trim)
                        .filter(|e| !e.is_empty())
                        .map(str::to_owned)
                        .collect(),
                )),
                Given::Strings(l) => Ok(Checked::List(l)),
                other => Err(wrong("a list of text entries", &other)),
            },
        }
    }
}

fn missing_default(s: &Setting) -> ConfigError {
    // The table gives this setting no default; a unit test loads every default, so this is
    // a programming error caught before release, reported rather than panicking.
    ConfigError::new(format!("{}: has no default", s.key))
}

fn unknown_variable(name: &str) -> ConfigError {
    let known = SETTINGS
        .iter()
        .map(|s| s.env())
        .chain(OTHER_VARIABLES.iter().map(|(n, _)| (*n).to_owned()))
        .collect::<Vec<_>>()
        .join(", ");
    ConfigError::new(format!(
        "unknown environment variable {name}; Warden reads only: {known}"
    ))
}

fn read_file(
    path: &Path,
    given: &mut BTreeMap<&'static str, (Given, Origin)>,
) -> Result<(), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(format!(
            "cannot read configuration file {}: {e}",
            path.display()
        ))
    })?;
    let line_of = |at: usize| text[..at.min(text.len())].matches('\n').count() + 1;
    let doc = DeTable::parse(&text).map_err(|e| {
        let what = e.message().replace('\n', " ");
        let at = e
            .span()
            .map(|s| format!(" (line {})", line_of(s.start)))
            .unwrap_or_default();
        ConfigError::new(format!("configuration file {}{at}: {what}", path.display()))
    })?;
    let mut leaves = Vec::new();
    for (k, v) in doc.get_ref() {
        match v.get_ref() {
            DeValue::Table(section) => {
                for (name, value) in section {
                    leaves.push((
                        format!("{}.{}", k.get_ref(), name.get_ref()),
                        name.span(),
                        value,
                    ));
                }
            }
            _ => leaves.push((k.get_ref().to_string(), k.span(), v)),
        }
    }
    for (key, span, value) in leaves {
        let line = line_of(span.start);
        let setting = table::find(&key).filter(|s| s.file).ok_or_else(|| {
            let section = key.split_once('.').map_or("", |(s, _)| s);
            let near = SETTINGS
                .iter()
                .filter(|s| s.file && s.key.split_once('.').map_or("", |(s, _)| s) == section)
                .map(|s| s.key)
                .collect::<Vec<_>>()
                .join(", ");
            ConfigError::new(format!(
                "configuration file {} (line {line}): unknown setting '{key}'; settings here: {near}",
                path.display()
            ))
        })?;
        let value = match value.get_ref() {
            DeValue::String(s) => Given::Str(s.to_string()),
            DeValue::Integer(i) => match i128::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Given::Integer(n),
                Err(_) => Given::Other("integer out of range"),
            },
            DeValue::Boolean(b) => Given::Bool(*b),
            DeValue::Array(items) => {
                let strings: Option<Vec<String>> = items
                    .iter()
                    .map(|i| i.get_ref().as_str().map(str::to_owned))
                    .collect();
                strings.map_or(Given::Other("array of non-text values"), Given::Strings)
            }
            other => Given::Other(other.type_str()),
        };
        given.insert(
            setting.key,
            (
                value,
                Origin::File {
                    path: path.to_path_buf(),
                    line,
                },
            ),
        );
    }
    Ok(())
}
