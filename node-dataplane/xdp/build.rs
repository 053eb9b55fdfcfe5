//! Compiles the XDP redirect program (BPF C) with clang into OUT_DIR, so the
//! loader embeds the object it was built with.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "bpf/redirect.bpf.c";
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("redirect.bpf.o");
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".to_owned());
    let arch_include = format!("-I/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-target", "bpf", &arch_include, "-c", src, "-o"])
        .arg(&out)
        .status()
        .unwrap_or_else(|e| {
            panic!("could not run {clang} to build {src}: {e}; install clang and libbpf-dev (scripts/install-deps.sh)")
        });
    assert!(status.success(), "{clang} failed to compile {src}");
}
