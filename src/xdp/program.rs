//! Loads bpf/steer.bpf.c (compiled by build.rs, embedded here) with aya, configures it, and
//! attaches it through a `bpf_link`, so that it detaches by itself when the process dies,
//! even by SIGKILL.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;

use aya::Ebpf;
#[cfg(any(test, feature = "internals"))]
use aya::maps::PerCpuArray;
use aya::maps::{Array, HashMap, XskMap};
use aya::programs::{Xdp, XdpMode as AyaMode};

use super::{XdpError, XdpMode};

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/steer.bpf.o"));

/// Config map layout (bpf/steer.bpf.c).
const CFG_NADDR4: u32 = 0;
const CFG_ADDR4: u32 = 1;
const CFG_NPORTS: u32 = 2;
const CFG_PORT0: u32 = 3;
pub const MAX_PORTS: usize = 8;
/// Entries of the program's address maps (`addrs4`, `addrs6`), each.
pub const MAX_ADDRS: usize = 1024;
/// Where the peer ports start in the config map (after the served ports).
const CFG_NPEER: u32 = CFG_PORT0 + MAX_PORTS as u32;
const CFG_PEER0: u32 = CFG_NPEER + 1;

/// The XDP program's per-CPU counters, summed.
#[cfg(any(test, feature = "internals"))]
#[derive(Clone, Copy, Debug, Default)]
pub struct ProgramCounters {
    pub steered: u64,
    pub passed: u64,
    pub malformed: u64,
    pub no_socket: u64,
    /// ICMP "fragmentation needed" / ICMPv6 "packet too big" about our connections.
    pub icmp_steered: u64,
}

pub struct Program {
    ebpf: Ebpf,
    /// The interface it is attached to (for diagnostics and tests).
    #[cfg_attr(not(any(test, feature = "internals")), allow(dead_code))]
    iface: String,
    mode: &'static str,
    warning: Option<String>,
    attached: bool,
}

fn attach_error(iface: &str, e: aya::programs::ProgramError) -> XdpError {
    use aya::programs::ProgramError;
    let io = match &e {
        ProgramError::SyscallError(s) => s.io_error.raw_os_error(),
        _ => None,
    };
    match io {
        Some(libc::EPERM) | Some(libc::EACCES) => XdpError::Privileges,
        Some(libc::EBUSY) | Some(libc::EEXIST) => XdpError::Attach {
            iface: iface.to_string(),
            reason: format!(
                "another XDP program is attached to {iface}: detach it with `ip link set dev {iface} xdp off`"
            ),
        },
        _ => XdpError::Attach {
            iface: iface.to_string(),
            reason: format!(
                "{e}{}",
                match &e {
                    ProgramError::SyscallError(s) => format!(": {}", s.io_error),
                    _ => String::new(),
                }
            ),
        },
    }
}

/// An error and its sources, "a: b: c".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl Program {
    /// Loads the program, sets the addresses (either family) and ports, and attaches it to
    /// `iface`.
    pub fn load_and_attach(
        iface: &str,
        addrs: &[IpAddr],
        ports: &[u16],
        mode: XdpMode,
    ) -> Result<Program, XdpError> {
        Program::load_and_attach_with_peers(iface, addrs, ports, &[], mode)
    }

    /// As [`load_and_attach`](Self::load_and_attach), also steering TCP to our addresses
    /// from `peer_ports`: the replies to the connections we open (to servers on those ports).
    pub fn load_and_attach_with_peers(
        iface: &str,
        addrs: &[IpAddr],
        ports: &[u16],
        peer_ports: &[u16],
        mode: XdpMode,
    ) -> Result<Program, XdpError> {
        if ports.len() > MAX_PORTS
            || peer_ports.len() > MAX_PORTS
            || (ports.is_empty() && peer_ports.is_empty())
        {
            return Err(XdpError::Config(format!(
                "serve 1 to {MAX_PORTS} ports (or connect to 1 to {MAX_PORTS})"
            )));
        }
        let v4: Vec<Ipv4Addr> = addrs
            .iter()
            .filter_map(|a| match a {
                IpAddr::V4(a) => Some(*a),
                IpAddr::V6(_) => None,
            })
            .collect();
        let v6: Vec<[u8; 16]> = addrs
            .iter()
            .filter_map(|a| match a {
                IpAddr::V6(a) => Some(a.octets()),
                IpAddr::V4(_) => None,
            })
            .collect();
        if addrs.is_empty() || v4.len() > MAX_ADDRS || v6.len() > MAX_ADDRS {
            return Err(XdpError::Config(format!(
                "serve 1 to {MAX_ADDRS} addresses of each family"
            )));
        }
        let mut ebpf = Ebpf::load(OBJECT).map_err(|e| {
            // The cause (e.g. EPERM creating a map) is in the source chain, not the message.
            let text = error_chain(&e);
            if text.contains("Operation not permitted") || text.contains("EPERM") {
                XdpError::Privileges
            } else {
                XdpError::Load(text)
            }
        })?;
        {
            let mut cfg: Array<_, u32> = Array::try_from(
                ebpf.map_mut("config")
                    .ok_or_else(|| XdpError::Load("no config map".into()))?,
            )
            .map_err(|e| XdpError::Load(e.to_string()))?;
            // The program compares against the address as it sits in the packet (network order).
            cfg.set(CFG_NADDR4, v4.len() as u32, 0)
                .map_err(|e| XdpError::Load(e.to_string()))?;
            if let [one] = v4[..] {
                cfg.set(CFG_ADDR4, u32::from_ne_bytes(one.octets()), 0)
                    .map_err(|e| XdpError::Load(e.to_string()))?;
            }
            cfg.set(CFG_NPORTS, ports.len() as u32, 0)
                .map_err(|e| XdpError::Load(e.to_string()))?;
            for (i, p) in ports.iter().enumerate() {
                cfg.set(CFG_PORT0 + i as u32, *p as u32, 0)
                    .map_err(|e| XdpError::Load(e.to_string()))?;
            }
            cfg.set(CFG_NPEER, peer_ports.len() as u32, 0)
                .map_err(|e| XdpError::Load(e.to_string()))?;
            for (i, p) in peer_ports.iter().enumerate() {
                cfg.set(CFG_PEER0 + i as u32, *p as u32, 0)
                    .map_err(|e| XdpError::Load(e.to_string()))?;
            }
        }
        {
            let mut map: HashMap<_, u32, u8> = HashMap::try_from(
                ebpf.map_mut("addrs4")
                    .ok_or_else(|| XdpError::Load("no addrs4 map".into()))?,
            )
            .map_err(|e| XdpError::Load(e.to_string()))?;
            for a in &v4 {
                map.insert(u32::from_ne_bytes(a.octets()), 1, 0)
                    .map_err(|e| XdpError::Load(format!("addrs4: {e}")))?;
            }
        }
        {
            let mut map: HashMap<_, [u8; 16], u8> = HashMap::try_from(
                ebpf.map_mut("addrs6")
                    .ok_or_else(|| XdpError::Load("no addrs6 map".into()))?,
            )
            .map_err(|e| XdpError::Load(e.to_string()))?;
            for a in &v6 {
                map.insert(*a, 1, 0)
                    .map_err(|e| XdpError::Load(format!("addrs6: {e}")))?;
            }
        }
        let prog: &mut Xdp = ebpf
            .program_mut("steer")
            .ok_or_else(|| XdpError::Load("no program `steer` in the object".into()))?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| XdpError::Load(e.to_string()))?;
        prog.load().map_err(|e| {
            let t = format!("{e}");
            if t.contains("Operation not permitted") {
                XdpError::Privileges
            } else if t.contains("!root") {
                // The verifier allows the program's pointer arithmetic only to perfmon_capable().
                XdpError::Load(format!(
                    "the verifier refused the XDP program without CAP_PERFMON: grant it (with \
                     the rest of the set `synack check` lists). Kernel: {t}"
                ))
            } else {
                XdpError::Load(format!("the kernel refused the XDP program: {t}"))
            }
        })?;
        let mut warning = None;
        let mode_name = match mode {
            XdpMode::Native => {
                prog.attach(iface, AyaMode::Driver)
                    .map_err(|e| attach_error(iface, e))?;
                "native"
            }
            XdpMode::Skb => {
                prog.attach(iface, AyaMode::Skb)
                    .map_err(|e| attach_error(iface, e))?;
                "skb"
            }
            XdpMode::Auto => match prog.attach(iface, AyaMode::Driver) {
                Ok(_) => "native",
                Err(e) => {
                    let first = attach_error(iface, e);
                    if matches!(first, XdpError::Privileges)
                        || first.to_string().contains("another XDP program")
                    {
                        return Err(first);
                    }
                    prog.attach(iface, AyaMode::Skb)
                        .map_err(|e| attach_error(iface, e))?;
                    warning = Some(format!(
                        "native XDP refused on {iface} ({first}); using skb (generic) mode, which is slower"
                    ));
                    "skb"
                }
            },
        };
        Ok(Program {
            ebpf,
            iface: iface.to_string(),
            mode: mode_name,
            warning,
            attached: true,
        })
    }

    /// Steers queue `queue` to the socket `fd`.
    pub fn register(&mut self, queue: u32, fd: &impl AsRawFd) -> Result<(), XdpError> {
        let mut map: XskMap<_> = XskMap::try_from(
            self.ebpf
                .map_mut("xsks_map")
                .ok_or_else(|| XdpError::Load("no xsks_map in the object".into()))?,
        )
        .map_err(|e| XdpError::Load(e.to_string()))?;
        map.set(queue, fd.as_raw_fd(), 0)
            .map_err(|e| XdpError::Load(format!("XSKMAP[{queue}]: {e}")))
    }

    #[cfg(any(test, feature = "internals"))]
    pub fn counters(&self) -> ProgramCounters {
        let Some(m) = self.ebpf.map("counters") else {
            return ProgramCounters::default();
        };
        let Ok(arr) = PerCpuArray::<_, u64>::try_from(m) else {
            return ProgramCounters::default();
        };
        let get = |i: u32| arr.get(&i, 0).map(|v| v.iter().sum()).unwrap_or(0);
        ProgramCounters {
            steered: get(0),
            passed: get(1),
            malformed: get(2),
            no_socket: get(3),
            icmp_steered: get(4),
        }
    }

    pub fn mode_name(&self) -> &'static str {
        self.mode
    }

    pub fn warning(&self) -> Option<&str> {
        self.warning.as_deref()
    }

    #[cfg(any(test, feature = "internals"))]
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// Detaches (also done by drop, and by the kernel if the process dies).
    pub fn detach(&mut self) {
        if self.attached {
            if let Some(p) = self.ebpf.program_mut("steer") {
                let r: Result<&mut Xdp, _> = p.try_into();
                if let Ok(x) = r {
                    let _: Result<(), aya::programs::ProgramError> = x.unload();
                }
            }
            self.attached = false;
        }
    }
}

/// Tries to attach the program in native mode and detaches at once (for `synack check`).
pub fn probe_native_xdp(iface: &str) -> Result<(), String> {
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut p = Program::load_and_attach(iface, &[lo], &[9], XdpMode::Native)
        .map_err(|e| e.to_string())?;
    p.detach();
    Ok(())
}
