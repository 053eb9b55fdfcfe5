//! The Argo CD health checks (`deploy/argocd/health/<kind>.lua`) on sample
//! objects of every kind: Healthy, Progressing and Degraded.
//!
//! Argo CD runs a health script with gopher-lua (Lua 5.1 semantics), the
//! object in the global `obj`, only the base and table libraries and
//! `os.time`/`os.date`, and reads the table it returns. The harness below
//! does the same with the real `lua5.1` and `lua5.4` interpreters
//! (scripts/install-deps.sh installs both): the script runs in an
//! environment holding just those functions, with the string methods taken
//! away, and the sample object is a Lua table literal written from a JSON
//! value by [`lua_literal`]. Both interpreters must agree.
//!
//! Also checked: `deploy/argocd/argocd-cm.yaml` has one key per kind of
//! `crds/`, holding exactly that kind's script.

mod deploy_support;

use std::io::Write;
use std::process::{Command, Stdio};

use deploy_support::{repo_root, yaml_file};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

const INTERPRETERS: [&str; 2] = ["lua5.1", "lua5.4"];

/// `value` as a Lua expression (a table for objects and arrays; nil for null).
fn lua_literal(value: &Value) -> String {
    match value {
        Value::Null => "nil".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) => format!("{f:?}"),
            _ => n.to_string(),
        },
        Value::String(s) => lua_string(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(lua_literal).collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Object(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("[{}] = {}", lua_string(k), lua_literal(v)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
    }
}

/// A Lua 5.1 string literal: printable ASCII as is, every other byte as a
/// decimal escape.
fn lua_string(s: &str) -> String {
    let mut out = String::from("\"");
    for b in s.bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\{b}")),
        }
    }
    out.push('"');
    out
}

const HARNESS: &str = r#"
local path = arg[1]
local file = assert(io.open(path, "r"))
local text = file:read("*a")
file:close()
-- What Argo CD gives a health script: base and table libraries, os.time
-- and os.date, the object as `obj`.
local env = {
  obj = OBJECT,
  assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
  pcall = pcall, select = select, tonumber = tonumber, tostring = tostring,
  type = type, unpack = unpack, table = table,
  os = { time = os.time, date = os.date },
}
-- No string library in Argo CD, hence no string methods either.
getmetatable("").__index = {}
local chunk, err
if setfenv then
  chunk, err = loadstring(text, "=" .. path)
  if chunk then setfenv(chunk, env) end
else
  chunk, err = load(text, "=" .. path, "t", env)
end
if not chunk then
  io.write("LOAD ERROR\t", tostring(err))
  os.exit(3)
end
local ok, hs = pcall(chunk)
if not ok then
  io.write("RUN ERROR\t", tostring(hs))
  os.exit(2)
end
if type(hs) ~= "table" then
  io.write("NOT A TABLE\t", tostring(hs))
  os.exit(4)
end
io.write(tostring(hs.status), "\t", tostring(hs.message))
"#;

/// Runs the health script of `kind` on `object` with `interpreter`:
/// (status, message).
fn run(interpreter: &str, kind: &str, object: &Value) -> (String, String) {
    let script = repo_root()
        .join("deploy/argocd/health")
        .join(format!("{}.lua", kind.to_lowercase()));
    assert!(script.exists(), "{} is missing", script.display());
    let program = HARNESS.replace("OBJECT", &lua_literal(object));
    let mut child = Command::new(interpreter)
        .arg("-")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {interpreter}: {e}; scripts/install-deps.sh installs it")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(program.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{interpreter} {}: {}\n{stdout}\n{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, message) = stdout.split_once('\t').expect("status<TAB>message");
    (status.to_owned(), message.to_owned())
}

/// The status both interpreters agree on, with its message.
fn health(kind: &str, object: &Value) -> (String, String) {
    let results: Vec<_> = INTERPRETERS.iter().map(|i| run(i, kind, object)).collect();
    assert_eq!(
        results[0], results[1],
        "lua5.1 and lua5.4 disagree on {kind} {object}"
    );
    results[0].clone()
}

/// An RFC 3339 UTC timestamp, whole seconds, `ago` seconds in the past.
fn ago(seconds: i64) -> String {
    let t = Timestamp::now() - SignedDuration::from_secs(seconds);
    Timestamp::from_second(t.as_second()).unwrap().to_string()
}

fn condition(type_: &str, status: &str, reason: &str, generation: i64, since: i64) -> Value {
    json!({
        "type": type_, "status": status, "reason": reason,
        "message": format!("{type_} says {reason}"),
        "observedGeneration": generation,
        "lastTransitionTime": ago(since),
    })
}

fn sample(kind: &str, generation: i64, created: i64, status: Option<Value>) -> Value {
    let mut object = json!({
        "apiVersion": "trunkline.io/v1alpha1",
        "kind": kind,
        "metadata": {
            "name": "sample", "generation": generation,
            "creationTimestamp": ago(created),
            "uid": "0b9f3c1e-0000-4000-8000-000000000001",
            "labels": { "app": "quote\" back\\slash é" },
        },
        "spec": {},
    });
    if let Some(status) = status {
        object["status"] = status;
    }
    object
}

/// The kinds the operator writes status for.
const OPERATOR_KINDS: [&str; 10] = [
    "LogicalInterface",
    "VirtualMachineInterface",
    "VirtualNetwork",
    "GatewayHAGroup",
    "VirtualGateway",
    "ExternalVTEP",
    "DCGateway",
    "SecurityGroup",
    "VirtualNetworkPolicy",
    "ClusterVirtualNetworkPolicy",
];

fn assert_health(kind: &str, what: &str, object: &Value, expected: &str, text: &str) {
    let (status, message) = health(kind, object);
    assert_eq!(status, expected, "{kind}, {what}: {message}");
    assert!(
        message.contains(text),
        "{kind}, {what}: message {message:?} lacks {text:?}"
    );
}

/// A GatewayHAGroup with no member active, or with two, is Degraded at
/// once: its instances are cut off, or two gateways answer for them.
#[test]
fn an_ha_group_without_exactly_one_active_member_is_degraded_at_once() {
    for (reason, text) in [
        ("NoActiveMember", "Ready is False (NoActiveMember)"),
        ("SplitBrain", "Ready is False (SplitBrain)"),
    ] {
        let group = sample(
            "GatewayHAGroup",
            1,
            60,
            Some(json!({ "observedGeneration": 1, "conditions": [
                condition("Accepted", "True", "Ok", 1, 5),
                condition("Programmed", "True", "Ok", 1, 5),
                condition("Ready", "False", reason, 1, 5),
            ]})),
        );
        assert_health("GatewayHAGroup", reason, &group, "Degraded", text);
    }
}

/// A network policy whose rule names a network that does not exist, or
/// that does not name the policy, is Degraded at once (a person must fix
/// the reference).
#[test]
fn a_network_policy_naming_a_missing_or_unattached_network_is_degraded_at_once() {
    for reason in ["NetworkNotFound", "NotAttached"] {
        let object = sample(
            "VirtualNetworkPolicy",
            1,
            60,
            Some(json!({ "observedGeneration": 1, "conditions": [
                condition("Accepted", "True", "Ok", 1, 5),
                condition("Ready", "False", reason, 1, 5),
            ]})),
        );
        let text = format!("Ready is False ({reason})");
        assert_health("VirtualNetworkPolicy", reason, &object, "Degraded", &text);
    }
    // The administrator's policy names networks of any namespace; one
    // that does not exist is the same fix.
    let object = sample(
        "ClusterVirtualNetworkPolicy",
        1,
        60,
        Some(json!({ "observedGeneration": 1, "conditions": [
            condition("Accepted", "True", "Ok", 1, 5),
            condition("Ready", "False", "NetworkNotFound", 1, 5),
        ]})),
    );
    assert_health(
        "ClusterVirtualNetworkPolicy",
        "NetworkNotFound",
        &object,
        "Degraded",
        "Ready is False (NetworkNotFound)",
    );
}

/// A VMI naming a SecurityGroup that does not exist, or a group whose rule
/// names one, is Degraded at once (a person must create the group or
/// change the reference); a group its nodes have not enforced yet is
/// Progressing.
#[test]
fn a_missing_security_group_is_degraded_at_once_and_pending_enforcement_progresses() {
    for kind in ["VirtualMachineInterface", "SecurityGroup"] {
        let object = sample(
            kind,
            1,
            60,
            Some(json!({ "observedGeneration": 1, "conditions": [
                condition("Accepted", "True", "Ok", 1, 5),
                condition("Ready", "False", "GroupNotFound", 1, 5),
            ]})),
        );
        let text = "Ready is False (GroupNotFound)";
        assert_health(kind, "GroupNotFound", &object, "Degraded", text);
    }
    let pending = sample(
        "SecurityGroup",
        1,
        60,
        Some(json!({ "observedGeneration": 1, "conditions": [
            condition("Accepted", "True", "Ok", 1, 5),
            condition("Enforced", "False", "Pending", 1, 5),
            condition("Ready", "False", "Pending", 1, 5),
        ]})),
    );
    let text = "Ready is False (Pending)";
    assert_health("SecurityGroup", "Pending", &pending, "Progressing", text);
}

/// A BGPPeer's status is the speaker's: an established session is
/// Healthy; an AS the peer refuses is Degraded at once (a person must fix
/// it); an unreachable peer is Progressing, Degraded only when it stays so.
#[test]
fn bgp_peers_follow_their_session() {
    let peer = |reason: &str, status: &str, since: i64| {
        sample(
            "BGPPeer",
            1,
            since + 5,
            Some(
                json!({ "observedGeneration": 1, "sessionState": "Active", "conditions": [
                    condition("Accepted", "True", "Ok", 1, since),
                    condition("Ready", status, reason, 1, since),
                ]}),
            ),
        )
    };
    let cases = [
        (
            "established",
            peer("Established", "True", 30),
            "Healthy",
            "Ready is True (Established)",
        ),
        (
            "AS refused",
            peer("PeerASMismatch", "False", 5),
            "Degraded",
            "PeerASMismatch",
        ),
        (
            "unreachable for 5 s",
            peer("PeerUnreachable", "False", 5),
            "Progressing",
            "PeerUnreachable",
        ),
        (
            "unreachable for an hour",
            peer("PeerUnreachable", "False", 3600),
            "Degraded",
            "since",
        ),
        (
            "just created",
            sample("BGPPeer", 1, 5, None),
            "Progressing",
            "Waiting for the trunkline BGP speaker",
        ),
    ];
    for (what, object, expected, text) in cases {
        assert_health("BGPPeer", what, &object, expected, text);
    }
}

#[test]
fn operator_kinds_are_healthy_progressing_or_degraded() {
    for kind in OPERATOR_KINDS {
        let check = |what: &str, object: Value, expected: &str, text: &str| {
            assert_health(kind, what, &object, expected, text)
        };
        check(
            "just created, no status",
            sample(kind, 1, 5, None),
            "Progressing",
            "Waiting for the trunkline operator",
        );
        check(
            "no status for an hour",
            sample(kind, 1, 3600, None),
            "Degraded",
            "is it running?",
        );
        check(
            "an empty status",
            sample(kind, 1, 5, Some(json!({}))),
            "Progressing",
            "Waiting",
        );
        let ready = json!({ "observedGeneration": 2, "conditions": [
            condition("Accepted", "True", "Ok", 2, 30),
            condition("ResolvedRefs", "True", "Ok", 2, 30),
            condition("Ready", "True", "Ok", 2, 30),
        ]});
        check(
            "ready at its generation",
            sample(kind, 2, 60, Some(ready.clone())),
            "Healthy",
            "Ready is True (Ok)",
        );
        check(
            "ready, but for an older generation",
            sample(kind, 3, 60, Some(ready)),
            "Progressing",
            "observe generation 3 (status is for generation 2)",
        );
        check(
            "ready, generation only at the top of the status",
            sample(
                kind,
                4,
                60,
                Some(json!({ "observedGeneration": 4, "conditions": [
                    { "type": "Ready", "status": "True", "reason": "Ok", "message": "" },
                ]})),
            ),
            "Healthy",
            "Ready is True (Ok)",
        );
        for reason in ["Conflict", "Invalid"] {
            check(
                &format!("not accepted: {reason}"),
                sample(
                    kind,
                    1,
                    60,
                    Some(json!({ "observedGeneration": 1, "conditions": [
                        condition("Accepted", "False", reason, 1, 5),
                        condition("Ready", "False", reason, 1, 5),
                    ]})),
                ),
                "Degraded",
                &format!("Accepted is False ({reason}): Accepted says {reason}"),
            );
        }
        check(
            "a reference not found yet",
            sample(
                kind,
                1,
                60,
                Some(json!({ "observedGeneration": 1, "conditions": [
                    condition("Accepted", "False", "RefNotFound", 1, 5),
                    condition("Ready", "False", "RefNotFound", 1, 5),
                ]})),
            ),
            "Progressing",
            "Ready is False (RefNotFound)",
        );
        check(
            "accepted, waiting for the node dataplanes",
            sample(
                kind,
                1,
                60,
                Some(json!({ "observedGeneration": 1, "conditions": [
                    condition("Accepted", "True", "Ok", 1, 20),
                    condition("Ready", "False", "Pending", 1, 20),
                ]})),
            ),
            "Progressing",
            "Ready is False (Pending)",
        );
        check(
            "still pending after an hour",
            sample(
                kind,
                1,
                7200,
                Some(json!({ "observedGeneration": 1, "conditions": [
                    condition("Accepted", "True", "Ok", 1, 3600),
                    condition("Ready", "False", "Pending", 1, 3600),
                ]})),
            ),
            "Degraded",
            "Ready is False (Pending): Ready says Pending (since ",
        );
        check(
            "conditions but no Ready yet",
            sample(
                kind,
                1,
                60,
                Some(json!({ "conditions": [condition("Accepted", "True", "Ok", 1, 5)] })),
            ),
            "Progressing",
            "Ready condition",
        );
        check(
            "Ready unknown",
            sample(
                kind,
                1,
                60,
                Some(json!({ "conditions": [condition("Ready", "Unknown", "Pending", 1, 5)] })),
            ),
            "Progressing",
            "Ready is Unknown",
        );
    }
}

#[test]
fn physical_routers_follow_their_node_dataplane() {
    let kind = "PhysicalRouter";
    let report = |ready: Value| {
        json!({
            "observedGeneration": 1, "programmedGeneration": 1, "backend": "AF_XDP",
            "ports": [{ "name": "eth1", "state": "Up" }],
            "conditions": [ready, condition("Programmed", "True", "Ok", 1, 30)],
        })
    };
    assert_health(
        kind,
        "no dataplane yet",
        &sample(kind, 1, 5, None),
        "Progressing",
        "Waiting for the node dataplane of this node",
    );
    assert_health(
        kind,
        "forwarding",
        &sample(
            kind,
            1,
            60,
            Some(report(condition("Ready", "True", "Ok", 1, 30))),
        ),
        "Healthy",
        "Ready is True (Ok)",
    );
    assert_health(
        kind,
        "a port is down",
        &sample(
            kind,
            1,
            60,
            Some(report(condition("Ready", "False", "PortNotUp", 1, 5))),
        ),
        "Degraded",
        "Ready is False (PortNotUp)",
    );
    assert_health(
        kind,
        "syncing",
        &sample(
            kind,
            1,
            60,
            Some(report(condition("Ready", "False", "NotSynced", 1, 5))),
        ),
        "Progressing",
        "NotSynced",
    );
    assert_health(
        kind,
        "a new spec not acted on yet",
        &sample(
            kind,
            2,
            60,
            Some(report(condition("Ready", "True", "Ok", 1, 30))),
        ),
        "Progressing",
        "observe generation 2",
    );
}

#[test]
fn lua_literals_are_lua() {
    assert_eq!(lua_literal(&json!(null)), "nil");
    assert_eq!(lua_literal(&json!([1, 2.5, true])), "{1, 2.5, true}");
    assert_eq!(
        lua_literal(&json!({ "a-b": "x\"y\n", "n": null })),
        r#"{["a-b"] = "x\"y\10"}"#
    );
    assert_eq!(lua_string("é"), r#""\195\169""#);
}

#[test]
fn argocd_cm_holds_every_script_for_every_kind() {
    let cm = yaml_file("deploy/argocd/argocd-cm.yaml");
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(cm["metadata"]["name"], "argocd-cm");
    let data = cm["data"].as_object().expect("data");
    let mut kinds = Vec::new();
    for entry in std::fs::read_dir(repo_root().join("crds")).unwrap() {
        let path = entry.unwrap().path();
        let crd = yaml_file(&format!(
            "crds/{}",
            path.file_name().unwrap().to_string_lossy()
        ));
        assert_eq!(crd["spec"]["group"], "trunkline.io");
        kinds.push(crd["spec"]["names"]["kind"].as_str().unwrap().to_owned());
    }
    assert_eq!(kinds.len(), 13);
    assert_eq!(data.len(), kinds.len(), "one health check per kind");
    for kind in &kinds {
        let key = format!("resource.customizations.health.trunkline.io_{kind}");
        let script = std::fs::read_to_string(
            repo_root()
                .join("deploy/argocd/health")
                .join(format!("{}.lua", kind.to_lowercase())),
        )
        .unwrap_or_else(|e| panic!("the health check of {kind}: {e}"));
        assert_eq!(
            data.get(&key).and_then(Value::as_str),
            Some(script.as_str()),
            "{key} differs from deploy/argocd/health/{}.lua: run deploy/generate.sh",
            kind.to_lowercase()
        );
    }
}
