//! Compiles the XDP program in bpf/ with clang into OUT_DIR; src/xdp/program.rs embeds it.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=bpf/steer.bpf.c");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let obj = out.join("steer.bpf.o");
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".to_string());
    let status = Command::new(&clang)
        .args([
            "-O2",
            "-g",
            "-target",
            "bpf",
            "-Wall",
            "-Werror",
            // Debian's clang needs the multiarch include dir for asm/types.h.
            "-I/usr/include/x86_64-linux-gnu",
            "-I/usr/include/aarch64-linux-gnu",
            "-c",
            "bpf/steer.bpf.c",
            "-o",
        ])
        .arg(&obj)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!(
            "clang failed ({s}) compiling bpf/steer.bpf.c; it needs the kernel and libbpf headers: \
             apt-get install clang llvm libbpf-dev linux-libc-dev"
        ),
        Err(e) => panic!(
            "cannot run {clang} ({e}) to compile the XDP program: install clang and libbpf-dev \
             (apt-get install clang llvm libbpf-dev), or set CLANG=/path/to/clang"
        ),
    }
}
