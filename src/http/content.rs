//! The static responder, [`StaticFiles`]: a [`Handler`] over [`Content`], every response it
//! can give prepared at startup (`synack serve` is this handler).
//!
//! Two modes:
//! - [`Content::fixed`]: one body for every GET/HEAD of any (valid) path. This is the benchmark
//!   mode (`--body TEXT`).
//! - [`Content::load_dir`]: the files under a directory (`--root DIR`), read into memory once at
//!   startup. `/dir/` serves `dir/index.html`; `/dir` redirects (301) to `/dir/`.
//!
//! Both also hold their error responses (404, 405, 501). Lookups take a path already
//! percent-decoded and normalized by [`super::request::normalize_path`]: segments joined by `/`,
//! no leading slash, the root being the empty path.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::handler::{Handler, Request};
use super::request::Method;
use super::response::{Resource, Response, StatusCode};
use crate::time::Instant;

/// Index of a [`Resource`] in a [`Content`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ResourceId(pub(crate) u32);

#[derive(Clone, Copy, Debug)]
enum Entry {
    File(ResourceId),
    Dir {
        index: Option<ResourceId>,
        redirect: ResourceId,
    },
}

/// The error statuses that have a prepared response, in the order they are stored. (The
/// framework's own error answers, 400, 408, 413..., are [`super::HttpApp`]'s.)
const ERROR_STATUSES: [StatusCode; 3] = [
    StatusCode::NOT_FOUND,
    StatusCode::METHOD_NOT_ALLOWED,
    StatusCode::NOT_IMPLEMENTED,
];

/// The prepared responses and the map from paths to them. Shared by all workers (in an `Arc`).
pub struct Content {
    resources: Vec<Resource>,
    /// Fixed mode: the one body served for every path.
    fixed: Option<ResourceId>,
    paths: HashMap<Box<[u8]>, Entry>,
    /// `resources[errors_start + i]` answers `ERROR_STATUSES[i]`.
    errors_start: u32,
}

/// Limits on what [`Content::load_dir`] reads.
#[derive(Clone, Copy, Debug)]
pub struct LoadLimits {
    /// Most regular files. Default 100,000.
    pub max_files: usize,
    /// Most bytes in all files together. Default 1 GiB.
    pub max_total_bytes: u64,
    /// Deepest directory level below the root. Default 32.
    pub max_depth: usize,
}

impl Default for LoadLimits {
    fn default() -> Self {
        LoadLimits {
            max_files: 100_000,
            max_total_bytes: 1 << 30,
            max_depth: 32,
        }
    }
}

/// What [`Content::load_dir`] read and what it left out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Regular files read.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Symbolic links whose target lies outside the root (never served).
    pub skipped_outside_root: usize,
    /// Sockets, FIFOs, devices, dangling links, directories seen twice (link loops) or too deep.
    pub skipped_other: usize,
}

impl Content {
    /// Benchmark mode: `body` with `content_type` for every GET or HEAD of any path.
    pub fn fixed(body: impl Into<Bytes>, content_type: &'static str) -> Content {
        let mut c = Content::empty();
        let id = c.push(Resource {
            status: StatusCode::OK,
            content_type,
            extra_headers: Bytes::new(),
            body: body.into(),
        });
        c.fixed = Some(id);
        c.add_errors();
        c
    }

    /// Directory mode from in-memory files: `(relative path with '/' separators, body)`.
    /// Paths are taken as given (no leading slash; `a/b.html`); empty segments, `.` and `..`
    /// are not allowed and such entries are skipped. [`Content::load_dir`] uses this after
    /// reading the disk; tests use it directly.
    pub fn from_files<P: AsRef<[u8]>>(files: impl IntoIterator<Item = (P, Bytes)>) -> Content {
        let mut c = Content::empty();
        let mut dirs: HashSet<Vec<u8>> = HashSet::new();
        dirs.insert(Vec::new());
        for (path, body) in files {
            let path = path.as_ref();
            if path.is_empty()
                || path
                    .split(|&b| b == b'/')
                    .any(|s| s.is_empty() || s == b"." || s == b"..")
                || path.contains(&0)
            {
                continue;
            }
            let id = c.push(Resource {
                status: StatusCode::OK,
                content_type: mime_type(path),
                extra_headers: Bytes::new(),
                body,
            });
            c.paths.insert(path.into(), Entry::File(id));
            let mut p = path;
            while let Some(slash) = p.iter().rposition(|&b| b == b'/') {
                p = &p[..slash];
                dirs.insert(p.to_vec());
            }
        }
        for dir in dirs {
            // A file and a directory cannot share a name on disk; keep the file if they do.
            if c.paths.contains_key(dir.as_slice()) {
                continue;
            }
            let mut index_path = dir.clone();
            if !index_path.is_empty() {
                index_path.push(b'/');
            }
            index_path.extend_from_slice(b"index.html");
            let index = match c.paths.get(index_path.as_slice()) {
                Some(Entry::File(id)) => Some(*id),
                _ => None,
            };
            let redirect = c.push(redirect_resource(&dir));
            c.paths.insert(dir.into(), Entry::Dir { index, redirect });
        }
        c.add_errors();
        c
    }

    /// STARTUP ONLY (blocking file-system reads): loads every regular file under `root` into
    /// memory. Symbolic links are followed only when their target, canonicalized, lies inside
    /// the canonical root; other links, special files and link loops are skipped (see the
    /// report). Fails if `root` is not a readable directory or a limit is exceeded.
    pub fn load_dir(root: &Path, limits: LoadLimits) -> std::io::Result<(Content, LoadReport)> {
        use std::os::unix::ffi::OsStrExt;

        let root = std::fs::canonicalize(root)?;
        if !std::fs::metadata(&root)?.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} is not a directory", root.display()),
            ));
        }
        let mut report = LoadReport::default();
        let mut files: Vec<(Vec<u8>, Bytes)> = Vec::new();
        let mut visited: HashSet<PathBuf> = HashSet::new();
        visited.insert(root.clone());
        // (directory on disk, its key prefix, depth)
        let mut stack: Vec<(PathBuf, Vec<u8>, usize)> = vec![(root.clone(), Vec::new(), 0)];
        while let Some((dir, prefix, depth)) = stack.pop() {
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let name = entry.file_name();
                let mut key = prefix.clone();
                if !key.is_empty() {
                    key.push(b'/');
                }
                key.extend_from_slice(name.as_bytes());
                // Resolve links; anything that ends up outside the root is never served.
                let Ok(real) = std::fs::canonicalize(entry.path()) else {
                    report.skipped_other += 1;
                    continue;
                };
                if !real.starts_with(&root) {
                    report.skipped_outside_root += 1;
                    continue;
                }
                let meta = std::fs::metadata(&real)?;
                if meta.is_dir() {
                    if depth + 1 > limits.max_depth || !visited.insert(real.clone()) {
                        report.skipped_other += 1;
                        continue;
                    }
                    stack.push((real, key, depth + 1));
                } else if meta.is_file() {
                    report.files += 1;
                    report.bytes += meta.len();
                    if report.files > limits.max_files || report.bytes > limits.max_total_bytes {
                        return Err(std::io::Error::other(format!(
                            "{}: more than {} files or {} bytes",
                            root.display(),
                            limits.max_files,
                            limits.max_total_bytes
                        )));
                    }
                    let body = std::fs::read(&real)?;
                    files.push((key, Bytes::from(body)));
                } else {
                    report.skipped_other += 1;
                }
            }
        }
        Ok((Content::from_files(files), report))
    }

    fn empty() -> Content {
        Content {
            resources: Vec::new(),
            fixed: None,
            paths: HashMap::new(),
            errors_start: 0,
        }
    }

    fn push(&mut self, r: Resource) -> ResourceId {
        self.resources.push(r);
        ResourceId((self.resources.len() - 1) as u32)
    }

    fn add_errors(&mut self) {
        self.errors_start = self.resources.len() as u32;
        for status in ERROR_STATUSES {
            let extra: &'static [u8] = match status {
                // RFC 9110 15.5.6: a 405 carries Allow.
                StatusCode::METHOD_NOT_ALLOWED => b"Allow: GET, HEAD\r\n",
                _ => b"",
            };
            self.push(error_resource(status, Bytes::from_static(extra)));
        }
    }

    /// The response for a GET/HEAD of `path` (normalized: no leading slash, root = empty);
    /// `trailing_slash` tells whether the request's path ended in `/`.
    pub(crate) fn resolve(&self, path: &[u8], trailing_slash: bool) -> ResourceId {
        if let Some(id) = self.fixed {
            return id;
        }
        match self.paths.get(path) {
            Some(Entry::File(id)) if !trailing_slash => *id,
            Some(Entry::Dir { index, redirect }) => {
                if trailing_slash || path.is_empty() {
                    index.unwrap_or_else(|| self.error(StatusCode::NOT_FOUND))
                } else {
                    *redirect
                }
            }
            _ => self.error(StatusCode::NOT_FOUND),
        }
    }

    /// The prepared response for an error status. Statuses without one get the 404.
    pub(crate) fn error(&self, status: StatusCode) -> ResourceId {
        let i = ERROR_STATUSES
            .iter()
            .position(|&s| s == status)
            .unwrap_or(0);
        ResourceId(self.errors_start + i as u32)
    }

    /// `id` must come from this `Content`.
    pub(crate) fn resource(&self, id: ResourceId) -> &Resource {
        &self.resources[id.0 as usize]
    }

    /// Number of resources (ids are `0..len()`).
    pub fn len(&self) -> usize {
        self.resources.len()
    }
    /// True if there is nothing to serve (never: the error pages are always there).
    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }
    /// True in benchmark mode ([`Content::fixed`]).
    pub fn is_fixed(&self) -> bool {
        self.fixed.is_some()
    }
}

/// The static responder as a [`Handler`]: GET and HEAD of [`Content`] (a directory loaded at
/// startup, or one fixed body), 405 with `Allow: GET, HEAD` for the other methods of RFC 9110,
/// 501 for unknown ones. Request bodies are read and dropped. Every response is prepared, so
/// its head is cached ([`Response::cache_head`]): answering is two `Bytes` clones.
pub struct StaticFiles {
    content: Arc<Content>,
}

impl StaticFiles {
    /// A responder over `content` (shared by the workers).
    pub fn new(content: Arc<Content>) -> StaticFiles {
        StaticFiles { content }
    }

    /// What it serves.
    pub fn content(&self) -> &Arc<Content> {
        &self.content
    }

    /// Serves `content` from now on (a reload). Responses already queued keep the old bytes.
    /// Its [`HttpApp`](super::HttpApp) must then forget its cached heads
    /// ([`HttpApp::handler_changed`](super::HttpApp::handler_changed)).
    pub fn replace(&mut self, content: Arc<Content>) {
        self.content = content;
    }
}

impl Handler for StaticFiles {
    fn handle(&mut self, req: &Request<'_>, _now: Instant) -> Response {
        let c = &self.content;
        let id = match req.method() {
            Method::Get | Method::Head => {
                // The framework's path: `/`, then the normalized segments, then `/` for a
                // directory; the lookup key has neither slash.
                let path = req.path();
                let directory = path.ends_with(b"/");
                let key = path.strip_prefix(b"/").unwrap_or(path);
                let key = key.strip_suffix(b"/").unwrap_or(key);
                c.resolve(key, directory)
            }
            // RFC 9110 9.1: an unrecognized method: 501.
            Method::Other(_) => c.error(StatusCode::NOT_IMPLEMENTED),
            // RFC 9110 15.5.6: a method known but not allowed here: 405 with Allow.
            _ => c.error(StatusCode::METHOD_NOT_ALLOWED),
        };
        c.resource(id).response(id.0)
    }

    fn wants_body(&mut self, _req: &Request<'_>) -> bool {
        false
    }

    fn head_cache_slots(&self) -> usize {
        self.content.len()
    }
}

/// An error page: `status` as HTML (the same page for the framework's errors and the static
/// responder's).
pub(crate) fn error_resource(status: StatusCode, extra_headers: Bytes) -> Resource {
    Resource {
        status,
        content_type: "text/html",
        extra_headers,
        body: Bytes::from(format!(
            "<html><head><title>{status}</title></head><body><h1>{status}</h1><hr>synack</body></html>\n"
        )),
    }
}

/// A 301 from `/dir` to `/dir/` (`dir` is a normalized key, not empty).
fn redirect_resource(dir: &[u8]) -> Resource {
    let mut location = String::from("/");
    for &b in dir {
        // RFC 3986 2.3 unreserved, '/' and the sub-delims stay; everything else is encoded.
        if b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&b) {
            location.push(b as char);
        } else {
            location.push_str(&format!("%{b:02X}"));
        }
    }
    location.push('/');
    let body = format!(
        "<html><head><title>301 Moved Permanently</title></head><body><a href=\"{location}\">{location}</a></body></html>\n"
    );
    Resource {
        status: StatusCode::MOVED_PERMANENTLY,
        content_type: "text/html",
        extra_headers: Bytes::from(format!("Location: {location}\r\n")),
        body: Bytes::from(body),
    }
}

/// The media type for a file name, from its extension (ASCII case-insensitive).
pub fn mime_type(name: &[u8]) -> &'static str {
    let file = name.rsplit(|&b| b == b'/').next().unwrap_or(name);
    let Some(dot) = file.iter().rposition(|&b| b == b'.') else {
        return "application/octet-stream";
    };
    let ext = &file[dot + 1..];
    let mut lower = [0u8; 8];
    if ext.len() > lower.len() {
        return "application/octet-stream";
    }
    for (d, s) in lower.iter_mut().zip(ext) {
        *d = s.to_ascii_lowercase();
    }
    match &lower[..ext.len()] {
        b"html" | b"htm" => "text/html; charset=utf-8",
        b"css" => "text/css; charset=utf-8",
        // RFC 9239: text/javascript.
        b"js" | b"mjs" => "text/javascript; charset=utf-8",
        b"json" => "application/json",
        b"txt" => "text/plain; charset=utf-8",
        b"xml" => "application/xml",
        b"svg" => "image/svg+xml",
        b"png" => "image/png",
        b"jpg" | b"jpeg" => "image/jpeg",
        b"gif" => "image/gif",
        b"webp" => "image/webp",
        b"ico" => "image/x-icon",
        b"wasm" => "application/wasm",
        b"pdf" => "application/pdf",
        b"woff" => "font/woff",
        b"woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> Content {
        Content::from_files([
            ("index.html", Bytes::from_static(b"<h1>home</h1>")),
            ("a.css", Bytes::from_static(b"body{}")),
            ("docs/index.html", Bytes::from_static(b"docs")),
            ("docs/guide/x.txt", Bytes::from_static(b"x")),
            ("nodex/y.png", Bytes::from_static(b"png")),
            ("bad/../z", Bytes::from_static(b"never")),
        ])
    }

    #[test]
    fn mime_types_by_extension() {
        for (name, mime) in [
            ("a.html", "text/html; charset=utf-8"),
            ("A.HTM", "text/html; charset=utf-8"),
            ("s.css", "text/css; charset=utf-8"),
            ("m.js", "text/javascript; charset=utf-8"),
            ("m.mjs", "text/javascript; charset=utf-8"),
            ("d.json", "application/json"),
            ("r.txt", "text/plain; charset=utf-8"),
            ("i.svg", "image/svg+xml"),
            ("i.png", "image/png"),
            ("i.jpg", "image/jpeg"),
            ("i.JPEG", "image/jpeg"),
            ("i.gif", "image/gif"),
            ("i.webp", "image/webp"),
            ("favicon.ico", "image/x-icon"),
            ("m.wasm", "application/wasm"),
            ("d.pdf", "application/pdf"),
            ("f.xml", "application/xml"),
            ("f.woff2", "font/woff2"),
            ("noext", "application/octet-stream"),
            ("dir.d/noext", "application/octet-stream"),
            ("x.unknownlongext", "application/octet-stream"),
            ("archive.tar.gz", "application/octet-stream"),
        ] {
            assert_eq!(mime_type(name.as_bytes()), mime, "{name}");
        }
    }

    #[test]
    fn lookup_files_dirs_and_errors() {
        let c = site();
        let body = |id| c.resource(id).body.clone();
        let status = |id| c.resource(id).status;
        assert_eq!(body(c.resolve(b"", true)), "<h1>home</h1>");
        assert_eq!(body(c.resolve(b"a.css", false)), "body{}");
        assert_eq!(
            c.resource(c.resolve(b"a.css", false)).content_type,
            "text/css; charset=utf-8"
        );
        assert_eq!(status(c.resolve(b"a.css", true)), StatusCode::NOT_FOUND);
        assert_eq!(body(c.resolve(b"docs", true)), "docs");
        let r = c.resource(c.resolve(b"docs", false));
        assert_eq!(r.status, StatusCode::MOVED_PERMANENTLY);
        assert_eq!(&*r.extra_headers, b"Location: /docs/\r\n");
        // a directory without index.html
        assert_eq!(status(c.resolve(b"nodex", true)), StatusCode::NOT_FOUND);
        assert_eq!(
            status(c.resolve(b"docs/guide", false)),
            StatusCode::MOVED_PERMANENTLY
        );
        assert_eq!(status(c.resolve(b"missing", false)), StatusCode::NOT_FOUND);
        assert_eq!(status(c.resolve(b"bad/../z", false)), StatusCode::NOT_FOUND);
        assert_eq!(status(c.resolve(b"z", false)), StatusCode::NOT_FOUND);
        let allow = c.resource(c.error(StatusCode::METHOD_NOT_ALLOWED));
        assert_eq!(&*allow.extra_headers, b"Allow: GET, HEAD\r\n");
        for s in ERROR_STATUSES {
            assert_eq!(c.resource(c.error(s)).status, s);
        }
    }

    #[test]
    fn redirect_location_is_encoded() {
        let c = Content::from_files([("my dir/%.txt", Bytes::new())]);
        let r = c.resource(c.resolve(b"my dir", false));
        assert_eq!(&*r.extra_headers, b"Location: /my%20dir/\r\n");
    }

    #[test]
    fn fixed_serves_any_path() {
        let c = Content::fixed(Bytes::from_static(b"hello"), "text/plain");
        assert!(c.is_fixed());
        for p in [&b""[..], b"x", b"a/b/c"] {
            assert_eq!(c.resource(c.resolve(p, false)).body, "hello");
        }
    }

    #[test]
    fn load_dir_reads_files_and_refuses_escaping_links() {
        let base = std::env::temp_dir().join(format!("synack-http-content-{}", std::process::id()));
        struct Cleanup(PathBuf);
        impl Drop for Cleanup {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let _cleanup = Cleanup(base.clone());
        let root = base.join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("index.html"), b"root index").unwrap();
        std::fs::write(root.join("sub/page.json"), b"{}").unwrap();
        std::fs::write(base.join("secret.txt"), b"secret").unwrap();
        std::os::unix::fs::symlink(base.join("secret.txt"), root.join("leak.txt")).unwrap();
        std::os::unix::fs::symlink(&base, root.join("up")).unwrap();
        std::os::unix::fs::symlink(root.join("sub/page.json"), root.join("alias.json")).unwrap();
        std::os::unix::fs::symlink(&root, root.join("sub/loop")).unwrap();

        let (c, report) = Content::load_dir(&root, LoadLimits::default()).unwrap();
        assert_eq!(report.files, 3, "{report:?}");
        assert_eq!(report.skipped_outside_root, 2, "{report:?}");
        assert_eq!(
            report.skipped_other, 1,
            "the loop back to the root: {report:?}"
        );
        assert_eq!(c.resource(c.resolve(b"", true)).body, "root index");
        assert_eq!(c.resource(c.resolve(b"sub/page.json", false)).body, "{}");
        assert_eq!(c.resource(c.resolve(b"alias.json", false)).body, "{}");
        assert_eq!(
            c.resource(c.resolve(b"leak.txt", false)).status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            c.resource(c.resolve(b"up/secret.txt", false)).status,
            StatusCode::NOT_FOUND
        );

        let tight = LoadLimits {
            max_files: 1,
            ..LoadLimits::default()
        };
        assert!(Content::load_dir(&root, tight).is_err());
        assert!(Content::load_dir(&root.join("index.html"), LoadLimits::default()).is_err());
    }
}
