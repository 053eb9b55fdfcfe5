# User-facing entry points. Each target is a thin wrapper over a script or
# cargo, so what CI runs is what a developer runs.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: help demo demo-l3vpn test lint unit e2e crds cluster cluster-node cluster-down images deps fuzz fuzz-smoke bench-pipeline bench-tables bench-agent-build bench-observe bench-tier-observe bench-tier-policy bench-ha install-plugin

help: ## list the targets
	@grep -E '^[a-z0-9][a-z0-9_-]*:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

demo: deps ## start a local control plane, apply the examples, show validation at work, clean up
	scripts/demo.sh

demo-l3vpn: deps ## seed 003's L3VPN: the BGP speaker peers with FRR (VPNv4), exports a VMI, imports a default route, an instance pings a public host over MPLSoUDP
	scripts/demo-l3vpn.sh

test: deps lint unit e2e fuzz-smoke ## the whole test suite (what CI runs)

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

cluster-node: deps images ## a control plane plus a node (containerd, kubelet, kube-proxy, scheduler) with the images imported; then `helm install` (docs/install.md)
	scripts/cluster.sh up --node
	scripts/cluster.sh import $$(scripts/build-images.sh --no-build | sed -n 's/^[A-Z]*_ARCHIVE=//p')
	@scripts/cluster.sh env

cluster-down: ## stop the control plane (and node) `make cluster` or `make cluster-node` started
	scripts/cluster.sh down

images: ## build the operator and dataplane images as OCI archives, without a container engine (<target>/images)
	scripts/build-images.sh

fuzz: deps ## fuzz the wire views and the whole pipeline, FUZZ_SECONDS each (default 60): runs and crashes per target
	scripts/fuzz.sh

fuzz-smoke: deps ## a bounded fuzz run (about 60 s) of both targets from the corpus in the repository
	scripts/fuzz.sh --smoke

bench-pipeline: ## criterion benchmark of the packet pipeline with 4K VMIs (ns per packet)
	$(CARGO) bench -p trunkline-pipeline --bench pipeline

bench-tables: ## criterion: one VMI change at 4K and 16K VMIs, tables compiled from scratch vs updated
	$(CARGO) bench -p trunkline-pipeline --bench tables

bench-agent-build: ## criterion: the agent's whole build of its desired state (conversion, desired(), links) at 4K and 16K remote instances, and its parts
	$(CARGO) bench -p trunkline-dataplane --bench build

bench-observe: ## criterion: a batch of routed frames with the Observe sampler idle vs armed (throughput, elements/s)
	$(CARGO) bench -p trunkline-pipeline --bench pipeline -- observe

bench-tier-observe: ## root: the XDP tier with an armed observation vs without, ns per frame measured by the kernel (BPF_PROG_RUN, 4K VMIs): target/bench/tier-observe.md
	$(CARGO) bench -p trunkline-pipeline --bench tier_observe -- --out $(CURDIR)/target/bench/tier-observe.md $(TIER_OBSERVE_FLAGS)

bench-tier-policy: ## root: the XDP tier forwarding established flows of policed VMIs (100 rules) vs unpoliced, and of a network policy's connection vs one network (on one node, and to a VMI on another node), ns per frame measured by the kernel (BPF_PROG_RUN, 4K VMIs): target/bench/tier-policy.md
	$(CARGO) bench -p trunkline-pipeline --bench tier_policy -- --out $(CURDIR)/target/bench/tier-policy.md

PLUGIN_DIR ?= $(HOME)/.local/bin
install-plugin: ## build kubectl-trunkline (release) and install it into PLUGIN_DIR (default ~/.local/bin, put it on PATH): then `kubectl trunkline --help`
	$(CARGO) build --release --locked -p kubectl-trunkline --bin kubectl-trunkline
	install -D -m 0755 "$$($(CARGO) metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release/kubectl-trunkline" "$(PLUGIN_DIR)/kubectl-trunkline"
	@echo "installed $(PLUGIN_DIR)/kubectl-trunkline; kubectl finds it on PATH as 'kubectl trunkline'"

bench: deps ## forwarding (AF_XDP only and the XDP tier) vs bare AF_XDP, bare XDP_REDIRECT, Linux and OVS, overlay vs Linux VXLAN, SNAT vs Linux masquerade, the tier with security groups (100 rules) vs without + control plane at 4K objects with route propagation to FRR: target/bench/report.md
	scripts/bench.sh $(BENCH_FLAGS)

bench-ha: deps ## gateway HA loss windows (modes Fast, STP, keepalived VRRP baseline), 5 runs per failure: target/bench/ha.md
	scripts/bench.sh ha $(BENCH_FLAGS)

deps: ## install what the build and the tests need (Debian packages, Kubernetes binaries)
	scripts/install-deps.sh
