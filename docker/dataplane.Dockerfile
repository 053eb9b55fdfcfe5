# syntax=docker/dockerfile:1
# scripts/build-images.sh builds the same image without a container engine
# by reading this file's final stage (COPY, USER, ENTRYPOINT, EXPOSE, LABEL):
# keep one instruction per line there, LABEL as key="value", ENTRYPOINT in
# JSON form (tests/e2e/tests/pods.rs compares the built image with this file).
# The trunkline node dataplane image. Build from the repository root:
#
#   docker build -f docker/dataplane.Dockerfile -t <registry>/trunkline-dataplane:<version> .
#
# The build stage needs clang and the libbpf headers: node-dataplane/xdp's
# build.rs compiles the XDP program (bpf/redirect.bpf.c) into the binary.
# The runtime is distroless "cc" (glibc, no shell). It runs as UID 0 with
# every capability dropped but those the chart adds (NET_ADMIN, NET_RAW,
# BPF, PERFMON, IPC_LOCK): Kubernetes has no ambient capabilities, so a
# non-root user would hold none of them (docs/install.md, "Capabilities").
FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends clang llvm libbpf-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p trunkline-dataplane --bin trunkline-dataplane \
 && install -D target/release/trunkline-dataplane /out/trunkline-dataplane

FROM gcr.io/distroless/cc-debian12
COPY --from=build /out/trunkline-dataplane /usr/local/bin/trunkline-dataplane
LABEL org.opencontainers.image.title="trunkline-dataplane"
LABEL org.opencontainers.image.description="The trunkline node dataplane: enforces the accepted objects of its gateway node with an AF_XDP fast path."
LABEL org.opencontainers.image.licenses="Apache-2.0"
LABEL org.opencontainers.image.source="https://example.invalid/trunkline"
USER 0:0
# /metrics, /healthz, /readyz on the node's network (--metrics-addr, chart
# value dataplane.metricsPort).
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/trunkline-dataplane"]
