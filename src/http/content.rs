//! What the static responder ([`StaticFiles`](super::StaticFiles), `synack serve`) serves:
//! [`Content`], every response it can give prepared at startup.
//!
//! Two modes:
//! - [`Content::fixed`]: one body for every GET/HEAD of any (valid) path. This is the benchmark
//!   mode (`--body TEXT`): the request's fields are not even looked at.
//! - [`Content::load_dir`]: the files under a directory (`--root DIR`), read into memory once at
//!   startup, answered as nginx answers for static files (RFC 9110): `ETag` (nginx's form) and
//!   `Last-Modified`, conditionals (304, 412), byte ranges (206, `multipart/byteranges`, 416),
//!   precompressed `.gz`/`.br` siblings ([`StaticOptions::precompressed`]), `Cache-Control`.
//!   `/dir/` serves `dir/index.html` (403 without one); `/dir` redirects (301) to `/dir/`,
//!   query kept.
//!
//! Both also hold their error responses. Lookups take a path already percent-decoded and
//! normalized by [`super::request::normalize_path`]: segments joined by `/`, no leading slash,
//! the root being the empty path.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::response::{Resource, Response, StatusCode};

/// Index of a [`Resource`] in a [`Content`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ResourceId(pub(crate) u32);

/// A file: its representation as stored, and its precompressed siblings (indexes in
/// `Content::reps`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct FileRef {
    pub(crate) identity: u32,
    pub(crate) gzip: Option<u32>,
    pub(crate) br: Option<u32>,
}

#[derive(Clone, Copy, Debug)]
enum Entry {
    File(FileRef),
    Dir {
        index: Option<FileRef>,
        redirect: ResourceId,
    },
}

/// One representation of a file (the file itself, or its `.gz`/`.br` sibling sent with
/// `Content-Encoding`) and what its answers need.
#[derive(Debug)]
pub(crate) struct Rep {
    /// 200, head cached.
    pub(crate) ok: ResourceId,
    /// 304, head cached.
    pub(crate) not_modified: ResourceId,
    /// Strong, nginx's form, quotes included.
    pub(crate) etag: Box<[u8]>,
    /// Seconds since the epoch.
    pub(crate) mtime: u64,
    pub(crate) body: Bytes,
    pub(crate) content_type: &'static str,
    /// Header lines of a 206: Last-Modified, ETag, Vary, Cache-Control.
    pub(crate) part_fields: Bytes,
    /// Header lines of a 412 (Vary) and a 416 (Vary, Cache-Control), as nginx sends them.
    pub(crate) failed_fields: Bytes,
    pub(crate) range_fields: Bytes,
    /// Byte ranges are served (not for a compressed sibling: nginx's `gzip_static` ignores
    /// `Range` there and does not send `Accept-Ranges`).
    pub(crate) ranges: bool,
}

/// The error statuses that have a prepared response, in the order they are stored. (The
/// framework's own error answers, 400, 408, 413..., are [`super::HttpApp`]'s.)
const ERROR_STATUSES: [StatusCode; 6] = [
    StatusCode::NOT_FOUND,
    StatusCode::METHOD_NOT_ALLOWED,
    StatusCode::NOT_IMPLEMENTED,
    StatusCode::FORBIDDEN,
    StatusCode::PRECONDITION_FAILED,
    StatusCode::RANGE_NOT_SATISFIABLE,
];

/// The prepared responses and the map from paths to them. Shared by all workers (in an `Arc`).
pub struct Content {
    resources: Vec<Resource>,
    pub(crate) reps: Vec<Rep>,
    /// Fixed mode: the one body served for every path.
    pub(crate) fixed: Option<ResourceId>,
    paths: HashMap<Box<[u8]>, Entry>,
    /// `resources[errors_start + i]` answers `ERROR_STATUSES[i]`.
    errors_start: u32,
}

/// How [`Content::load_dir`] and [`Content::from_files_with`] answer for files.
#[derive(Clone, Debug, Default)]
pub struct StaticOptions {
    /// Serve `NAME.gz` and `NAME.br`, when they exist, for `NAME` to clients whose
    /// `Accept-Encoding` takes `gzip` or `br` (q-values honoured; `br` first on a tie), with
    /// `Content-Encoding`; every answer for such a file carries `Vary: Accept-Encoding`
    /// (nginx's `gzip_static on; gzip_vary on;`, `br` added).
    pub precompressed: bool,
    /// A `Cache-Control` value added to file answers (200, 206, 304, 416) and directory
    /// redirects, where nginx's `add_header` puts it. A value with control characters is
    /// ignored.
    pub cache_control: Option<String>,
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

    /// Directory mode from in-memory files, `(relative path with '/' separators, body)`, all
    /// modified at the epoch, with the default [`StaticOptions`]. See
    /// [`from_files_with`](Self::from_files_with).
    pub fn from_files<P: AsRef<[u8]>>(files: impl IntoIterator<Item = (P, Bytes)>) -> Content {
        Content::from_files_with(
            files.into_iter().map(|(p, b)| (p, b, 0)),
            &StaticOptions::default(),
        )
    }

    /// Directory mode from in-memory files: `(relative path with '/' separators, body,
    /// modification time in seconds since the epoch)`. Paths are taken as given (no leading
    /// slash; `a/b.html`); empty segments, `.` and `..` are not allowed and such entries are
    /// skipped. [`Content::load_dir`] uses this after reading the disk; tests use it directly.
    pub fn from_files_with<P: AsRef<[u8]>>(
        files: impl IntoIterator<Item = (P, Bytes, u64)>,
        options: &StaticOptions,
    ) -> Content {
        let mut c = Content::empty();
        let cache_control = match &options.cache_control {
            Some(v) if v.bytes().all(|b| b == b'\t' || (b >= b' ' && b != 0x7f)) => {
                format!("Cache-Control: {v}\r\n")
            }
            _ => String::new(),
        };
        let mut dirs: HashSet<Vec<u8>> = HashSet::new();
        dirs.insert(Vec::new());
        let mut all: HashMap<Vec<u8>, (Bytes, u64)> = HashMap::new();
        for (path, body, mtime) in files {
            let path = path.as_ref();
            if path.is_empty()
                || path
                    .split(|&b| b == b'/')
                    .any(|s| s.is_empty() || s == b"." || s == b"..")
                || path.contains(&0)
            {
                continue;
            }
            all.insert(path.to_vec(), (body, mtime));
            let mut p = path;
            while let Some(slash) = p.iter().rposition(|&b| b == b'/') {
                p = &p[..slash];
                dirs.insert(p.to_vec());
            }
        }
        for (path, (body, mtime)) in &all {
            let sibling = |ext: &[u8]| {
                let mut name = path.clone();
                name.extend_from_slice(ext);
                all.get(&name).filter(|_| options.precompressed)
            };
            let (gz, br) = (sibling(b".gz"), sibling(b".br"));
            let vary = gz.is_some() || br.is_some();
            let content_type = mime_type(path);
            let identity = c.push_rep(body, *mtime, content_type, None, vary, &cache_control);
            let gzip = gz
                .map(|(b, m)| c.push_rep(b, *m, content_type, Some("gzip"), vary, &cache_control));
            let br =
                br.map(|(b, m)| c.push_rep(b, *m, content_type, Some("br"), vary, &cache_control));
            c.paths.insert(
                path.as_slice().into(),
                Entry::File(FileRef { identity, gzip, br }),
            );
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
                Some(Entry::File(f)) => Some(*f),
                _ => None,
            };
            let redirect = c.push(redirect_resource(&dir, &cache_control));
            c.paths.insert(dir.into(), Entry::Dir { index, redirect });
        }
        c.add_errors();
        c
    }

    /// STARTUP ONLY (blocking file-system reads): loads every regular file under `root` into
    /// memory, with its modification time. Symbolic links are followed only when their
    /// target, canonicalized, lies inside the canonical root; other links, special files and
    /// link loops are skipped (see the report). Fails if `root` is not a readable directory or
    /// a limit is exceeded.
    pub fn load_dir(
        root: &Path,
        limits: LoadLimits,
        options: &StaticOptions,
    ) -> std::io::Result<(Content, LoadReport)> {
        use std::os::unix::ffi::OsStrExt;

        let root = std::fs::canonicalize(root)?;
        if !std::fs::metadata(&root)?.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} is not a directory", root.display()),
            ));
        }
        let mut report = LoadReport::default();
        let mut files: Vec<(Vec<u8>, Bytes, u64)> = Vec::new();
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
                    let mtime = meta
                        .modified()
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map_or(0, |d| d.as_secs());
                    let body = std::fs::read(&real)?;
                    files.push((key, Bytes::from(body), mtime));
                } else {
                    report.skipped_other += 1;
                }
            }
        }
        Ok((Content::from_files_with(files, options), report))
    }

    fn empty() -> Content {
        Content {
            resources: Vec::new(),
            reps: Vec::new(),
            fixed: None,
            paths: HashMap::new(),
            errors_start: 0,
        }
    }

    fn push(&mut self, r: Resource) -> ResourceId {
        self.resources.push(r);
        ResourceId((self.resources.len() - 1) as u32)
    }

    /// Prepares the answers of one representation; returns its index in `reps`.
    fn push_rep(
        &mut self,
        body: &Bytes,
        mtime: u64,
        content_type: &'static str,
        encoding: Option<&str>,
        vary: bool,
        cache_control: &str,
    ) -> u32 {
        let etag = super::static_files::etag(mtime, body.len() as u64);
        let last_modified = super::response::imf_fixdate(mtime);
        let last_modified = std::str::from_utf8(&last_modified).unwrap_or_default();
        let vary = if vary {
            "Vary: Accept-Encoding\r\n"
        } else {
            ""
        };
        let validators = format!("Last-Modified: {last_modified}\r\nETag: {etag}\r\n");
        let ranges = encoding.is_none();
        let mut ok_fields = validators.clone();
        if let Some(e) = encoding {
            ok_fields.push_str(&format!("Content-Encoding: {e}\r\n"));
        }
        ok_fields.push_str(vary);
        if ranges {
            ok_fields.push_str("Accept-Ranges: bytes\r\n");
        }
        ok_fields.push_str(cache_control);
        let ok = self.push(Resource {
            status: StatusCode::OK,
            content_type,
            extra_headers: Bytes::from(ok_fields),
            body: body.clone(),
        });
        // nginx's 304 drops Content-Type, Accept-Ranges and Content-Encoding.
        let part_fields = format!("{validators}{vary}{cache_control}");
        let not_modified = self.push(Resource {
            status: StatusCode::NOT_MODIFIED,
            content_type: "",
            extra_headers: Bytes::from(part_fields.clone()),
            body: Bytes::new(),
        });
        self.reps.push(Rep {
            ok,
            not_modified,
            etag: etag.into_bytes().into(),
            mtime,
            body: body.clone(),
            content_type,
            part_fields: Bytes::from(part_fields),
            failed_fields: Bytes::from_static(vary.as_bytes()),
            range_fields: Bytes::from(format!("{vary}{cache_control}")),
            ranges,
        });
        (self.reps.len() - 1) as u32
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

    /// The prepared 200 (or error, or redirect) response for a GET/HEAD of `path`
    /// (normalized: no leading slash, root = empty) without conditionals, ranges or encodings;
    /// `trailing_slash` tells whether the request's path ended in `/`.
    #[cfg(test)]
    pub(crate) fn resolve(&self, path: &[u8], trailing_slash: bool) -> ResourceId {
        if let Some(id) = self.fixed {
            return id;
        }
        match self.lookup(path, trailing_slash) {
            Ok(f) => self.reps[f.identity as usize].ok,
            Err(id) => id,
        }
    }

    /// The file a GET/HEAD of `path` names, or the prepared answer (redirect, 403, 404).
    pub(crate) fn lookup(&self, path: &[u8], trailing_slash: bool) -> Result<FileRef, ResourceId> {
        match self.paths.get(path) {
            Some(Entry::File(f)) if !trailing_slash => Ok(*f),
            Some(Entry::Dir { index, redirect }) => {
                if trailing_slash || path.is_empty() {
                    // nginx: a directory without an index is forbidden (no listing).
                    index.ok_or_else(|| self.error(StatusCode::FORBIDDEN))
                } else {
                    Err(*redirect)
                }
            }
            _ => Err(self.error(StatusCode::NOT_FOUND)),
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

    pub(crate) fn answer(&self, id: ResourceId) -> Response {
        self.resource(id).response(id.0)
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

/// A 301 from `/dir` to `/dir/` (`dir` is a normalized key, not empty), with
/// `cache_control` (a field line or nothing) after `Location`.
fn redirect_resource(dir: &[u8], cache_control: &str) -> Resource {
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
        extra_headers: Bytes::from(format!("Location: {location}\r\n{cache_control}")),
        body: Bytes::from(body),
    }
}

/// The media type for a file name, from its extension (ASCII case-insensitive): the
/// `mime_guess` crate's table (the IANA registrations and the common unregistered types:
/// `.mp4` is `video/mp4`, `.mp3` `audio/mpeg`), `application/octet-stream` for unknown
/// extensions. The text types a site is made of say `charset=utf-8`.
pub fn mime_type(name: &[u8]) -> &'static str {
    let file = name.rsplit(|&b| b == b'/').next().unwrap_or(name);
    let Some(dot) = file.iter().rposition(|&b| b == b'.') else {
        return "application/octet-stream";
    };
    let Ok(ext) = std::str::from_utf8(&file[dot + 1..]) else {
        return "application/octet-stream";
    };
    let Some(mime) = mime_guess::from_ext(ext).first_raw() else {
        return "application/octet-stream";
    };
    match mime {
        "text/html" => "text/html; charset=utf-8",
        "text/css" => "text/css; charset=utf-8",
        // RFC 9239: text/javascript.
        "text/javascript" | "application/javascript" => "text/javascript; charset=utf-8",
        "text/plain" => "text/plain; charset=utf-8",
        m => m,
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
            ("v.mp4", "video/mp4"),
            ("a.mp3", "audio/mpeg"),
            ("v.webm", "video/webm"),
            ("i.png", "image/png"),
            ("i.jpg", "image/jpeg"),
            ("i.JPEG", "image/jpeg"),
            ("i.gif", "image/gif"),
            ("i.webp", "image/webp"),
            ("favicon.ico", "image/x-icon"),
            ("m.wasm", "application/wasm"),
            ("d.pdf", "application/pdf"),
            ("f.xml", "text/xml"),
            ("f.woff2", "font/woff2"),
            ("noext", "application/octet-stream"),
            ("dir.d/noext", "application/octet-stream"),
            ("x.unknownlongext", "application/octet-stream"),
            ("archive.tar.gz", "application/gzip"),
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
        // a directory without index.html (nginx: 403)
        assert_eq!(status(c.resolve(b"nodex", true)), StatusCode::FORBIDDEN);
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

        let (c, report) =
            Content::load_dir(&root, LoadLimits::default(), &StaticOptions::default()).unwrap();
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
        assert!(Content::load_dir(&root, tight, &StaticOptions::default()).is_err());
        assert!(
            Content::load_dir(
                &root.join("index.html"),
                LoadLimits::default(),
                &StaticOptions::default()
            )
            .is_err()
        );
    }
}
