# User-facing entry points. Each target is a thin wrapper over a script or
# cargo, so what CI runs is what a developer runs.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: help demo test lint unit e2e crds cluster cluster-down deps fuzz bench-pipeline

help: ## list the targets
	@grep -E '^[a-z0-9][a-z0-9_-]*:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

demo: deps ## start a local control plane, apply the examples, show validation at work, clean up
	scripts/demo.sh

test: deps lint unit e2e ## the whole test suite (what CI runs)

lint: ## rustfmt and clippy, warnings are errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit: ## tests that need no control plane
	$(CARGO) test --workspace --locked --exclude trunkline-e2e

e2e: ## tests against a real etcd + kube-apiserver + kube-controller-manager
	$(CARGO) test -p trunkline-e2e --locked -- --nocapture

crds: ## regenerate the CRD YAML from the Rust types, and every copy of it (chart, kustomize base, Argo CD)
	$(CARGO) run -q -p trunkline-api --bin crdgen
	deploy/generate.sh

cluster: deps ## start a local control plane; prints `export KUBECONFIG=...` last
	scripts/cluster.sh up

cluster-down: ## stop the control plane `make cluster` started
	scripts/cluster.sh down

fuzz: ## fuzz the frame parser for FUZZ_SECONDS (default 60); stable rustc via RUSTC_BOOTSTRAP
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --version 0.13.2 --locked
	cd node-dataplane/wire/fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run frame_parser -- -max_total_time=$${FUZZ_SECONDS:-60}

bench-pipeline: ## criterion benchmark of the packet pipeline with 4K VMIs (ns per packet)
	$(CARGO) bench -p trunkline-pipeline

bench: deps ## forwarding vs bare AF_XDP, Linux and OVS baselines + control plane at 4K objects: target/bench/report.md
	scripts/bench.sh $(BENCH_FLAGS)

deps: ## install what the build and the tests need (Debian packages, Kubernetes binaries)
	scripts/install-deps.sh
