//! HTTP/1.1 (RFC 9110 semantics, RFC 9112 message syntax) over the TCP engine, sans-IO.
//!
//! A service implements [`Handler`]: it gets each complete, checked [`Request`] and returns a
//! [`Response`] (status, fields, a body as [`Bytes`](bytes::Bytes) or a [`BodyStream`] pulled
//! under flow control). [`HttpApp`] is the framework around it, an
//! [`App`](crate::App) of the engine: parsing and limits (400, 413, 414, 431, 501,
//! 505), bodies (Content-Length and chunked, collected up to [`HttpConfig::max_body`]),
//! keep-alive and pipelining with back-pressure, timeouts (408), `Date`, `Server`,
//! `Content-Length`/chunked framing, `Connection`, and HEAD. [`StaticFiles`] is the handler of
//! `synack serve`: files loaded at startup, or one fixed body.
//!
//! Inside: `request` (the streaming parser), `response` (status codes, head formatting, heads
//! cached per second, the `Date` format), `handler` (the trait and the request view),
//! `content` (what the static responder serves, prepared at load), `static_files` (the static
//! responder's request path and its parsers of conditionals, ranges and `Accept-Encoding`),
//! `session` (the framework's per-connection state machine).
//!
//! Nothing here reads a clock or does I/O on the request path: the worker passes `now` to every
//! callback and the wall-clock second to [`HttpApp::set_wall_clock`]. The only file-system access
//! is [`Content::load_dir`], at startup.

pub(crate) mod access_log;
mod content;
mod handler;
mod request;
mod response;
mod session;
mod static_files;

pub use access_log::{AccessLogFormat, AccessLogSink, DEFAULT_QUEUE as ACCESS_LOG_QUEUE};
// The file and its thread live with the server's other threads (`server::access_log`); an
// HTTP server's users find them here, beside the sink.
pub use crate::server::{AccessLog, AccessLogReopen};
pub use content::{Content, LoadLimits, LoadReport, StaticOptions, mime_type};
pub use handler::{Handler, Headers, Request};
pub use request::{Method, RequestError, Version};
pub use response::{Body, BodyStream, Response, StatusCode};
pub use session::{HttpApp, HttpConfig, HttpSession, HttpStats, HttpTask};
pub use static_files::StaticFiles;
