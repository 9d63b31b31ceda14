//! The kernel's AF_XDP interface (linux/if_xdp.h) and the few syscalls synack makes: socket,
//! setsockopt/getsockopt, mmap, bind, sendto/recvfrom/poll for wake-ups, setns. Every `unsafe`
//! block of the datapath set-up is here, each with its `// SAFETY:` reasoning.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;

pub const AF_XDP: libc::c_int = 44;
pub const SOL_XDP: libc::c_int = 283;

pub const XDP_MMAP_OFFSETS: libc::c_int = 1;
pub const XDP_RX_RING: libc::c_int = 2;
pub const XDP_TX_RING: libc::c_int = 3;
pub const XDP_UMEM_REG: libc::c_int = 4;
pub const XDP_UMEM_FILL_RING: libc::c_int = 5;
pub const XDP_UMEM_COMPLETION_RING: libc::c_int = 6;
pub const XDP_STATISTICS: libc::c_int = 7;
pub const XDP_OPTIONS: libc::c_int = 8;
pub const XDP_OPTIONS_ZEROCOPY: u32 = 1;

pub const XDP_COPY: u16 = 1 << 1;
pub const XDP_ZEROCOPY: u16 = 1 << 2;
pub const XDP_USE_NEED_WAKEUP: u16 = 1 << 3;
pub const XDP_RING_NEED_WAKEUP: u32 = 1 << 0;

pub const XDP_PGOFF_RX_RING: libc::off_t = 0;
pub const XDP_PGOFF_TX_RING: libc::off_t = 0x8000_0000;
pub const XDP_UMEM_PGOFF_FILL_RING: libc::off_t = 0x1_0000_0000;
pub const XDP_UMEM_PGOFF_COMPLETION_RING: libc::off_t = 0x1_8000_0000;

pub const SO_BUSY_POLL: libc::c_int = 46;
pub const SO_PREFER_BUSY_POLL: libc::c_int = 69;
pub const SO_BUSY_POLL_BUDGET: libc::c_int = 70;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SockaddrXdp {
    pub family: u16,
    pub flags: u16,
    pub ifindex: u32,
    pub queue_id: u32,
    pub shared_umem_fd: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct RingOffset {
    pub producer: u64,
    pub consumer: u64,
    pub desc: u64,
    pub flags: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MmapOffsets {
    pub rx: RingOffset,
    pub tx: RingOffset,
    pub fr: RingOffset,
    pub cr: RingOffset,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct UmemReg {
    pub addr: u64,
    pub len: u64,
    pub chunk_size: u32,
    pub headroom: u32,
    pub flags: u32,
    pub tx_metadata_len: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct XdpStatistics {
    pub rx_dropped: u64,
    pub rx_invalid_descs: u64,
    pub tx_invalid_descs: u64,
    pub rx_ring_full: u64,
    pub rx_fill_ring_empty_descs: u64,
    pub tx_ring_empty_descs: u64,
}

/// An RX or TX descriptor: a frame's UMEM address and length.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpDesc {
    pub addr: u64,
    pub len: u32,
    pub options: u32,
}

/// A memory mapping, unmapped on drop.
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a Mapping is plain memory owned by one value; the datapath's ring and UMEM types
// enforce who writes where.
unsafe impl Send for Mapping {}

// SAFETY: `&Mapping` only hands out the base pointer and length; reads and writes through it
// are made by the ring and UMEM types, which use atomics for shared indexes and frame ownership
// for frame contents.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Private anonymous memory, zeroed, populated up front (no page faults on the datapath).
    pub fn anonymous(len: usize) -> io::Result<Mapping> {
        // SAFETY: a fresh anonymous mapping; no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        Self::from_result(p, len)
    }

    /// Maps one of a socket's rings.
    pub fn ring(fd: RawFd, len: usize, offset: libc::off_t) -> io::Result<Mapping> {
        // SAFETY: maps kernel-shared ring memory of the socket `fd` at the documented offset;
        // the kernel validates `len` and `offset`.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                offset,
            )
        };
        Self::from_result(p, len)
    }

    fn from_result(p: *mut libc::c_void, len: usize) -> io::Result<Mapping> {
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        NonNull::new(p as *mut u8)
            .map(|ptr| Mapping { ptr, len })
            .ok_or_else(|| io::Error::other("mmap returned null"))
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
    pub fn len(&self) -> usize {
        self.len
    }
    #[cfg(any(test, feature = "internals"))]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len came from a successful mmap and are unmapped once.
        unsafe {
            libc::munmap(self.ptr.as_ptr() as *mut libc::c_void, self.len);
        }
    }
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0).
pub fn xdp_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket(2) takes no pointers; a non-negative result is a new fd we own.
    let fd = check(unsafe { libc::socket(AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` was just returned by socket(2) and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// setsockopt with a plain-data value.
pub fn setsockopt<T: Copy>(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` points to a live T of size_of::<T>() bytes for the duration of the call.
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            value as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// getsockopt into a plain-data value (zero-initialized first).
pub fn getsockopt<T: Copy + Default>(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<T> {
    let mut v = T::default();
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `v` is a valid, writable T and `len` says how large it is; the kernel writes at
    // most `len` bytes.
    check(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            &mut v as *mut T as *mut libc::c_void,
            &mut len,
        )
    })?;
    Ok(v)
}

pub fn bind(fd: &OwnedFd, addr: &SockaddrXdp) -> io::Result<()> {
    // SAFETY: `addr` is a valid sockaddr_xdp for the duration of the call.
    check(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            addr as *const SockaddrXdp as *const libc::sockaddr,
            std::mem::size_of::<SockaddrXdp>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// Tells the kernel to process the TX ring (copy mode, or need_wakeup set).
/// EAGAIN/EBUSY/ENOBUFS mean "try again later" and are not errors.
pub fn kick_tx(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: a zero-length sendto with null buffer and address is how AF_XDP is kicked.
    let rc = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            std::ptr::null(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null(),
            0,
        )
    };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EBUSY) | Some(libc::ENOBUFS) | Some(libc::ENETDOWN) => {
                Ok(())
            }
            _ => Err(e),
        };
    }
    Ok(())
}

/// Wakes the kernel to refill from the fill ring / drive RX (need_wakeup, busy polling).
pub fn wake_rx(fd: &OwnedFd) {
    // SAFETY: a zero-length recvfrom with null pointers only triggers the socket's poll path.
    unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            std::ptr::null_mut(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        );
    }
}

/// Waits until the socket is readable or `timeout_ms` passes.
pub fn poll_readable(fd: &OwnedFd, timeout_ms: i32) {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `p` is one valid pollfd.
    unsafe {
        libc::poll(&mut p, 1, timeout_ms);
    }
}

/// Whether this kernel has AF_XDP sockets (opens and closes one).
pub fn af_xdp_available() -> Result<(), String> {
    match xdp_socket() {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => Err(
            "this kernel has no AF_XDP sockets (CONFIG_XDP_SOCKETS is off): use a kernel built with it".into(),
        ),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) => Err(
            "AF_XDP sockets need CAP_NET_RAW: run as root or grant the capabilities `synack check` lists".into(),
        ),
        Err(e) => Err(format!("cannot create an AF_XDP socket: {e}")),
    }
}

/// Moves the calling thread into the network namespace at `path` (e.g.
/// /var/run/netns/NAME). For tests that drive test hosts from one process.
#[cfg(any(test, feature = "internals"))]
pub fn enter_netns(path: &std::path::Path) -> io::Result<()> {
    let f = std::fs::File::open(path)?;
    // SAFETY: setns(2) with a valid namespace fd; it affects only the calling thread.
    check(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) })?;
    Ok(())
}

/// True if the process runs as root (uid 0).
#[cfg(any(test, feature = "internals"))]
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail and takes no arguments.
    unsafe { libc::geteuid() == 0 }
}

/// RLIMIT_MEMLOCK of this process: (soft, hard) in bytes; `u64::MAX` is unlimited.
pub fn memlock_limit() -> io::Result<(u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) writes one rlimit into `r`, which lives for the call.
    check(unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) })?;
    Ok((r.rlim_cur, r.rlim_max))
}

/// Sets RLIMIT_MEMLOCK (bytes; `u64::MAX` is unlimited). Raising the hard limit needs
/// CAP_SYS_RESOURCE.
pub fn set_memlock_limit(soft: u64, hard: u64) -> io::Result<()> {
    // RLIM_INFINITY is all ones, as u64::MAX.
    let r = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit(2) reads one rlimit from `r`, which lives for the call.
    check(unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &r) })?;
    Ok(())
}
