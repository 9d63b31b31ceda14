//! HTTP/1.1 responder.
