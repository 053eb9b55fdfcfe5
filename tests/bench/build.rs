//! Compiles the benchmark's BPF programs with clang into OUT_DIR: the
//! generator, the sink and mode (i)'s XDP_REDIRECT forwarder (XDP), and the
//! lab's VLAN tagger (tc) for the
//! VLANs of the Linux-forwarding baseline.

use std::path::{Path, PathBuf};
use std::process::Command;

fn clang(src: &Path, out: &Path, defines: &[&str]) {
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".to_owned());
    let arch_include = format!("-I/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-target", "bpf", &arch_include])
        .args(defines)
        .arg("-c")
        .arg(src)
        .arg("-o")
        .arg(out)
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "could not run {clang} to build {}: {e}; install clang and libbpf-dev (scripts/install-deps.sh)",
                src.display()
            )
        });
    assert!(
        status.success(),
        "{clang} failed to compile {}",
        src.display()
    );
}

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for name in ["generator", "sink", "redirect"] {
        let src = PathBuf::from(format!("bpf/{name}.bpf.c"));
        println!("cargo:rerun-if-changed={}", src.display());
        clang(&src, &out.join(format!("{name}.bpf.o")), &[]);
    }
    let tagger = Path::new("../lab/tagger.bpf.c");
    println!("cargo:rerun-if-changed={}", tagger.display());
    for vid in [100, 200] {
        clang(
            tagger,
            &out.join(format!("tagger-{vid}.bpf.o")),
            &[&format!("-DVID={vid}")],
        );
    }
}
