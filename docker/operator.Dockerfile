# syntax=docker/dockerfile:1
# scripts/build-images.sh builds the same image without a container engine
# by reading this file's final stage (COPY, USER, ENTRYPOINT, EXPOSE, LABEL):
# keep one instruction per line there, LABEL as key="value", ENTRYPOINT in
# JSON form (tests/e2e/tests/pods.rs compares the built image with this file).
# The trunkline operator image. Build from the repository root:
#
#   docker build -f docker/operator.Dockerfile -t <registry>/trunkline-operator:<version> .
#
# Two stages: the Rust toolchain builds the binary; the runtime is
# distroless "cc" (glibc and libgcc, no shell, no package manager): the
# binary is linked against glibc, and TLS is rustls, so nothing else is
# needed. It runs as UID/GID 65532 (distroless "nonroot"), which the chart's
# runAsUser/runAsGroup name, with a read-only root filesystem.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p trunkline-operator --bin trunkline-operator \
 && install -D target/release/trunkline-operator /out/trunkline-operator

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/trunkline-operator /usr/local/bin/trunkline-operator
LABEL org.opencontainers.image.title="trunkline-operator"
LABEL org.opencontainers.image.description="The trunkline operator: validates and resolves the trunkline.io objects across kinds, writes their status."
LABEL org.opencontainers.image.licenses="Apache-2.0"
LABEL org.opencontainers.image.source="https://example.invalid/trunkline"
USER 65532:65532
# /metrics, /healthz, /readyz (--metrics-addr, chart value operator.metricsPort).
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/trunkline-operator"]
