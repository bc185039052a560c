//! Agent sessions: modes, statuses and their transitions, provider command lines, and the
//! lexical rules every path in a session's file API passes before the host resolves it beneath
//! the worktree (where symlinks are the host's to refuse: `warden-agent` opens each component
//! with `openat` beneath the root).

use serde::{Deserialize, Serialize};

use crate::tenancy::Provider;

/// How a session keeps its worktree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionMode {
    /// A conversation: the worktree persists until the session is archived.
    Chat,
    /// One piece of work: the worktree and its branch are deleted when it closes.
    Develop,
    /// A bot's session: persistent, like chat.
    Bot,
}

impl SessionMode {
    /// As stored and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Develop => "develop",
            Self::Bot => "bot",
        }
    }

    /// From its name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "chat" => Some(Self::Chat),
            "develop" => Some(Self::Develop),
            "bot" => Some(Self::Bot),
            _ => None,
        }
    }

    /// Whether closing the session deletes its worktree and branch.
    pub fn ephemeral(self) -> bool {
        self == Self::Develop
    }
}

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    /// Created, not yet started on a host.
    Waiting,
    /// Its provider process runs.
    Running,
    /// The provider exited 0.
    Done,
    /// The provider exited non-zero, or the host could not start it.
    Failed,
    /// Stopped by a user.
    Canceled,
    /// Its host went away while it ran.
    Lost,
}

impl SessionStatus {
    /// As stored and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
            Self::Lost => "lost",
        }
    }

    /// From its name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Waiting,
            Self::Running,
            Self::Done,
            Self::Failed,
            Self::Canceled,
            Self::Lost,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }

    /// Whether nothing more happens to it.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Waiting | Self::Running)
    }

    /// Whether it may move to `next`.
    pub fn may_become(self, next: SessionStatus) -> bool {
        use SessionStatus::*;
        matches!(
            (self, next),
            (Waiting, Running | Failed | Canceled | Lost)
                | (Running, Done | Failed | Canceled | Lost)
        )
    }

    /// Whether the session's own host may move it to `next`: what [`Self::may_become`]
    /// allows, and out of `Lost` too. `Lost` is the server's conclusion while the host was
    /// away; the host, back, knows better — it still runs the session, or says how it ended.
    /// Nobody else may revive a lost session (a user cannot stop one).
    pub fn host_may_make(self, next: SessionStatus) -> bool {
        use SessionStatus::*;
        self.may_become(next)
            || (self == Lost && matches!(next, Running | Done | Failed | Canceled))
    }
}

/// The environment variable a provider reads its API key from.
pub fn key_variable(p: Provider) -> &'static str {
    match p {
        Provider::ClaudeCode => "ANTHROPIC_API_KEY",
        Provider::GeminiCli => "GEMINI_API_KEY",
        Provider::Codex => "OPENAI_API_KEY",
        Provider::Opencode => "OPENCODE_API_KEY",
        Provider::KiloCli => "KILO_API_KEY",
        Provider::QwenCode => "DASHSCOPE_API_KEY",
    }
}

/// The command line a built-in provider runs for `prompt`. The prompt is one argument: no
/// shell ever sees it.
pub fn provider_argv(p: Provider, prompt: &str) -> Vec<String> {
    let (program, args): (&str, &[&str]) = match p {
        Provider::ClaudeCode => (
            "claude",
            &["--print", "--output-format", "stream-json", "--verbose"],
        ),
        Provider::GeminiCli => ("gemini", &["--yolo", "--prompt"]),
        Provider::Codex => ("codex", &["exec", "--full-auto"]),
        Provider::Opencode => ("opencode", &["run"]),
        Provider::KiloCli => ("kilo", &["run"]),
        Provider::QwenCode => ("qwen", &["--yolo", "--prompt"]),
    };
    let mut argv: Vec<String> = std::iter::once(program)
        .chain(args.iter().copied())
        .map(str::to_owned)
        .collect();
    argv.push(prompt.to_owned());
    argv
}

/// How a provider finds Warden's MCP endpoint: arguments placed before the prompt and
/// environment variables. The token itself travels only in `WARDEN_MCP_TOKEN` (never in
/// arguments, which other users of the host can list); the configuration names that variable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct McpWiring {
    /// Arguments inserted before the prompt.
    pub args: Vec<String>,
    /// Variables besides `WARDEN_MCP_URL` and `WARDEN_MCP_TOKEN`.
    pub env: Vec<(String, String)>,
}

/// The variable through which the server hands a session files to write into its private
/// home directory before the agent starts (a JSON object: relative path → content). The
/// host consumes it: the agent never sees it.
pub const HOME_FILES_VAR: &str = "WARDEN_HOME_FILES";

/// The MCP wiring for `p` with the endpoint at `url`: Claude Code gets `--mcp-config`, Codex
/// `-c mcp_servers.warden.…` with a bearer-token variable, OpenCode `OPENCODE_CONFIG_CONTENT`;
/// Gemini CLI and Qwen Code read MCP servers from their user settings file, written into the
/// session's private home (`~/.gemini/settings.json`, `~/.qwen/settings.json`) with the token
/// left as `$WARDEN_MCP_TOKEN` for them to expand. Kilo gets the two variables alone.
pub fn mcp_wiring(p: Provider, url: &str) -> McpWiring {
    let url_json = serde_json::Value::String(url.to_owned());
    let settings = |file: &str| {
        let content = format!(
            r#"{{"mcpServers":{{"warden":{{"httpUrl":{url_json},"headers":{{"Authorization":"Bearer $WARDEN_MCP_TOKEN"}}}}}}}}"#
        );
        let files = serde_json::json!({ file: content }).to_string();
        McpWiring {
            args: Vec::new(),
            env: vec![(HOME_FILES_VAR.to_owned(), files)],
        }
    };
    match p {
        Provider::ClaudeCode => McpWiring {
            args: vec![
                "--mcp-config".into(),
                format!(
                    r#"{{"mcpServers":{{"warden":{{"type":"http","url":{url_json},"headers":{{"Authorization":"Bearer ${{WARDEN_MCP_TOKEN}}"}}}}}}}}"#
                ),
            ],
            env: Vec::new(),
        },
        Provider::Codex => McpWiring {
            args: vec![
                "-c".into(),
                format!("mcp_servers.warden.url={url_json}"),
                "-c".into(),
                r#"mcp_servers.warden.bearer_token_env_var="WARDEN_MCP_TOKEN""#.into(),
            ],
            env: Vec::new(),
        },
        Provider::Opencode => McpWiring {
            args: Vec::new(),
            env: vec![(
                "OPENCODE_CONFIG_CONTENT".into(),
                format!(
                    r#"{{"mcp":{{"warden":{{"type":"remote","url":{url_json},"headers":{{"Authorization":"Bearer {{env:WARDEN_MCP_TOKEN}}"}}}}}}}}"#
                ),
            )],
        },
        Provider::GeminiCli => settings(".gemini/settings.json"),
        Provider::QwenCode => settings(".qwen/settings.json"),
        Provider::KiloCli => McpWiring::default(),
    }
}

/// The longest path the file API accepts, in bytes.
pub const MAX_PATH_BYTES: usize = 1024;
/// The longest single component, in bytes (the common file-system limit).
pub const MAX_COMPONENT_BYTES: usize = 255;

/// Why a path was refused. The message never repeats the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathRefusal {
    /// Empty.
    #[error("the path is empty")]
    Empty,
    /// Over [`MAX_PATH_BYTES`] or a component over [`MAX_COMPONENT_BYTES`].
    #[error("the path is too long")]
    TooLong,
    /// Starts at the root, or names a drive.
    #[error("the path must be relative to the worktree")]
    Absolute,
    /// A `..` or `.` component.
    #[error("the path must not contain '.' or '..' components")]
    Traversal,
    /// An empty component (`a//b`, a trailing `/`).
    #[error("the path must not contain empty components")]
    EmptyComponent,
    /// A backslash.
    #[error("the path must use '/' as its only separator")]
    Backslash,
    /// NUL or another control character.
    #[error("the path must not contain control characters")]
    Control,
    /// A percent-encoded byte (paths arrive decoded once; a second encoding is an attack).
    #[error("the path must not contain percent-encoded characters")]
    Encoded,
    /// Inside `.git`.
    #[error("the repository's .git directory is not accessible")]
    GitDir,
}

impl PathRefusal {
    /// Stable code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::TooLong => "too-long",
            Self::Absolute => "absolute",
            Self::Traversal => "traversal",
            Self::EmptyComponent => "empty-component",
            Self::Backslash => "backslash",
            Self::Control => "control-character",
            Self::Encoded => "encoded",
            Self::GitDir => "git-directory",
        }
    }

    /// In words (never the path).
    pub fn message(self) -> &'static str {
        match self {
            Self::Empty => "the path is empty",
            Self::TooLong => "the path is too long",
            Self::Absolute => "the path must be relative to the worktree",
            Self::Traversal => "the path must not contain '.' or '..' components",
            Self::EmptyComponent => "the path must not contain empty components",
            Self::Backslash => "the path must use '/' as its only separator",
            Self::Control => "the path must not contain control characters",
            Self::Encoded => "the path must not contain percent-encoded characters",
            Self::GitDir => "the repository's .git directory is not accessible",
        }
    }
}

/// A path inside a worktree that passed every lexical rule: relative, `/`-separated, no `.`
/// or `..`, no empty components, nothing encoded, nothing in `.git`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorktreePath(String);

impl WorktreePath {
    /// Checks `raw` (as decoded once from the request).
    pub fn parse(raw: &str) -> Result<Self, PathRefusal> {
        if raw.is_empty() {
            return Err(PathRefusal::Empty);
        }
        if raw.len() > MAX_PATH_BYTES {
            return Err(PathRefusal::TooLong);
        }
        if raw
            .chars()
            .any(|c| c.is_control() || is_invisible_separator(c))
        {
            return Err(PathRefusal::Control);
        }
        if raw.contains('\\') {
            return Err(PathRefusal::Backslash);
        }
        if raw.starts_with('/') || raw.starts_with('~') || has_drive(raw) {
            return Err(PathRefusal::Absolute);
        }
        if has_percent_escape(raw) {
            return Err(PathRefusal::Encoded);
        }
        for component in raw.split('/') {
            match component {
                "" => return Err(PathRefusal::EmptyComponent),
                "." | ".." => return Err(PathRefusal::Traversal),
                c if c.len() > MAX_COMPONENT_BYTES => return Err(PathRefusal::TooLong),
                c if c.eq_ignore_ascii_case(".git") => return Err(PathRefusal::GitDir),
                // Unicode look-alikes of the dot that some tools fold to '.'.
                c if c.chars().all(|ch| ch == '.' || is_dot_lookalike(ch)) => {
                    return Err(PathRefusal::Traversal);
                }
                _ => {}
            }
        }
        Ok(Self(raw.to_owned()))
    }

    /// The path, `/`-separated.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its components.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

fn has_drive(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'
}

fn has_percent_escape(s: &str) -> bool {
    s.as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
}

fn is_dot_lookalike(c: char) -> bool {
    matches!(c, '\u{2024}' | '\u{FE52}' | '\u{FF0E}' | '\u{3002}')
}

fn is_invisible_separator(c: char) -> bool {
    matches!(
        c,
        '\u{2028}' | '\u{2029}' | '\u{200B}' | '\u{200E}' | '\u{200F}' | '\u{202E}' | '\u{FEFF}'
    )
}

#[cfg(test)]
mod mcp_tests {
    use super::*;

    #[test]
    fn wiring_names_the_variable_not_the_token() {
        let url = "https://warden.example.com/mcp";
        let claude = mcp_wiring(Provider::ClaudeCode, url);
        let config: serde_json::Value = serde_json::from_str(&claude.args[1]).unwrap();
        assert_eq!(config["mcpServers"]["warden"]["url"], url);
        assert_eq!(
            config["mcpServers"]["warden"]["headers"]["Authorization"],
            "Bearer ${WARDEN_MCP_TOKEN}"
        );
        let codex = mcp_wiring(Provider::Codex, url);
        assert_eq!(codex.args[1], format!("mcp_servers.warden.url=\"{url}\""));
        let open = mcp_wiring(Provider::Opencode, url);
        let config: serde_json::Value = serde_json::from_str(&open.env[0].1).unwrap();
        assert_eq!(config["mcp"]["warden"]["type"], "remote");
        for (p, file) in [
            (Provider::GeminiCli, ".gemini/settings.json"),
            (Provider::QwenCode, ".qwen/settings.json"),
        ] {
            let w = mcp_wiring(p, url);
            assert_eq!(w.env[0].0, HOME_FILES_VAR);
            let files: serde_json::Value = serde_json::from_str(&w.env[0].1).unwrap();
            let settings: serde_json::Value =
                serde_json::from_str(files[file].as_str().unwrap()).unwrap();
            assert_eq!(settings["mcpServers"]["warden"]["httpUrl"], url);
            assert_eq!(
                settings["mcpServers"]["warden"]["headers"]["Authorization"],
                "Bearer $WARDEN_MCP_TOKEN"
            );
        }
        assert_eq!(mcp_wiring(Provider::KiloCli, url), McpWiring::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traversal_attack_list_is_refused_and_ordinary_paths_pass() {
        let long_component = "a".repeat(256);
        let long_path = format!("{}/x", "abcdefgh/".repeat(120));
        let attacks: Vec<(&str, PathRefusal)> = vec![
            ("", PathRefusal::Empty),
            ("..", PathRefusal::Traversal),
            ("../etc/passwd", PathRefusal::Traversal),
            ("../../../../etc/shadow", PathRefusal::Traversal),
            ("src/../../secret", PathRefusal::Traversal),
            ("src/..", PathRefusal::Traversal),
            (".", PathRefusal::Traversal),
            ("./src/main.rs", PathRefusal::Traversal),
            ("src/./main.rs", PathRefusal::Traversal),
            ("/etc/passwd", PathRefusal::Absolute),
            ("/", PathRefusal::Absolute),
            ("//etc/passwd", PathRefusal::Absolute),
            ("~/.ssh/id_rsa", PathRefusal::Absolute),
            ("C:/Windows/win.ini", PathRefusal::Absolute),
            ("c:secret", PathRefusal::Absolute),
            ("..\\..\\etc\\passwd", PathRefusal::Backslash),
            ("src\\..\\..\\x", PathRefusal::Backslash),
            ("\\\\server\\share", PathRefusal::Backslash),
            ("src//main.rs", PathRefusal::EmptyComponent),
            ("src/", PathRefusal::EmptyComponent),
            ("src///x", PathRefusal::EmptyComponent),
            ("%2e%2e/etc/passwd", PathRefusal::Encoded),
            ("%2E%2E%2Fetc%2Fpasswd", PathRefusal::Encoded),
            ("..%2fetc%2fpasswd", PathRefusal::Encoded),
            ("%252e%252e/etc", PathRefusal::Encoded),
            ("src%2f..%2f..%2fx", PathRefusal::Encoded),
            ("%5c..%5cx", PathRefusal::Encoded),
            ("file%00.txt", PathRefusal::Encoded),
            ("a\0b", PathRefusal::Control),
            ("src/main.rs\0.png", PathRefusal::Control),
            ("line\nbreak", PathRefusal::Control),
            ("tab\there", PathRefusal::Control),
            ("esc\u{1b}[31m", PathRefusal::Control),
            ("del\u{7f}", PathRefusal::Control),
            ("rtl\u{202E}txt.exe", PathRefusal::Control),
            ("zero\u{200B}width/../x", PathRefusal::Control),
            ("\u{FF0E}\u{FF0E}/etc/passwd", PathRefusal::Traversal),
            ("\u{2024}\u{2024}/x", PathRefusal::Traversal),
            ("...", PathRefusal::Traversal),
            (".git/config", PathRefusal::GitDir),
            (".git", PathRefusal::GitDir),
            ("sub/.git/hooks/pre-commit", PathRefusal::GitDir),
            (".GIT/config", PathRefusal::GitDir),
            (&long_component, PathRefusal::TooLong),
            (&long_path, PathRefusal::TooLong),
        ];
        assert!(attacks.len() >= 40, "{} payloads", attacks.len());
        for (raw, why) in &attacks {
            assert_eq!(WorktreePath::parse(raw), Err(*why), "{raw:?}");
        }
        for ok in [
            "README.md",
            "src/main.rs",
            ".github/workflows/ci.yml",
            ".gitignore",
            "dir with spaces/file name.txt",
            "unicode/naïve-日本.txt",
            "a..b/c",
            "..hidden",
            "100%/sure",
            "s10/file",
        ] {
            assert_eq!(WorktreePath::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn statuses_move_forward_only() {
        use SessionStatus::*;
        assert!(Waiting.may_become(Running));
        assert!(Running.may_become(Done));
        assert!(Running.may_become(Lost));
        assert!(!Done.may_become(Running));
        assert!(!Lost.may_become(Running));
        assert!(!Running.may_become(Waiting));
        // Only the host itself corrects a loss, and nothing else comes back.
        assert!(Lost.host_may_make(Done) && Lost.host_may_make(Running));
        assert!(!Lost.may_become(Canceled) && !Lost.host_may_make(Waiting));
        for s in [Done, Failed, Canceled] {
            assert!(
                [Waiting, Running, Done, Failed, Canceled, Lost]
                    .into_iter()
                    .all(|t| !s.host_may_make(t))
            );
        }
        assert!(Done.is_final() && Canceled.is_final() && !Running.is_final());
        for s in [Waiting, Running, Done, Failed, Canceled, Lost] {
            assert_eq!(SessionStatus::parse(s.as_str()), Some(s));
        }
        assert!(SessionMode::Develop.ephemeral() && !SessionMode::Chat.ephemeral());
    }

    #[test]
    fn a_prompt_is_one_argument_whatever_it_contains() {
        let prompt = "fix it; rm -rf / $(whoami) `id` && echo pwned";
        for p in Provider::ALL {
            let argv = provider_argv(p, prompt);
            assert_eq!(argv.last().map(String::as_str), Some(prompt));
            assert!(!argv[0].contains(' '));
        }
    }
}
