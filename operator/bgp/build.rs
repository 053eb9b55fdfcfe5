//! Generates the GoBGP gRPC client from the vendored `.proto` files
//! (`proto/`, GoBGP v3.37.0's `api/`) with `protoc` from the Debian package
//! `protobuf-compiler` (scripts/install-deps.sh), or `$PROTOC`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure()
        .build_server(false)
        .compile_protos(
            &[
                "proto/gobgp.proto",
                "proto/attribute.proto",
                "proto/capability.proto",
            ],
            &["proto"],
        )?;
    Ok(())
}
