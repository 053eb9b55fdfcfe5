# syntax=docker/dockerfile:1
# scripts/build-images.sh builds the same image without a container engine
# by reading this file's final stage (COPY, USER, ENTRYPOINT, EXPOSE, LABEL):
# keep one instruction per line there, LABEL as key="value", ENTRYPOINT in
# JSON form (tests/e2e/tests/pods.rs compares the built image with this file).
# The trunkline operator image, which also carries the cluster's BGP
# speaker (trunkline-bgp and the gobgpd it supervises; the chart's
# <release>-bgp Deployment runs it with `command:`). Build from the
# repository root:
#
#   docker build -f docker/operator.Dockerfile -t <registry>/trunkline-operator:<version> .
#
# Three stages: the Go toolchain builds gobgpd (static, from the Go module
# proxy, at GOBGP_VERSION of scripts/versions.env: the version of the API
# vendored in operator/bgp/proto); the Rust toolchain builds the two
# binaries; the runtime is distroless "cc" (glibc and libgcc, no shell, no
# package manager): the binaries are linked against glibc, and TLS is
# rustls, so nothing else is needed. It runs as UID/GID 65532 (distroless
# "nonroot"), which the chart's runAsUser/runAsGroup name, with a read-only
# root filesystem.
FROM golang:1.26-bookworm AS gobgp
ARG GOBGP_VERSION=3.37.0
RUN CGO_ENABLED=0 GOBIN=/out go install -trimpath -ldflags "-s -w" \
    github.com/osrg/gobgp/v3/cmd/gobgpd@v${GOBGP_VERSION}

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p trunkline-operator --bin trunkline-operator \
      -p trunkline-bgp --bin trunkline-bgp \
 && install -D target/release/trunkline-operator /out/trunkline-operator \
 && install -D target/release/trunkline-bgp /out/trunkline-bgp

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/trunkline-operator /usr/local/bin/trunkline-operator
COPY --from=build /out/trunkline-bgp /usr/local/bin/trunkline-bgp
COPY --from=gobgp /out/gobgpd /usr/local/bin/gobgpd
LABEL org.opencontainers.image.title="trunkline-operator"
LABEL org.opencontainers.image.description="The trunkline operator: validates and resolves the trunkline.io objects across kinds, writes their status; and the BGP speaker trunkline-bgp with GoBGP's gobgpd."
LABEL org.opencontainers.image.licenses="Apache-2.0"
LABEL org.opencontainers.image.source="https://example.invalid/trunkline"
USER 65532:65532
# /metrics, /healthz, /readyz (--metrics-addr, chart value operator.metricsPort).
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/trunkline-operator"]
