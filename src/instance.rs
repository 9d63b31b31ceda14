//! One synack per interface: the pid file `/run/synack/IFACE.pid` written once the XDP program
//! is attached and removed at exit, and, when an interface already carries an XDP program, the
//! process that holds it: found through `/proc/*/fdinfo` (a bpf_link or program fd with the
//! attached program's id), else through the pid file.

use std::path::{Path, PathBuf};

use crate::netdev::NetDev;

/// Where pid files live (systemd's `RuntimeDirectory=synack` makes it).
const RUN_DIR: &str = "/run/synack";

fn pid_path(iface: &str) -> PathBuf {
    Path::new(RUN_DIR).join(format!("{iface}.pid"))
}

/// The pid file of a running server; removed in `Drop` (if it still names this process).
pub(crate) struct PidFile {
    path: PathBuf,
}

impl PidFile {
    /// Writes this process's PID to `/run/synack/IFACE.pid`. `None` with a note if it cannot
    /// (an unprivileged user without the run directory): a second synack still finds this one
    /// through /proc where it may read it.
    pub fn create(iface: &str) -> Option<PidFile> {
        let path = pid_path(iface);
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(RUN_DIR)?;
            // Written whole under another name, then renamed: a reader never sees half a PID.
            let tmp = path.with_extension(format!("pid.{}", std::process::id()));
            std::fs::write(&tmp, format!("{}\n", std::process::id()))?;
            std::fs::rename(&tmp, &path).inspect_err(|_| {
                let _ = std::fs::remove_file(&tmp);
            })
        };
        match write() {
            Ok(()) => Some(PidFile { path }),
            Err(e) => {
                eprintln!(
                    "synack: note: no pid file {} ({e}); create {RUN_DIR} writable for this user \
                     (systemd: RuntimeDirectory=synack)",
                    path.display()
                );
                None
            }
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if read_pid(&self.path) == Some(std::process::id()) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The process holding the XDP program attached to an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner {
    pub pid: u32,
    /// Its command name (/proc/PID/comm).
    pub comm: String,
    /// How it was found.
    pub how: String,
}

/// The id in `prog/xdp id 42 ...` (`ip -d link show`) or `xdp/id:42`.
fn prog_id(attached: &str) -> Option<u32> {
    let rest = attached
        .split_once(" id ")
        .map(|(_, r)| r)
        .or_else(|| attached.split_once("/id:").map(|(_, r)| r))?;
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Whether an fdinfo text is a bpf_link or program fd of program `id`.
fn fdinfo_holds(text: &str, id: u32) -> bool {
    text.lines().any(|l| {
        l.strip_prefix("prog_id:")
            .is_some_and(|v| v.trim().parse() == Ok(id))
    })
}

/// A process with an fd on program `id`, from /proc/*/fdinfo (readable for our own user's
/// processes, or all with root).
fn holder_of(id: u32) -> Option<u32> {
    let me = std::process::id();
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(e.path().join("fdinfo")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(text) = std::fs::read_to_string(fd.path())
                && fdinfo_holds(&text, id)
            {
                return Some(pid);
            }
        }
    }
    None
}

/// Who holds the XDP program `attached` (as [`NetDev::attached_xdp`] describes it) on `dev`.
pub(crate) fn owner(dev: &NetDev, attached: &str) -> Option<Owner> {
    if let Some(id) = prog_id(attached)
        && let Some(pid) = holder_of(id)
    {
        return Some(Owner {
            pid,
            comm: comm(pid).unwrap_or_else(|| "?".into()),
            how: format!("it holds XDP program {id}"),
        });
    }
    let path = pid_path(&dev.name);
    let pid = read_pid(&path)?;
    let comm = comm(pid)?; // gone: a stale pid file
    Some(Owner {
        pid,
        comm,
        how: format!("pid file {}", path.display()),
    })
}

/// The refusal when `dev` already carries an XDP program: who holds it and what to do.
pub(crate) fn busy_message(dev: &NetDev, attached: &str) -> String {
    let iface = &dev.name;
    match owner(dev, attached) {
        Some(o) => format!(
            "{iface} is already served by {} (PID {}; {}): stop it first (`kill {}`; under \
             systemd `systemctl stop synack`), or serve another interface",
            o.comm, o.pid, o.how, o.pid
        ),
        None => format!(
            "{attached} is already attached to {iface}: detach it with `ip link set dev {iface} \
             xdp off`, or serve another interface"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_ids_and_fdinfo_parse() {
        assert_eq!(
            prog_id("prog/xdp id 42 name steer tag 0123456789abcdef jited"),
            Some(42)
        );
        assert_eq!(prog_id("xdpgeneric/id:7"), Some(7));
        assert_eq!(prog_id("an XDP program"), None);
        let link = "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t1057\nlink_type:\txdp\n\
                    link_id:\t3\nprog_tag:\t0123456789abcdef\nprog_id:\t42\nifindex:\t5\n";
        assert!(fdinfo_holds(link, 42));
        assert!(!fdinfo_holds(link, 4));
        assert!(!fdinfo_holds("pos:\t0\nflags:\t02\n", 42));
    }

    #[test]
    fn pid_file_names_this_process_and_goes_away() {
        // Writing /run/synack needs a writable /run; skip where it is not.
        let iface = format!("opt{}", std::process::id());
        let Some(f) = PidFile::create(&iface) else {
            return;
        };
        assert_eq!(read_pid(&pid_path(&iface)), Some(std::process::id()));
        drop(f);
        assert!(!pid_path(&iface).exists());
    }
}
