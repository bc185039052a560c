//! Prompt templates for automation runs. A template is checked when it is saved and rendered
//! at each run with what triggered it: `event` (the delivery's JSON body, or its text when it
//! is not JSON; a field it lacks prints as `null`), `event_type`, `automation` (its name) and `trigger`. Rendering is sandboxed
//! (MiniJinja: no file or network access, a fuel limit against runaway loops) and every
//! value printed is JSON-escaped — a string arrives quoted with its quotes and newlines
//! escaped — so a sender controls data, never the template around it. Templates render in a
//! single pass: text that looks like a template inside a value stays text.

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

use crate::{CoreError, CoreResult};

/// Instructions a render may spend (a loop over a large payload ends here, not in a hang).
const FUEL: u64 = 50_000;
/// The longest rendered prompt, in bytes (a session prompt's limit).
pub const RENDERED_MAX: usize = 100_000;

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Json);
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(50);
    env
}

/// Checks that `template` parses.
pub fn check(template: &str) -> CoreResult<()> {
    environment()
        .template_from_str(template)
        .map(drop)
        .map_err(|_| {
            CoreError::invalid(
                "prompt",
                "is not a valid template (write {{ event.field }} for a value of the event)",
            )
        })
}

/// What a run renders its prompt with.
#[derive(Debug, Clone, Default)]
pub struct RunInput<'a> {
    /// The automation's name.
    pub automation: &'a str,
    /// `manual`, `schedule`, `loop` or `event`.
    pub trigger: &'a str,
    /// The delivery's event type.
    pub event_type: Option<&'a str>,
    /// The delivery's raw body.
    pub event_body: Option<&'a [u8]>,
}

/// Renders `template` for one run. Fails with a sentence safe to store on the run.
pub fn render(template: &str, input: &RunInput<'_>) -> Result<String, &'static str> {
    let event = match input.event_body {
        None => Value::from(()),
        Some(body) => match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(json) => Value::from(minijinja::value::Serde(json)),
            Err(_) => Value::from(String::from_utf8_lossy(body).into_owned()),
        },
    };
    let ctx = minijinja::context! {
        event => event,
        event_type => input.event_type,
        automation => input.automation,
        trigger => input.trigger,
    };
    let out = environment()
        .render_str(template, ctx)
        .map_err(|_| "the prompt template could not be rendered with this event")?;
    if out.trim().is_empty() {
        return Err("the prompt template rendered to nothing");
    }
    if out.len() > RENDERED_MAX || out.contains('\0') {
        return Err("the rendered prompt is longer than 100,000 bytes or holds NUL");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_body<'a>(body: &'a [u8]) -> RunInput<'a> {
        RunInput {
            automation: "triage",
            trigger: "event",
            event_type: Some("issues"),
            event_body: Some(body),
        }
    }

    #[test]
    fn values_are_json_escaped_and_never_expanded_again() {
        let body = br#"{"issue":{"title":"Fix \"it\"\nnow {{ automation }}","number":7}}"#;
        let out = render(
            "Triage issue {{ event.issue.number }}: {{ event.issue.title }} ({{ event_type }})",
            &with_body(body),
        )
        .unwrap();
        assert_eq!(
            out,
            r#"Triage issue 7: "Fix \"it\"\nnow {{ automation }}" ("issues")"#
        );
    }

    #[test]
    fn a_missing_field_renders_null_and_a_non_json_body_is_text() {
        let out = render("[{{ event.nope.deeper }}]", &with_body(b"{}")).unwrap();
        assert_eq!(out, "[null]");
        let out = render("{{ event }}", &with_body(b"plain <b>text</b>")).unwrap();
        assert_eq!(out, r#""plain <b>text</b>""#);
    }

    #[test]
    fn runaway_and_broken_templates_fail_cleanly() {
        assert!(check("{% for").is_err());
        assert!(check("Review {{ event.pull_request.title }}").is_ok());
        let spin =
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}";
        assert!(render(spin, &with_body(b"{}")).is_err());
        assert!(render("   ", &with_body(b"{}")).is_err());
    }
}
