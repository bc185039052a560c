//! Workflow definitions: a named sequence of steps kept as data (JSON), checked here before it
//! is stored — known step kinds and fields only, unique step ids, every jump to a step that
//! exists, no cycle — and the rule for where a run goes after each step.
//!
//! ```json
//! {"steps": [
//!   {"id": "build", "kind": "agent", "prompt": "Implement the ticket.", "provider": "claude-code"},
//!   {"id": "tests", "kind": "command", "command": ["make", "test"]},
//!   {"id": "green", "kind": "condition", "if": "succeeded", "then": "review", "else": "fix"},
//!   {"id": "fix", "kind": "agent", "prompt": "The tests fail; fix them.", "provider": "claude-code"},
//!   {"id": "review", "kind": "approval", "permission": "tickets.approve_qa",
//!    "timeout_minutes": 1440, "others_only": true}
//! ], "on_ticket": "ready_for_development"}
//! ```
//!
//! Steps run in order. After a step that failed the run ends failed, unless the next step is a
//! condition (which reads the previous step's outcome and jumps to `then` or `else`). A jump
//! goes only forward: a definition whose jumps could return to a step already run (a cycle)
//! is refused, so every run ends.

use serde::{Deserialize, Serialize};

use crate::access::Permission;
use crate::tenancy::{Invalid, Provider};
use crate::tickets::TicketStatus;

/// Most steps in a workflow.
pub const STEPS_MAX: usize = 50;
/// Longest an approval waits, in minutes (30 days).
pub const APPROVAL_MAX_MINUTES: u32 = 30 * 24 * 60;

/// A checked definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Start a run with the ticket whenever a ticket of the workspace moves to this status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_ticket: Option<String>,
}

/// One step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "RawStep")]
pub struct Step {
    /// Unique within the workflow: 1–40 of `a-z 0-9 - _`.
    pub id: String,
    /// What the step does.
    #[serde(flatten)]
    pub kind: StepKind,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepKind {
    /// An agent session on the workspace's repository.
    Agent {
        /// Its prompt (the run's ticket, if any, follows it).
        prompt: String,
        /// The coding agent.
        provider: String,
        /// `develop` (default), `chat` or `bot`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<String>,
    },
    /// A command in a session of its own on the workspace's repository (a build, the tests).
    Command {
        /// Program and arguments (no shell).
        command: Vec<String>,
    },
    /// A person holding `permission` in the workspace approves or rejects.
    Approval {
        /// The permission the approver needs (`workflows.update` when not given).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        permission: Option<String>,
        /// How long it waits before it counts as rejected (default 24 hours).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_minutes: Option<u32>,
        /// Whether the person who started the run may not approve it (default true).
        #[serde(default = "yes")]
        others_only: bool,
    },
    /// Goes to `then` or `else` by the previous step's outcome.
    Condition {
        /// `succeeded` or `failed`.
        #[serde(rename = "if")]
        when: String,
        /// The step to go to when it holds (default: the next one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        then: Option<String>,
        /// The step to go to otherwise (default: end the run, failed).
        #[serde(default, rename = "else", skip_serializing_if = "Option::is_none")]
        otherwise: Option<String>,
    },
}

fn yes() -> bool {
    true
}

/// A step as written: the kind's tag and fields side by side with its id, nothing else.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum RawStep {
    Agent {
        id: String,
        prompt: String,
        provider: String,
        #[serde(default)]
        mode: Option<String>,
    },
    Command {
        id: String,
        command: Vec<String>,
    },
    Approval {
        id: String,
        #[serde(default)]
        permission: Option<String>,
        #[serde(default)]
        timeout_minutes: Option<u32>,
        #[serde(default = "yes")]
        others_only: bool,
    },
    Condition {
        id: String,
        #[serde(rename = "if")]
        when: String,
        #[serde(default)]
        then: Option<String>,
        #[serde(default, rename = "else")]
        otherwise: Option<String>,
    },
}

impl From<RawStep> for Step {
    fn from(raw: RawStep) -> Self {
        match raw {
            RawStep::Agent {
                id,
                prompt,
                provider,
                mode,
            } => Self {
                id,
                kind: StepKind::Agent {
                    prompt,
                    provider,
                    mode,
                },
            },
            RawStep::Command { id, command } => Self {
                id,
                kind: StepKind::Command { command },
            },
            RawStep::Approval {
                id,
                permission,
                timeout_minutes,
                others_only,
            } => Self {
                id,
                kind: StepKind::Approval {
                    permission,
                    timeout_minutes,
                    others_only,
                },
            },
            RawStep::Condition {
                id,
                when,
                then,
                otherwise,
            } => Self {
                id,
                kind: StepKind::Condition {
                    when,
                    then,
                    otherwise,
                },
            },
        }
    }
}

fn invalid(reason: &'static str) -> Invalid {
    Invalid {
        field: "definition",
        reason,
    }
}

/// What is wrong with a definition, in words that name the step (shown to its author).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DefinitionProblem(pub String);

impl StepKind {
    /// The kind's name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Agent { .. } => "agent",
            Self::Command { .. } => "command",
            Self::Approval { .. } => "approval",
            Self::Condition { .. } => "condition",
        }
    }
}

impl Definition {
    /// Parses and checks a definition document.
    pub fn parse(value: &serde_json::Value) -> Result<Self, DefinitionProblem> {
        if let Some(steps) = value.get("steps").and_then(|s| s.as_array()) {
            for (i, s) in steps.iter().enumerate() {
                let kind = s.get("kind").and_then(|k| k.as_str()).unwrap_or("");
                if !matches!(kind, "agent" | "command" | "approval" | "condition") {
                    return Err(DefinitionProblem(format!(
                        "step {} has an unknown kind {kind:?} (agent, command, approval or condition)",
                        i + 1
                    )));
                }
            }
        }
        let def: Self = serde_json::from_value(value.clone()).map_err(|e| {
            DefinitionProblem(format!("the definition does not match the schema: {e}"))
        })?;
        def.check()?;
        Ok(def)
    }

    fn check(&self) -> Result<(), DefinitionProblem> {
        let p = |s: String| Err(DefinitionProblem(s));
        if self.steps.is_empty() || self.steps.len() > STEPS_MAX {
            return p(format!("a workflow has 1 to {STEPS_MAX} steps"));
        }
        if let Some(t) = &self.on_ticket
            && TicketStatus::parse(t).is_none()
        {
            return p(format!("on_ticket {t:?} is not a ticket status"));
        }
        for (i, s) in self.steps.iter().enumerate() {
            let ok_id = !s.id.is_empty()
                && s.id.len() <= 40
                && s.id.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                });
            if !ok_id {
                return p(format!(
                    "step {}: an id is 1 to 40 characters of a-z, 0-9, - and _",
                    i + 1
                ));
            }
            if self.steps[..i].iter().any(|o| o.id == s.id) {
                return p(format!("step id {:?} is used twice", s.id));
            }
            match &s.kind {
                StepKind::Agent {
                    prompt,
                    provider,
                    mode,
                } => {
                    if Provider::parse(provider).is_none() {
                        return p(format!("step {:?}: unknown provider {provider:?}", s.id));
                    }
                    if prompt.trim().is_empty() || prompt.len() > 100_000 || prompt.contains('\0') {
                        return p(format!("step {:?}: the prompt is 1 to 100,000 bytes", s.id));
                    }
                    if mode
                        .as_deref()
                        .is_some_and(|m| !matches!(m, "develop" | "chat" | "bot"))
                    {
                        return p(format!("step {:?}: mode is develop, chat or bot", s.id));
                    }
                }
                StepKind::Command { command } => {
                    if command.is_empty()
                        || command.len() > 256
                        || command[0].is_empty()
                        || command.iter().any(|a| a.len() > 4096 || a.contains('\0'))
                    {
                        return p(format!(
                            "step {:?}: command is a program and its arguments",
                            s.id
                        ));
                    }
                }
                StepKind::Approval {
                    permission,
                    timeout_minutes,
                    ..
                } => {
                    if let Some(perm) = permission
                        && Permission::parse(perm).is_none()
                    {
                        return p(format!("step {:?}: unknown permission {perm:?}", s.id));
                    }
                    if timeout_minutes.is_some_and(|m| m == 0 || m > APPROVAL_MAX_MINUTES) {
                        return p(format!(
                            "step {:?}: timeout_minutes is 1 to {APPROVAL_MAX_MINUTES}",
                            s.id
                        ));
                    }
                }
                StepKind::Condition {
                    when,
                    then,
                    otherwise,
                } => {
                    if !matches!(when.as_str(), "succeeded" | "failed") {
                        return p(format!("step {:?}: if is succeeded or failed", s.id));
                    }
                    if i == 0 {
                        return p(format!(
                            "step {:?}: a condition reads the previous step, so it cannot come first",
                            s.id
                        ));
                    }
                    for target in [then, otherwise].into_iter().flatten() {
                        let Some(t) = self.index_of(target) else {
                            return p(format!(
                                "step {:?} goes to {target:?}, which is not a step",
                                s.id
                            ));
                        };
                        if t <= i {
                            return p(format!(
                                "step {:?} goes back to {target:?}: that makes a cycle ({} → … → {})",
                                s.id, target, s.id
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The position of the step called `id`.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id == id)
    }

    /// Where a run goes after step `at` ended with `succeeded`: the next step's position, or
    /// `None` when the run ends (with `succeeded` as its outcome).
    pub fn after(&self, at: usize, succeeded: bool) -> Next {
        let next = at + 1;
        if next >= self.steps.len() {
            return Next::End { succeeded };
        }
        if !succeeded && !matches!(self.steps[next].kind, StepKind::Condition { .. }) {
            return Next::End { succeeded: false };
        }
        Next::Step(next)
    }

    /// Where a condition at `at` sends a run whose previous step ended with `succeeded`.
    pub fn branch(&self, at: usize, succeeded: bool) -> Next {
        let StepKind::Condition {
            when,
            then,
            otherwise,
        } = &self.steps[at].kind
        else {
            return self.after(at, succeeded);
        };
        let holds = (when == "succeeded") == succeeded;
        let target = if holds { then } else { otherwise };
        match (holds, target) {
            (_, Some(t)) => self
                .index_of(t)
                .map_or(Next::End { succeeded: false }, Next::Step),
            (true, None) => self.after(at, true),
            (false, None) => Next::End { succeeded: false },
        }
    }

    /// The permission an approval step needs.
    pub fn approval_permission(step: &Step) -> Option<Permission> {
        match &step.kind {
            StepKind::Approval { permission, .. } => Some(
                permission
                    .as_deref()
                    .and_then(Permission::parse)
                    .unwrap_or(Permission::WORKFLOWS_UPDATE),
            ),
            _ => None,
        }
    }
}

/// Where a run goes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// To the step at this position.
    Step(usize),
    /// The run ends.
    End {
        /// With this outcome.
        succeeded: bool,
    },
}

/// A workflow's name: 1 to 100 characters on one line.
pub fn check_name(name: &str) -> Result<String, Invalid> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 100 || n.chars().any(char::is_control) {
        return Err(Invalid {
            field: "name",
            reason: "must be 1 to 100 characters on one line",
        });
    }
    Ok(n.to_owned())
}

/// An empty definition is refused with this.
pub fn missing() -> Invalid {
    invalid("must be a JSON object with a list of steps")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn def(v: serde_json::Value) -> Result<Definition, String> {
        Definition::parse(&v).map_err(|e| e.0)
    }

    #[test]
    fn a_full_definition_parses_and_routes() {
        let d = def(json!({"steps": [
            {"id": "build", "kind": "agent", "prompt": "Do it.", "provider": "claude-code"},
            {"id": "tests", "kind": "command", "command": ["make", "test"]},
            {"id": "green", "kind": "condition", "if": "succeeded", "then": "review", "else": "fix"},
            {"id": "fix", "kind": "agent", "prompt": "Fix.", "provider": "codex"},
            {"id": "review", "kind": "approval", "permission": "tickets.approve_qa"}
        ], "on_ticket": "ready_for_development"}))
        .unwrap();
        assert_eq!(d.after(0, true), Next::Step(1));
        assert_eq!(d.after(0, false), Next::End { succeeded: false });
        assert_eq!(
            d.after(1, false),
            Next::Step(2),
            "a failure reaches the condition"
        );
        assert_eq!(d.branch(2, true), Next::Step(4));
        assert_eq!(d.branch(2, false), Next::Step(3));
        assert_eq!(d.after(4, true), Next::End { succeeded: true });
        assert_eq!(
            Definition::approval_permission(&d.steps[4]),
            Some(Permission::TICKETS_APPROVE_QA)
        );
        assert!(matches!(
            d.steps[4].kind,
            StepKind::Approval {
                others_only: true,
                ..
            }
        ));
    }

    #[test]
    fn bad_definitions_are_refused_naming_the_problem() {
        let cases = [
            (json!({"steps": []}), "1 to 50 steps"),
            (
                json!({"steps": [{"id": "a", "kind": "teleport"}]}),
                "unknown kind \"teleport\"",
            ),
            (
                json!({"steps": [{"id": "a", "kind": "agent", "prompt": "x", "provider": "claude-code", "extra": 1}]}),
                "schema",
            ),
            (
                json!({"steps": [
                    {"id": "a", "kind": "command", "command": ["true"]},
                    {"id": "b", "kind": "condition", "if": "failed", "then": "a"}]}),
                "cycle",
            ),
            (
                json!({"steps": [
                    {"id": "a", "kind": "command", "command": ["true"]},
                    {"id": "b", "kind": "condition", "if": "failed", "then": "b"}]}),
                "cycle",
            ),
            (
                json!({"steps": [
                    {"id": "a", "kind": "command", "command": ["true"]},
                    {"id": "b", "kind": "condition", "if": "failed", "then": "nowhere"}]}),
                "not a step",
            ),
            (
                json!({"steps": [{"id": "a", "kind": "command", "command": ["true"]},
                                 {"id": "a", "kind": "command", "command": ["true"]}]}),
                "used twice",
            ),
            (
                json!({"steps": [{"id": "a", "kind": "approval", "permission": "tickets.fly"}]}),
                "unknown permission",
            ),
            (
                json!({"steps": [{"id": "a", "kind": "agent", "prompt": "x", "provider": "hal"}]}),
                "unknown provider",
            ),
            (
                json!({"steps": [{"id": "a", "kind": "condition", "if": "succeeded"}]}),
                "cannot come first",
            ),
            (
                json!({"steps": [{"id": "A!", "kind": "command", "command": ["x"]}]}),
                "an id is",
            ),
            (
                json!({"steps": [{"id": "a", "kind": "command", "command": ["x"]}], "on_ticket": "maybe"}),
                "not a ticket status",
            ),
        ];
        for (v, needle) in cases {
            let e = def(v.clone()).unwrap_err();
            assert!(e.contains(needle), "{v} → {e}");
        }
    }
}
