//! Workspaces, the tenant boundary, and the values a workspace owns. Every value here is
//! parsed once at the edge; holding one means it is valid.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A workspace's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct WorkspaceId(Uuid);

impl WorkspaceId {
    /// A new, time-ordered id.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    /// Parses the textual form.
    pub fn parse(text: &str) -> Option<Self> {
        Uuid::try_parse(text).ok().map(Self)
    }

    /// Wraps a stored id.
    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// The id.
    pub fn uuid(self) -> Uuid {
        self.0
    }
}

impl fmt::Display for WorkspaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why a value is refused. The message is safe to show: it never echoes a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Invalid {
    /// Which input.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

fn invalid(field: &'static str, reason: &'static str) -> Invalid {
    Invalid { field, reason }
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// A workspace's display name: 1–100 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceName(String);

impl WorkspaceName {
    /// Parses a name.
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let t = text.trim();
        if t.is_empty() || t.chars().count() > 100 {
            return Err(invalid("name", "must be 1 to 100 characters"));
        }
        if has_control(t) {
            return Err(invalid("name", "must not contain control characters"));
        }
        Ok(Self(t.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a workspace's code lives: a remote URL or a path on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "location")]
pub enum Repository {
    /// `https://`, `ssh://` or `git@host:path`. Never carries credentials (the PAT does).
    Url(String),
    /// An absolute path without `..` components.
    Path(String),
}

impl Repository {
    /// Parses a location: URLs by their scheme, absolute paths by their leading `/`.
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        const F: &str = "repository";
        let t = text.trim();
        if t.is_empty() || t.len() > 2048 || has_control(t) {
            return Err(invalid(
                F,
                "must be 1 to 2048 characters without control characters",
            ));
        }
        if let Some(path) = t.strip_prefix('/') {
            if path.split('/').any(|c| c == "..") {
                return Err(invalid(F, "a local path must not contain '..'"));
            }
            return Ok(Self::Path(t.to_owned()));
        }
        let rest = ["https://", "http://", "ssh://"]
            .iter()
            .find_map(|s| t.strip_prefix(s));
        if let Some(rest) = rest {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
            if authority.is_empty() {
                return Err(invalid(F, "the URL has no host"));
            }
            if let Some((userinfo, _)) = authority.rsplit_once('@')
                && (userinfo.contains(':') || t.starts_with("http"))
            {
                return Err(invalid(
                    F,
                    "the URL must not carry credentials; set the personal access token instead",
                ));
            }
            if t.contains(char::is_whitespace) {
                return Err(invalid(F, "a URL must not contain spaces"));
            }
            return Ok(Self::Url(t.to_owned()));
        }
        // scp-like: user@host:path
        if let Some((user_host, path)) = t.split_once(':')
            && let Some((user, host)) = user_host.split_once('@')
            && !user.is_empty()
            && !host.is_empty()
            && !path.is_empty()
            && !t.contains(char::is_whitespace)
        {
            return Ok(Self::Url(t.to_owned()));
        }
        Err(invalid(
            F,
            "must be an https://, ssh:// or git@host:path URL, or an absolute path",
        ))
    }
}

/// An environment variable's name: `[A-Z_][A-Z0-9_]*`, at most 128 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariableName(String);

impl VariableName {
    /// Parses a name.
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let ok = !text.is_empty()
            && text.len() <= 128
            && text
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            && !text.as_bytes()[0].is_ascii_digit();
        if ok && text.starts_with("WARDEN_") {
            // Warden's own (the MCP endpoint, the gateway, files the host writes).
            Err(invalid(
                "name",
                "names starting with WARDEN_ are Warden's own",
            ))
        } else if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(invalid(
                "name",
                "must be 1 to 128 characters of A-Z, 0-9 and '_', not starting with a digit",
            ))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks a secret value (variable value, token, key) without ever echoing it.
pub fn check_secret_value(field: &'static str, value: &str, max: usize) -> Result<(), Invalid> {
    if value.is_empty() || value.len() > max {
        return Err(invalid(field, "is empty or too long"));
    }
    if value.contains('\0') {
        return Err(invalid(field, "must not contain NUL"));
    }
    Ok(())
}

/// The longest variable value, in bytes.
pub const VARIABLE_VALUE_MAX: usize = 32 * 1024;
/// The longest personal access token or provider key, in bytes.
pub const TOKEN_MAX: usize = 4096;

/// A prompt template's name: `[a-z0-9][a-z0-9_-]*`, at most 64 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptName(String);

impl PromptName {
    /// Parses a name.
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let b = text.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 64
            && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'_');
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(invalid(
                "name",
                "must be 1 to 64 characters of a-z, 0-9, '-' and '_', starting with a letter or digit",
            ))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The longest prompt template, in bytes.
pub const PROMPT_MAX: usize = 64 * 1024;

/// Checks a prompt template's text.
pub fn check_prompt(text: &str) -> Result<(), Invalid> {
    if text.trim().is_empty() || text.len() > PROMPT_MAX || text.contains('\0') {
        return Err(invalid("template", "must be 1 byte to 64 KiB of text"));
    }
    Ok(())
}

/// Commands run before and after each agent session, in the session's worktree.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hooks {
    /// Run before the agent starts.
    #[serde(default)]
    pub pre_session: Vec<String>,
    /// Run after the agent stops.
    #[serde(default)]
    pub post_session: Vec<String>,
}

impl Hooks {
    /// Checks limits: at most 20 commands per phase, each 1–4096 characters without NUL.
    pub fn check(&self) -> Result<(), Invalid> {
        for list in [&self.pre_session, &self.post_session] {
            if list.len() > 20 {
                return Err(invalid("hooks", "at most 20 commands per phase"));
            }
            if list
                .iter()
                .any(|c| c.trim().is_empty() || c.len() > 4096 || c.contains('\0'))
            {
                return Err(invalid("hooks", "each command is 1 to 4096 characters"));
            }
        }
        Ok(())
    }
}

/// Where a workspace's tickets come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketConfig {
    /// The tracker.
    pub provider: TicketProvider,
    /// The project, repository or board key in that tracker.
    pub project: String,
    /// The tracker's API address, for self-hosted trackers (`https://`; `http://` only where
    /// the operator allows private trackers, checked when saved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Only tickets carrying one of these labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Azure DevOps: the work item states a sync sets (by the project's process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub states: Option<TrackerStates>,
}

/// The work item states ticket sync sets in Azure DevOps, whose names depend on the
/// project's process (Scrum: `Done`, `Removed`, `New`; Agile closes with `Closed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackerStates {
    /// For a ticket done.
    pub done: String,
    /// For a ticket rejected.
    pub rejected: String,
    /// For a ticket reopened.
    pub open: String,
}

/// A ticket tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketProvider {
    /// GitHub issues.
    Github,
    /// GitLab issues.
    Gitlab,
    /// Jira.
    Jira,
    /// Linear.
    Linear,
    /// Azure DevOps work items.
    AzureDevops,
}

impl TicketConfig {
    /// Parses and checks a ticket configuration document.
    pub fn parse(value: &serde_json::Value) -> Result<Self, Invalid> {
        const F: &str = "ticket_config";
        let cfg: Self = serde_json::from_value(value.clone()).map_err(|_| {
            invalid(
                F,
                "must be {\"provider\": github|azure_devops|gitlab|jira|linear, \
                 \"project\": ..., optional \"base_url\", \"labels\" and (Azure DevOps) \
                 \"states\": {\"done\", \"rejected\", \"open\"}}",
            )
        })?;
        if cfg.project.trim().is_empty() || cfg.project.len() > 200 || has_control(&cfg.project) {
            return Err(invalid(F, "project must be 1 to 200 characters"));
        }
        if let Some(url) = &cfg.base_url {
            let host = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"))
                .unwrap_or_default();
            if host.is_empty() || url.len() > 2048 || url.contains(char::is_whitespace) {
                return Err(invalid(F, "base_url must be an https:// URL"));
            }
        }
        if cfg.labels.len() > 50
            || cfg
                .labels
                .iter()
                .any(|l| l.trim().is_empty() || l.len() > 100 || has_control(l))
        {
            return Err(invalid(F, "at most 50 labels of 1 to 100 characters"));
        }
        if let Some(s) = &cfg.states
            && [&s.done, &s.rejected, &s.open]
                .iter()
                .any(|n| n.trim().is_empty() || n.len() > 100 || has_control(n))
        {
            return Err(invalid(F, "each state name is 1 to 100 characters"));
        }
        Ok(cfg)
    }
}

/// A coding agent whose API key a workspace brings (bring-your-own-key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    /// Claude Code.
    ClaudeCode,
    /// Gemini CLI.
    GeminiCli,
    /// Codex.
    Codex,
    /// OpenCode.
    Opencode,
    /// Kilo CLI.
    KiloCli,
    /// Qwen Code.
    QwenCode,
}

impl Provider {
    /// Every provider.
    pub const ALL: [Provider; 6] = [
        Self::ClaudeCode,
        Self::GeminiCli,
        Self::Codex,
        Self::Opencode,
        Self::KiloCli,
        Self::QwenCode,
    ];

    /// The stored and URL name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClaudeCode => "claude-code",
            Self::GeminiCli => "gemini-cli",
            Self::Codex => "codex",
            Self::Opencode => "opencode",
            Self::KiloCli => "kilo-cli",
            Self::QwenCode => "qwen-code",
        }
    }

    /// The provider called `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_are_urls_without_credentials_or_clean_absolute_paths() {
        for ok in [
            "https://git.example.test/team/app.git",
            "ssh://git@git.example.test:2222/team/app.git",
            "git@git.example.test:team/app.git",
            "/srv/repos/app",
        ] {
            assert!(Repository::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "relative/path",
            "/srv/../etc",
            "https://user:secret@git.example.test/x",
            "https://token@git.example.test/x",
            "ftp://x/y",
            "https://",
            "https://a b/c",
            "/srv/\nx",
        ] {
            let err = Repository::parse(bad).expect_err(bad);
            assert!(!err.to_string().contains("secret"));
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(VariableName::parse("API_URL").is_ok());
        assert!(VariableName::parse("_X1").is_ok());
        assert!(VariableName::parse("WARDEN_HOME_FILES").is_err());
        for bad in ["", "lower", "1ABC", "A-B", "A B", &"A".repeat(129)] {
            assert!(VariableName::parse(bad).is_err(), "{bad}");
        }
        assert!(PromptName::parse("fix-bug_2").is_ok());
        for bad in ["", "-x", "Upper", "a/b", &"a".repeat(65)] {
            assert!(PromptName::parse(bad).is_err(), "{bad}");
        }
        assert!(WorkspaceName::parse("  Payments  ").is_ok());
        assert!(WorkspaceName::parse("   ").is_err());
        assert!(WorkspaceName::parse("a\u{7}b").is_err());
        assert_eq!(Provider::parse("claude-code"), Some(Provider::ClaudeCode));
        assert_eq!(Provider::parse("gpt"), None);
    }

    #[test]
    fn ticket_configuration_is_a_known_shape() {
        let ok = serde_json::json!({"provider": "jira", "project": "PAY",
            "base_url": "https://jira.example.test", "labels": ["agent"]});
        assert!(TicketConfig::parse(&ok).is_ok());
        for bad in [
            serde_json::json!({"provider": "jira"}),
            serde_json::json!({"provider": "trello", "project": "x"}),
            serde_json::json!({"provider": "jira", "project": "x", "extra": 1}),
            serde_json::json!({"provider": "jira", "project": "x", "base_url": "ftp://x"}),
            serde_json::json!([1, 2]),
        ] {
            assert!(TicketConfig::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hooks_and_secrets_have_limits() {
        let mut h = Hooks::default();
        assert!(h.check().is_ok());
        h.pre_session = vec!["make setup".into(); 21];
        assert!(h.check().is_err());
        h.pre_session = vec![String::new()];
        assert!(h.check().is_err());
        assert!(check_secret_value("value", "s3cr3t", 10).is_ok());
        assert!(check_secret_value("value", "", 10).is_err());
        assert!(check_secret_value("value", "a\0b", 10).is_err());
        let err = check_secret_value("value", "0123456789abc", 10).unwrap_err();
        assert!(!err.to_string().contains("0123"));
    }
}
