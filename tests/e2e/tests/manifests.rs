//! The install manifests, checked without a cluster: `helm lint`, the
//! values schema, generated copies up to date (`deploy/generate.sh
//! --check`), the chart and the kustomize base granting exactly the rules
//! of `deploy/rbac/`, the dataplane's security settings, the BGP speaker's
//! Deployment (from the operator image, bound to its roles), the Argo CD
//! sync waves, and the Dockerfiles agreeing with the chart.
//!
//! What the API server must accept, and what the processes do with the
//! chart's identities, is in `install.rs`.

mod deploy_support;

use std::collections::BTreeMap;
use std::process::Command;

use deploy_support::*;
use serde_json::{Value, json};

/// The roles of `deploy/rbac/`, by file stem, with their kind and rules.
fn source_roles() -> BTreeMap<String, (String, Value)> {
    let dir = repo_root().join("deploy/rbac");
    let mut roles = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).expect("deploy/rbac") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            let role = yaml_file(&format!("deploy/rbac/{stem}.yaml"));
            let kind = role["kind"].as_str().expect("kind").to_owned();
            roles.insert(stem, (kind, role["rules"].clone()));
        }
    }
    assert!(
        roles.contains_key("operator")
            && roles.contains_key("dataplane")
            && roles.contains_key("operator-leader-election"),
        "{roles:?}"
    );
    roles
}

/// Checks that `docs` hold exactly the roles of `deploy/rbac/`, named
/// `<prefix>-<stem>`, with the same kind and rules, and nothing more.
fn assert_same_roles(what: &str, docs: &[Value], prefix: &str) {
    let source = source_roles();
    let rendered: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == "ClusterRole" || d["kind"] == "Role")
        .collect();
    assert_eq!(
        rendered.len(),
        source.len(),
        "{what}: one role per file of deploy/rbac/"
    );
    for (stem, (kind, rules)) in &source {
        let name = format!("{prefix}-{stem}");
        let role = object(docs, kind, &name);
        assert_eq!(
            &role["rules"], rules,
            "{what}: {kind} {name} differs from deploy/rbac/{stem}.yaml"
        );
    }
}

#[test]
fn helm_lint_passes() {
    ok("helm lint", helm(&["lint", "--strict", CHART]));
    ok(
        "helm lint with every option on",
        helm(&[
            "lint",
            "--strict",
            CHART,
            "--set",
            "serviceMonitor.enabled=true",
            "--set",
            "dataplane.privileged=true",
            "--set",
            "image.registry=registry.example.com/trunkline",
            "--set",
            "bgp.hostNetwork=true",
            "--set",
            "bgp.listenPort=1179",
            "--set",
            "bgp.routerID=192.0.2.1",
        ]),
    );
    ok(
        "helm lint without the BGP speaker",
        helm(&["lint", "--strict", CHART, "--set", "bgp.enabled=false"]),
    );
}

#[test]
fn generated_files_are_up_to_date() {
    let out = Command::new(repo_root().join("deploy/generate.sh"))
        .arg("--check")
        .output()
        .expect("deploy/generate.sh runs");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_chart_grants_exactly_the_rules_of_deploy_rbac() {
    let docs = yaml_docs(&render_chart("rel", "ns1", &[]));
    assert_same_roles("the chart", &docs, "rel-trunkline");
    // Bindings: each role to its own ServiceAccount, in the release namespace.
    for (kind, name, account) in [
        (
            "ClusterRoleBinding",
            "rel-trunkline-operator",
            "rel-trunkline-operator",
        ),
        (
            "ClusterRoleBinding",
            "rel-trunkline-dataplane",
            "rel-trunkline-dataplane",
        ),
        (
            "RoleBinding",
            "rel-trunkline-operator-leader-election",
            "rel-trunkline-operator",
        ),
        (
            "ClusterRoleBinding",
            "rel-trunkline-bgp",
            "rel-trunkline-bgp",
        ),
        (
            "RoleBinding",
            "rel-trunkline-bgp-namespace",
            "rel-trunkline-bgp",
        ),
    ] {
        let binding = object(&docs, kind, name);
        assert_eq!(binding["roleRef"]["name"], name);
        assert_eq!(
            binding["subjects"],
            json!([{ "kind": "ServiceAccount", "name": account, "namespace": "ns1" }]),
            "{kind} {name}"
        );
    }
    let role = object(&docs, "Role", "rel-trunkline-operator-leader-election");
    assert_eq!(role["metadata"]["namespace"], "ns1");
    // The Lease the Role names is the one the operator campaigns for.
    let deployment = object(&docs, "Deployment", "rel-trunkline-operator");
    let args = args_of(container(deployment));
    let names = role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|r| r["resourceNames"].as_array())
        .expect("the Role names the Lease");
    assert!(
        args.contains(&format!(
            "--leader-election-id={}",
            names[0].as_str().unwrap()
        )),
        "{args:?}"
    );
}

#[test]
fn the_kustomize_base_grants_exactly_the_rules_of_deploy_rbac() {
    let docs = yaml_docs(&ok(
        "kubectl kustomize",
        kubectl_local(&["kustomize", BASE]),
    ));
    assert_same_roles("the kustomize base", &docs, "trunkline");
    // The base is the chart rendered with its defaults: same names as the
    // standalone roles of deploy/rbac/ (metadata.name there).
    for stem in ["operator", "dataplane", "operator-leader-election"] {
        let source = yaml_file(&format!("deploy/rbac/{stem}.yaml"));
        assert_eq!(
            source["metadata"]["name"],
            format!("trunkline-{stem}"),
            "deploy/rbac/{stem}.yaml"
        );
    }
    // Everything namespaced is in trunkline-system, which the base creates.
    object(&docs, "Namespace", "trunkline-system");
    for d in &docs {
        if let Some(ns) = d["metadata"]["namespace"].as_str() {
            assert_eq!(
                ns, "trunkline-system",
                "{} {}",
                d["kind"], d["metadata"]["name"]
            );
        }
    }
    // Every CRD is in the base.
    let crds = objects(&docs, "CustomResourceDefinition");
    let committed = std::fs::read_dir(repo_root().join("crds")).unwrap().count();
    assert_eq!(crds.len(), committed);
    // And nothing Helm-specific.
    let text = ok("kubectl kustomize", kubectl_local(&["kustomize", BASE]));
    assert!(!text.contains("helm.sh/chart"), "Helm labels in the base");
    assert!(
        !text.contains("managed-by: Helm"),
        "Helm labels in the base"
    );
}

#[test]
fn the_base_lists_every_generated_file() {
    let kustomization = yaml_file(&format!("{BASE}/kustomization.yaml"));
    let listed: Vec<&str> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    for entry in std::fs::read_dir(repo_root().join(BASE)).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.starts_with("generated-") || name == "crds" || name == "namespace.yaml" {
            assert!(
                listed.contains(&name.as_str()),
                "{BASE}/kustomization.yaml does not list {name}"
            );
        }
    }
}

#[test]
fn the_values_schema_refuses_mistakes() {
    for (set, why) in [
        ("operator.replicas=0", "at least one replica"),
        ("operator.replica=2", "a misspelt key"),
        ("dataplane.backend=dpdk", "an unknown backend"),
        (
            "dataplane.capabilities={SYS_BOOT}",
            "an unexpected capability",
        ),
        (
            "operator.leaderElection.leaseDuration=15",
            "a duration without unit",
        ),
        (
            "dataplane.seccompProfile=Localhost",
            "an unsupported profile",
        ),
        ("bgp.replicas=0", "no BGP speaker replica"),
        ("bgp.listenPort=0", "port 0"),
        (
            "bgp.routerID=300.1.1.1",
            "a router ID that is no IPv4 address",
        ),
        ("bgp.localASN=0", "AS number 0"),
        (
            "bgp.gracefulRestartSeconds=4096",
            "a restart time over 12 bits",
        ),
        ("bgp.healthPort=0", "probe port 0"),
    ] {
        let out = helm(&[
            "template",
            "x",
            CHART,
            "--kube-version",
            &k8s_version(),
            "--set",
            set,
        ]);
        assert!(!out.status.success(), "{set} ({why}) was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("schema"), "{set}: {stderr}");
    }
    // More than one writer without leader election: refused by the template.
    let out = helm(&[
        "template",
        "x",
        CHART,
        "--kube-version",
        &k8s_version(),
        "--set",
        "operator.replicas=3",
        "--set",
        "operator.leaderElection.enabled=false",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("leaderElection.enabled"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A privileged BGP port on the node's network, for a non-root speaker.
    let out = helm(&[
        "template",
        "x",
        CHART,
        "--kube-version",
        &k8s_version(),
        "--set",
        "bgp.hostNetwork=true",
        "--set",
        "bgp.listenPort=179",
    ]);
    assert!(!out.status.success(), "port 179 on the node's network");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bgp.listenPort below 1024"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The BGP speaker runs from the operator image (the binaries its
/// Dockerfile copies), as a non-root user with a read-only root and a
/// writable directory for gobgpd's API socket, one active replica by the
/// Lease its Role names; `bgp.enabled=false` leaves only the (unbound)
/// roles; a BGP port below 1024 in the pod's network comes with the sysctl
/// that lets the non-root gobgpd bind it.
#[test]
fn the_bgp_speaker_runs_from_the_operator_image_with_its_own_identity() {
    let docs = yaml_docs(&render_chart("rel", "ns1", &[]));
    let deployment = object(&docs, "Deployment", "rel-trunkline-bgp");
    let operator = object(&docs, "Deployment", "rel-trunkline-operator");
    let pod = &deployment["spec"]["template"]["spec"];
    let c = container(deployment);
    assert_eq!(
        c["image"],
        container(operator)["image"],
        "the operator image"
    );
    assert_eq!(pod["serviceAccountName"], "rel-trunkline-bgp");
    object(&docs, "ServiceAccount", "rel-trunkline-bgp");
    assert_eq!(
        pod["securityContext"],
        operator["spec"]["template"]["spec"]["securityContext"]
    );
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
    assert!(
        pod["hostNetwork"].is_null(),
        "the pod's own network by default"
    );

    // The binaries it runs are the ones the operator image holds.
    let dockerfile =
        std::fs::read_to_string(repo_root().join("docker/operator.Dockerfile")).unwrap();
    let command = c["command"][0].as_str().expect("a command");
    let args = args_of(c);
    let flag = |name: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("--{name}=")))
            .unwrap_or_else(|| panic!("--{name} in {args:?}"))
            .to_owned()
    };
    for path in [command.to_owned(), flag("gobgpd")] {
        assert!(
            dockerfile
                .lines()
                .any(|l| l.starts_with("COPY --from=") && l.ends_with(&format!(" {path}"))),
            "docker/operator.Dockerfile copies {path}"
        );
    }
    assert!(dockerfile.contains("-p trunkline-bgp --bin trunkline-bgp"));
    // gobgpd at the version whose API is vendored (scripts/versions.env).
    let versions = std::fs::read_to_string(repo_root().join("scripts/versions.env")).unwrap();
    let gobgp = versions
        .lines()
        .find_map(|l| l.strip_prefix("GOBGP_VERSION="))
        .expect("GOBGP_VERSION in scripts/versions.env");
    assert!(
        dockerfile.contains(&format!("ARG GOBGP_VERSION={gobgp}\n")),
        "docker/operator.Dockerfile builds gobgpd {gobgp}"
    );

    // gobgpd's socket is in a writable volume.
    let socket = flag("api-socket");
    let dir = std::path::Path::new(&socket)
        .parent()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let mount = c["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["mountPath"] == dir.as_str())
        .unwrap_or_else(|| panic!("a volume at {dir}: {c}"));
    let volume = pod["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["name"] == mount["name"])
        .expect("the mounted volume");
    assert!(volume["emptyDir"].is_object(), "{volume}");

    // Leader election on the Lease the speaker's Role lets it hold.
    assert!(args.contains(&"--leader-elect".to_owned()), "{args:?}");
    let role = object(&docs, "Role", "rel-trunkline-bgp-namespace");
    let lease = role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|r| r["resourceNames"].as_array())
        .expect("the Role names the Lease");
    assert_eq!(json!(flag("leader-election-id")), lease[0]);
    // The router ID: the pod's address unless set.
    let env = c["env"].as_array().expect("env");
    let router_id = env
        .iter()
        .find(|e| e["name"] == "TRUNKLINE_BGP_ROUTER_ID")
        .expect("TRUNKLINE_BGP_ROUTER_ID");
    assert_eq!(
        router_id["valueFrom"]["fieldRef"]["fieldPath"],
        "status.podIP"
    );
    assert_eq!(flag("listen-port"), "-1", "connects out only by default");
    assert_eq!(
        flag("graceful-restart-seconds"),
        "0",
        "no graceful restart by default"
    );
    // Probes on the port the speaker serves them on, bound to every
    // address: the kubelet probes the pod's address (its own network,
    // above), never 127.0.0.1.
    let health_addr = flag("health-addr");
    let (health_ip, health_port) = health_addr
        .rsplit_once(':')
        .expect("--health-addr=<ip>:<port>");
    assert_eq!(health_ip, "0.0.0.0", "all addresses, not loopback only");
    let health_port: u16 = health_port.parse().expect("a port");
    assert_eq!(health_port, 8081, "bgp.healthPort's default");
    assert_eq!(
        c["ports"],
        json!([{"name": "health", "containerPort": health_port, "protocol": "TCP"}]),
        "no BGP port by default"
    );
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        assert_eq!(c[probe]["httpGet"]["path"], path, "{probe}: {c}");
        assert_eq!(c[probe]["httpGet"]["port"], "health", "{probe}: {c}");
    }

    // Set: a router ID, a port below 1024 in the pod's network.
    let docs = yaml_docs(&render_chart(
        "rel",
        "ns1",
        &[
            "--set",
            "bgp.routerID=192.0.2.1",
            "--set",
            "bgp.listenPort=179",
            "--set",
            "bgp.gracefulRestartSeconds=120",
            "--set",
            "bgp.healthPort=9443",
        ],
    ));
    let deployment = object(&docs, "Deployment", "rel-trunkline-bgp");
    let c = container(deployment);
    let args = args_of(c);
    assert!(
        args.contains(&"--health-addr=0.0.0.0:9443".to_owned()),
        "bgp.healthPort moves the server, on every address: {args:?}"
    );
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(c[probe]["httpGet"]["port"], "health", "{probe}: {c}");
    }
    assert!(
        args.contains(&"--graceful-restart-seconds=120".to_owned()),
        "{args:?}"
    );
    assert!(
        args.contains(&"--router-id=192.0.2.1".to_owned()),
        "{args:?}"
    );
    assert!(args.contains(&"--listen-port=179".to_owned()), "{args:?}");
    assert!(
        !c["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "TRUNKLINE_BGP_ROUTER_ID"),
        "no pod address when routerID is set"
    );
    assert_eq!(
        deployment["spec"]["template"]["spec"]["securityContext"]["sysctls"],
        json!([{"name": "net.ipv4.ip_unprivileged_port_start", "value": "179"}])
    );
    assert_eq!(
        c["ports"],
        json!([{"name": "health", "containerPort": 9443, "protocol": "TCP"},
               {"name": "bgp", "containerPort": 179, "protocol": "TCP"}])
    );

    // Disabled: no Deployment, identity or binding; the roles stay.
    let docs = yaml_docs(&render_chart("rel", "ns1", &["--set", "bgp.enabled=false"]));
    for kind in [
        "Deployment",
        "ServiceAccount",
        "ClusterRoleBinding",
        "RoleBinding",
    ] {
        assert!(
            !objects(&docs, kind).iter().any(|d| d["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("rel-trunkline-bgp"))),
            "bgp.enabled=false renders a {kind} of the speaker"
        );
    }
    object(&docs, "ClusterRole", "rel-trunkline-bgp");
    object(&docs, "Role", "rel-trunkline-bgp-namespace");

    // The kustomize base runs it too.
    let base = yaml_docs(&ok(
        "kubectl kustomize",
        kubectl_local(&["kustomize", BASE]),
    ));
    let deployment = object(&base, "Deployment", "trunkline-bgp");
    assert_eq!(deployment["metadata"]["namespace"], "trunkline-system");
    let c = container(deployment);
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(
        args_of(c).contains(&"--health-addr=0.0.0.0:8081".to_owned()),
        "{:?}",
        args_of(c)
    );
    object(&base, "ClusterRoleBinding", "trunkline-bgp");
    object(&base, "RoleBinding", "trunkline-bgp-namespace");
}

#[test]
fn the_dataplane_runs_with_host_network_and_only_the_capabilities_it_needs() {
    let docs = yaml_docs(&render_chart("rel", "ns1", &[]));
    let ds = object(&docs, "DaemonSet", "rel-trunkline-dataplane");
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(pod["dnsPolicy"], "ClusterFirstWithHostNet");
    assert_eq!(pod["serviceAccountName"], "rel-trunkline-dataplane");
    assert_eq!(
        pod["nodeSelector"],
        json!({ "trunkline.io/gateway": "true" })
    );
    assert_eq!(
        pod["tolerations"],
        json!([{ "key": "trunkline.io/gateway", "operator": "Exists", "effect": "NoSchedule" }])
    );
    let c = container(ds);
    let env = c["env"].as_array().unwrap();
    let node = env
        .iter()
        .find(|e| e["name"] == "NODE_NAME")
        .expect("NODE_NAME");
    assert_eq!(node["valueFrom"]["fieldRef"]["fieldPath"], "spec.nodeName");
    let sc = &c["securityContext"];
    assert_eq!(sc["privileged"], false);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(
        sc["capabilities"]["add"],
        json!([
            "NET_ADMIN",
            "NET_RAW",
            "BPF",
            "PERFMON",
            "IPC_LOCK",
            "SYS_NICE"
        ])
    );
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(c["resources"]["requests"].is_object());
    // A metrics Service per component.
    object(&docs, "Service", "rel-trunkline-dataplane-metrics");
    object(&docs, "Service", "rel-trunkline-operator-metrics");
    // The operator: non-root, nothing added.
    let deployment = object(&docs, "Deployment", "rel-trunkline-operator");
    let c = container(deployment);
    assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
    assert!(c["securityContext"]["capabilities"]["add"].is_null());
    assert_eq!(
        deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"],
        true
    );

    // Older kernels: SYS_ADMIN only when asked for.
    let docs = yaml_docs(&render_chart(
        "rel",
        "ns1",
        &["--set", "dataplane.extraCapabilities={SYS_ADMIN}"],
    ));
    let add = &container(object(&docs, "DaemonSet", "rel-trunkline-dataplane"))["securityContext"]
        ["capabilities"]["add"];
    assert_eq!(add.as_array().unwrap().last().unwrap(), "SYS_ADMIN");

    // The ServiceMonitor toggle.
    let docs = yaml_docs(&render_chart(
        "rel",
        "ns1",
        &["--set", "serviceMonitor.enabled=true"],
    ));
    assert_eq!(objects(&docs, "ServiceMonitor").len(), 2);
}

/// The node dataplane's unauthenticated HTTP endpoints listen on the
/// node's primary address by default (what Prometheus and the kubelet's
/// probes reach), never on every address unless asked; the agent alone
/// listens on loopback.
#[test]
fn the_dataplane_metrics_listen_on_the_node_address_not_everywhere() {
    let dataplane = |extra: &[&str]| -> Value {
        let docs = yaml_docs(&render_chart("rel", "ns1", extra));
        container(object(&docs, "DaemonSet", "rel-trunkline-dataplane")).clone()
    };
    let metrics_arg = |c: &Value| -> String {
        args_of(c)
            .into_iter()
            .find(|a| a.starts_with("--metrics-addr="))
            .expect("--metrics-addr")
    };
    let c = dataplane(&[]);
    assert_eq!(metrics_arg(&c), "--metrics-addr=$(HOST_IP):9090");
    let host_ip = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "HOST_IP")
        .expect("HOST_IP from the Downward API");
    assert_eq!(
        host_ip["valueFrom"]["fieldRef"]["fieldPath"],
        "status.hostIP"
    );
    // The probes go to the pod IP, which is the node's address.
    assert!(c["livenessProbe"]["httpGet"]["host"].is_null());

    let c = dataplane(&[
        "--set",
        "dataplane.metricsBind=hostIPv6",
        "--set",
        "dataplane.metricsPort=9100",
    ]);
    assert_eq!(metrics_arg(&c), "--metrics-addr=[$(HOST_IP)]:9100");
    let c = dataplane(&["--set", "dataplane.metricsBind=localhost"]);
    assert_eq!(metrics_arg(&c), "--metrics-addr=127.0.0.1:9090");
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        assert_eq!(c[probe]["httpGet"]["host"], "127.0.0.1", "{probe}");
    }
    let c = dataplane(&["--set", "dataplane.metricsBind=all"]);
    assert_eq!(metrics_arg(&c), "--metrics-addr=0.0.0.0:9090");
    let refused = helm(&[
        "template",
        "rel",
        CHART,
        "--set",
        "dataplane.metricsBind=everywhere",
    ]);
    assert!(
        !refused.status.success(),
        "the values schema refuses an unknown bind"
    );

    // The agent on its own: loopback.
    let agent =
        trunkline_test_support::workspace_binary("trunkline-dataplane", "trunkline-dataplane");
    let help = Command::new(&agent)
        .arg("--help")
        .output()
        .expect("trunkline-dataplane --help");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("[default: 127.0.0.1:9090]"), "{help}");
}

#[test]
fn images_and_dockerfiles_agree() {
    let docs = yaml_docs(&render_chart(
        "rel",
        "ns1",
        &[
            "--set",
            "image.registry=registry.example.com/tl",
            "--set",
            "image.tag=1.2.3",
        ],
    ));
    let deployment = object(&docs, "Deployment", "rel-trunkline-operator");
    let ds = object(&docs, "DaemonSet", "rel-trunkline-dataplane");
    assert_eq!(
        container(deployment)["image"],
        "registry.example.com/tl/trunkline-operator:1.2.3"
    );
    assert_eq!(
        container(ds)["image"],
        "registry.example.com/tl/trunkline-dataplane:1.2.3"
    );

    let dockerfile = |name: &str| {
        std::fs::read_to_string(repo_root().join("docker").join(name))
            .unwrap_or_else(|e| panic!("docker/{name}: {e}"))
    };
    let operator = dockerfile("operator.Dockerfile");
    let dataplane = dockerfile("dataplane.Dockerfile");
    let pod = &deployment["spec"]["template"]["spec"]["securityContext"];
    assert!(
        operator.contains(&format!(
            "\nUSER {}:{}\n",
            pod["runAsUser"], pod["runAsGroup"]
        )),
        "the operator image's USER is the chart's runAsUser/runAsGroup"
    );
    assert!(dataplane.contains("\nUSER 0:0\n"));
    assert_eq!(container(ds)["securityContext"]["runAsUser"], 0);
    let values = yaml_file("charts/trunkline/values.yaml");
    assert!(operator.contains(&format!("\nEXPOSE {}\n", values["operator"]["metricsPort"])));
    assert!(dataplane.contains(&format!(
        "\nEXPOSE {}\n",
        values["dataplane"]["metricsPort"]
    )));
    for (text, package, bin) in [
        (&operator, "trunkline-operator", "trunkline-operator"),
        (&dataplane, "trunkline-dataplane", "trunkline-dataplane"),
    ] {
        assert!(text.contains(&format!("-p {package} --bin {bin}")), "{bin}");
        assert!(
            text.contains(&format!("ENTRYPOINT [\"/usr/local/bin/{bin}\"]")),
            "{bin}"
        );
        assert!(
            text.contains("FROM rust:1.95"),
            "{bin}: the workspace's Rust"
        );
    }
    // The agent embeds a BPF object: its builder has clang and the headers.
    assert!(dataplane.contains("clang") && dataplane.contains("libbpf-dev"));
    // The workspace's rust-version is the builder's.
    let manifest = std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
    assert!(manifest.contains("rust-version = \"1.95\""));
}

#[test]
fn the_argocd_application_syncs_in_waves() {
    let docs = yaml_docs(&ok(
        "kubectl kustomize deploy/argocd/app",
        kubectl_local(&["kustomize", "deploy/argocd/app"]),
    ));
    let wave = |d: &Value| -> i64 {
        d["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]
            .as_str()
            .unwrap_or("0")
            .parse()
            .unwrap()
    };
    let mut custom = 0;
    for d in &docs {
        let what = format!("{} {}", d["kind"], d["metadata"]["name"]);
        let group = d["apiVersion"].as_str().unwrap().split('/').next().unwrap();
        if d["kind"] == "CustomResourceDefinition" {
            assert_eq!(wave(d), -1, "{what}");
        } else if group == "trunkline.io" {
            custom += 1;
            assert_eq!(wave(d), 1, "{what}");
            assert_eq!(
                d["metadata"]["annotations"]["argocd.argoproj.io/sync-options"],
                "SkipDryRunOnMissingResource=true",
                "{what}"
            );
        } else if d["metadata"]["name"] == "trunkline-system" {
            assert_eq!(wave(d), -1, "{what}");
        } else {
            assert_eq!(wave(d), 0, "{what}");
            if d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "trunkline" {
                assert!(
                    d["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"].is_string(),
                    "{what} has an explicit wave"
                );
            }
        }
    }
    assert!(custom > 0, "the example's custom resources are synced");

    let app = yaml_file("deploy/argocd/application.yaml");
    assert_eq!(app["kind"], "Application");
    let path = app["spec"]["source"]["path"].as_str().unwrap();
    assert!(
        repo_root().join(path).join("kustomization.yaml").exists(),
        "the Application's source path {path} is a kustomization"
    );
    assert!(
        app["spec"]["syncPolicy"]["syncOptions"]
            .as_array()
            .unwrap()
            .contains(&json!("ServerSideApply=true"))
    );
}

/// The operator's admission policy on PhysicalRouter status protects every
/// status field of the CRD but `portsSummary`, the operator's own.
#[test]
fn the_operator_policy_protects_every_field_of_the_router_status_but_its_own() {
    let crd = trunkline_api::crds()
        .into_iter()
        .find(|c| c.spec.names.kind == "PhysicalRouter")
        .expect("the PhysicalRouter CRD");
    let schema = serde_json::to_value(&crd.spec.versions[0].schema).expect("schema");
    let mut fields: Vec<String> = schema["openAPIV3Schema"]["properties"]["status"]["properties"]
        .as_object()
        .expect("status properties")
        .keys()
        .filter(|k| *k != "portsSummary")
        .cloned()
        .collect();
    fields.sort();
    let docs = yaml_docs(&render_chart("rel", "ns1", &[]));
    let policy = object(
        &docs,
        "ValidatingAdmissionPolicy",
        "rel-trunkline-operator-router-status",
    );
    let mut protected: Vec<String> = policy["spec"]["validations"]
        .as_array()
        .expect("validations")
        .iter()
        .filter_map(|v| {
            let e = v["expression"].as_str()?;
            let field = e.split("has(object.status.").nth(1)?.split(')').next()?;
            Some(field.to_owned())
        })
        .collect();
    protected.sort();
    assert_eq!(protected, fields);
    assert!(
        policy["spec"]["matchConditions"][0]["expression"]
            .as_str()
            .unwrap()
            .contains(":rel-trunkline-operator")
    );
}

/// `make help` lists every target documented with `## `, names with digits
/// (`e2e`) included, in the Makefile's order.
#[test]
fn make_help_lists_every_documented_target() {
    let root = repo_root();
    let makefile = std::fs::read_to_string(root.join("Makefile")).expect("Makefile");
    let documented: Vec<&str> = makefile
        .lines()
        .filter(|l| !l.starts_with(['\t', '#', ' ']) && l.contains(":") && l.contains("## "))
        .filter_map(|l| l.split(':').next())
        .collect();
    assert!(documented.contains(&"e2e"), "{documented:?}");
    let out = Command::new("make")
        .args(["-s", "help"])
        .current_dir(&root)
        .output()
        .expect("make help runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let shown: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(shown, documented, "make help:\n{stdout}");
}
