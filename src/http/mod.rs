//! The HTTP/1.1 responder (RFC 9110 semantics, RFC 9112 message syntax), sans-IO.
//!
//! - [`request`]: the streaming request parser (head scanner, head checks, body skipping);
//! - [`response`]: status codes, prepared heads cached per second, the `Date` format;
//! - [`content`]: what is served: a fixed body (benchmark mode) or a directory loaded at startup;
//! - [`session`]: [`HttpApp`] and [`HttpSession`], the [`crate::tcp::app::App`] the engine drives.
//!
//! Nothing here reads a clock or does I/O on the request path: the worker passes `now` to every
//! callback and the wall-clock second to [`HttpApp::set_wall_clock`]. The only file-system access
//! is [`Content::load_dir`], at startup.

pub mod content;
pub mod request;
pub mod response;
pub mod session;

pub use content::{Content, LoadLimits, LoadReport, ResourceId};
pub use request::RequestError;
pub use response::Status;
pub use session::{HttpApp, HttpConfig, HttpSession, HttpStats};
