//! Compiles the XDP programs (BPF C) with clang into OUT_DIR, so the loaders
//! embed the objects they were built with: `redirect.bpf.c` (every frame to
//! AF_XDP; the fabric's tunnel steering) and `tier.bpf.c` (the XDP tier, its
//! maps in `tier.h`).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".to_owned());
    let arch_include = format!("-I/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    println!("cargo:rerun-if-changed=bpf/tier.h");
    for name in ["redirect", "tier"] {
        let src = format!("bpf/{name}.bpf.c");
        println!("cargo:rerun-if-changed={src}");
        let out = out_dir.join(format!("{name}.bpf.o"));
        let status = Command::new(&clang)
            .args(["-O2", "-g", "-Wall", "-target", "bpf", &arch_include, "-c", &src, "-o"])
            .arg(&out)
            .status()
            .unwrap_or_else(|e| {
                panic!("could not run {clang} to build {src}: {e}; install clang and libbpf-dev (scripts/install-deps.sh)")
            });
        assert!(status.success(), "{clang} failed to compile {src}");
    }
}
