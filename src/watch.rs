//! `synack serve --watch`: reload `--root` when it changes on disk, as SIGHUP does.
//!
//! inotify watches the root and every directory under it (inotify is not recursive). Events
//! are gathered until the tree has been quiet for [`SETTLE`], so that a deploy that writes many
//! files reloads once, after its last write; then the reload runs and the watches are renewed
//! (new directories join, removed ones dropped by the kernel). The thread polls with a timeout
//! so that it sees the stop flag; it never touches the datapath.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Quiet time after the last event before the reload.
const SETTLE: Duration = Duration::from_millis(200);

/// How deep directories are watched (the content loader's own limit is the same order).
const MAX_DEPTH: usize = 32;

/// Most directories watched (the kernel's default `max_user_watches` is far above this).
const MAX_WATCHES: usize = 10_000;

const MASK: u32 = libc::IN_CLOSE_WRITE
    | libc::IN_CREATE
    | libc::IN_DELETE
    | libc::IN_MOVED_FROM
    | libc::IN_MOVED_TO
    | libc::IN_ATTRIB
    | libc::IN_DELETE_SELF
    | libc::IN_MOVE_SELF
    | libc::IN_ONLYDIR;

/// The watching thread: calls `reload` after each settled burst of changes under `root`,
/// until `stop` is set.
pub(crate) fn spawn(
    root: PathBuf,
    stop: Arc<AtomicBool>,
    reload: impl Fn() + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let fd = inotify()?;
    add_watches(&fd, &root);
    std::thread::Builder::new()
        .name("synack-watch".into())
        .spawn(move || run(fd, root, stop, reload))
}

fn run(fd: OwnedFd, root: PathBuf, stop: Arc<AtomicBool>, reload: impl Fn()) {
    let mut buf = [0u8; 16 * 1024];
    let mut pending: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        let timeout = match pending {
            Some(last) => SETTLE.saturating_sub(last.elapsed()),
            None => Duration::from_millis(250),
        };
        if readable(&fd, timeout) {
            // Drain what is there; what the events name does not matter, only that the tree
            // changed.
            #[allow(unsafe_code)]
            // SAFETY: `buf` is valid for writes of its length; `fd` is an open inotify fd.
            let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n > 0 {
                pending = Some(Instant::now());
            }
            continue;
        }
        if let Some(last) = pending
            && last.elapsed() >= SETTLE
        {
            pending = None;
            reload();
            add_watches(&fd, &root);
        }
    }
}

fn inotify() -> std::io::Result<OwnedFd> {
    #[allow(unsafe_code)]
    // SAFETY: no pointers; the result is checked.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    #[allow(unsafe_code)]
    // SAFETY: `fd` was just opened and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Watches `root` and the directories under it (not following symbolic links). Adding a watch
/// on a directory already watched only renews it.
fn add_watches(fd: &OwnedFd, root: &Path) {
    let mut stack = vec![(root.to_path_buf(), 0usize)];
    let mut count = 0;
    while let Some((dir, depth)) = stack.pop() {
        if count >= MAX_WATCHES {
            log::warn!(
                "synack: --watch: more than {MAX_WATCHES} directories under {}; the rest are not watched",
                root.display()
            );
            return;
        }
        let Ok(c) = CString::new(dir.as_os_str().as_bytes()) else {
            continue;
        };
        #[allow(unsafe_code)]
        // SAFETY: `c` is a NUL-terminated path that outlives the call.
        let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), MASK) };
        if wd < 0 {
            if dir == root {
                log::warn!(
                    "synack: --watch: cannot watch {}: {}",
                    dir.display(),
                    std::io::Error::last_os_error()
                );
            }
            continue;
        }
        count += 1;
        if depth >= MAX_DEPTH {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push((e.path(), depth + 1));
            }
        }
    }
}

/// Waits up to `timeout` for `fd` to be readable.
fn readable(fd: &OwnedFd, timeout: Duration) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    #[allow(unsafe_code)]
    // SAFETY: `p` is one valid pollfd for the duration of the call.
    let n = unsafe { libc::poll(&mut p, 1, ms) };
    n > 0 && p.revents & libc::POLLIN != 0
}
