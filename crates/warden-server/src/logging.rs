//! Log output: human-readable lines by default, JSON by setting, always to standard error.
//!
//! Every line logged while a request is being handled carries that request's id, method and
//! route. The context lives in a task-local set by the edge middleware, not in a tracing span:
//! a span per request cost about a tenth of `/healthz` throughput (BENCHMARKS.md), and a
//! task-local gives the same lines for a fraction of it.

use std::fmt;
use std::sync::OnceLock;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use warden_domain::request_id::RequestId;

use crate::config::{LogConfig, LogFormat};

/// What every log line of one request carries.
#[derive(Debug)]
pub struct RequestContext {
    /// The request id (echoed in `X-Request-Id`).
    pub id: RequestId,
    /// The HTTP method.
    pub method: axum::http::Method,
    /// The matched route pattern, once routing has happened. Never the raw path, which may
    /// carry tokens.
    pub route: OnceLock<axum::extract::MatchedPath>,
}

tokio::task_local! {
    static REQUEST: RequestContext;
}

/// `fut` with `ctx` as the request context of every line it logs.
pub fn in_request<F: Future>(
    ctx: RequestContext,
    fut: F,
) -> tokio::task::futures::TaskLocalFuture<RequestContext, F> {
    REQUEST.scope(ctx, fut)
}

/// Records the matched route for the current request's log lines.
pub fn record_route(route: &axum::extract::MatchedPath) {
    let _ = REQUEST.try_with(|ctx| ctx.route.set(route.clone()));
}

/// The id of the request being handled on this task, if any.
pub fn current_request_id() -> Option<RequestId> {
    REQUEST.try_with(|ctx| ctx.id.clone()).ok()
}

/// The trace export, when `warden serve` runs with `traces.otlp_endpoint`.
static TRACES: OnceLock<opentelemetry_sdk::trace::SdkTracerProvider> = OnceLock::new();

/// Whether each request gets a trace span (an OTLP endpoint is configured). Without it the
/// edge makes no span at all: the per-request cost stays that of the task-local above.
pub fn tracing_requests() -> bool {
    TRACES.get().is_some()
}

/// As [`init`], and, when `log.otlp_endpoint` is set, exports a span for every request
/// (named `METHOD /route/template`, with the request id as `warden.request_id`) over
/// OTLP/HTTP in batches. For `warden serve`; call [`flush_traces`] before exiting.
pub fn init_serving(log: &LogConfig) -> Result<(), String> {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig as _;
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let Some(endpoint) = &log.otlp_endpoint else {
        init(log);
        return Ok(());
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(endpoint.as_str())
        .with_timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| format!("traces.otlp_endpoint: cannot export traces: {e}"))?;
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name("warden")
                .with_attribute(opentelemetry::KeyValue::new(
                    "service.version",
                    env!("CARGO_PKG_VERSION"),
                ))
                .build(),
        )
        .build();
    let tracer = provider.tracer("warden");
    let filter = EnvFilter::try_new(&log.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let lines = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let lines = match log.format {
        LogFormat::Text => lines.event_format(Lines::Text).boxed(),
        LogFormat::Json => lines.event_format(Lines::Json).boxed(),
    };
    // The log keeps its own filter; spans go to the exporter at info whatever the log shows.
    let spans = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_tracked_inactivity(false)
        .with_threads(false)
        .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
    tracing_subscriber::registry()
        .with(lines.with_filter(filter))
        .with(spans)
        .try_init()
        .map_err(|e| format!("cannot install the trace export: {e}"))?;
    let _ = TRACES.set(provider);
    Ok(())
}

/// Names a request's span after its route template (`GET /api/v1/workspaces/{workspace_id}`;
/// `unmatched` when no route matched) and records the route and the status, once they are
/// known (a started span's name changes through OpenTelemetry itself: `tracing` fields
/// recorded after the start do not rename it).
pub fn finish_span(
    span: &tracing::Span,
    method: &axum::http::Method,
    route: Option<&str>,
    status: axum::http::StatusCode,
) {
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let route = route.unwrap_or("unmatched");
    let cx = span.context();
    let otel = cx.span();
    otel.update_name(format!("{method} {route}"));
    otel.set_attribute(opentelemetry::KeyValue::new("http.route", route.to_owned()));
    otel.set_attribute(opentelemetry::KeyValue::new(
        "http.response.status_code",
        i64::from(status.as_u16()),
    ));
    if status.is_server_error() {
        otel.set_status(opentelemetry::trace::Status::error(""));
    }
}

/// Sends the spans still waiting for their batch (at most a few seconds). Call once, as the
/// server stops.
pub fn flush_traces() {
    if let Some(provider) = TRACES.get()
        && let Err(e) = provider.shutdown()
    {
        tracing::warn!(error = %e, "traces still waiting could not be sent");
    }
}

/// Installs the global subscriber. Call once, first thing in a binary.
pub fn init(log: &LogConfig) {
    let filter = EnvFilter::try_new(&log.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    // A second initialisation (tests) keeps the first subscriber.
    let _ = match log.format {
        LogFormat::Text => builder.event_format(Lines::Text).try_init(),
        LogFormat::Json => builder.event_format(Lines::Json).try_init(),
    };
}

/// Warden's line formats.
#[derive(Debug, Clone, Copy)]
enum Lines {
    Text,
    Json,
}

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        match self {
            Lines::Text => {
                SystemTime.format_time(&mut writer)?;
                write!(writer, " {:>5} ", meta.level())?;
                let _ = REQUEST.try_with(|r| {
                    write!(writer, "request{{id={} method={}", r.id, r.method)?;
                    if let Some(route) = r.route.get() {
                        write!(writer, " route={}", route.as_str())?;
                    }
                    writer.write_str("}: ")
                });
                ctx.field_format().format_fields(writer.by_ref(), event)?;
                writeln!(writer)
            }
            Lines::Json => {
                let mut time = String::new();
                SystemTime.format_time(&mut Writer::new(&mut time))?;
                let mut obj = Map::new();
                obj.insert("timestamp".into(), Value::String(time));
                obj.insert("level".into(), Value::String(meta.level().to_string()));
                obj.insert("target".into(), Value::String(meta.target().to_owned()));
                let _ = REQUEST.try_with(|r| {
                    obj.insert("request_id".into(), Value::String(r.id.to_string()));
                    obj.insert("method".into(), Value::String(r.method.to_string()));
                    if let Some(route) = r.route.get() {
                        obj.insert("route".into(), Value::String(route.as_str().to_owned()));
                    }
                });
                event.record(&mut JsonFields(&mut obj));
                let line = serde_json::to_string(&obj).map_err(|_| fmt::Error)?;
                writeln!(writer, "{line}")
            }
        }
    }
}

struct JsonFields<'a>(&'a mut Map<String, Value>);

impl Visit for JsonFields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::String(format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_owned(), Value::String(value.to_owned()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
}
