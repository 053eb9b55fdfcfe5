//! Where the control-plane burst's time goes: the CPU seconds each process
//! of the control plane spent during it (API server, etcd, operator, agent,
//! and this benchmark's applier), and the mutating API requests it caused
//! per resource, subresource and verb (from the API server's own
//! `apiserver_request_total`); and for the single changes after it, what
//! the agent and the operator did per change ([`counters`]: builds, passes,
//! reports, writes, read from their `/metrics`).
//!
//! On a machine with C cores the burst cannot end before the sum of those
//! CPU seconds divided by C: the figures say which process to make cheaper
//! (or which requests to avoid) to shorten it.

use std::collections::BTreeMap;
use std::path::Path;

use crate::Error;
use crate::cpu::process_seconds;

/// The API group of trunkline's kinds.
const GROUP: &str = "trunkline.io";
/// The verbs that write.
const WRITES: [&str; 5] = ["POST", "PUT", "PATCH", "APPLY", "DELETE"];

/// The processes of the control plane, by role.
#[derive(Clone, Debug, Default)]
pub struct Processes {
    /// (role, process id) pairs.
    pub pids: Vec<(&'static str, u32)>,
}

impl Processes {
    /// The API server and etcd from the control plane's state directory
    /// (`<component>.pid` files), the operator and the agent by id, and
    /// this process (the applier).
    pub fn find(state_dir: &Path, operator: Option<u32>, agent: Option<u32>) -> Self {
        let recorded = |component: &str| {
            std::fs::read_to_string(state_dir.join(format!("{component}.pid")))
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
        };
        let mut pids = Vec::new();
        for (role, pid) in [
            ("kube-apiserver", recorded("kube-apiserver")),
            ("etcd", recorded("etcd")),
            ("operator", operator),
            ("agent", agent),
            ("applier (this benchmark)", Some(std::process::id())),
        ] {
            if let Some(pid) = pid {
                pids.push((role, pid));
            }
        }
        Self { pids }
    }

    /// Each process's CPU seconds now (none for one that is gone).
    pub fn seconds(&self) -> Vec<(&'static str, Option<f64>)> {
        self.pids
            .iter()
            .map(|&(role, pid)| (role, process_seconds(pid)))
            .collect()
    }
}

/// CPU seconds per role over an interval.
pub fn cpu_between(
    before: &[(&'static str, Option<f64>)],
    after: &[(&'static str, Option<f64>)],
) -> Vec<(String, f64)> {
    before
        .iter()
        .zip(after)
        .filter_map(|(&(role, b), &(_, a))| Some((role.to_owned(), a? - b?)))
        .collect()
}

/// Mutating requests to trunkline's kinds, by (resource, subresource, verb).
pub type Requests = BTreeMap<(String, String, String), u64>;

/// Reads the API server's request counters.
pub async fn requests(client: &kube::Client) -> Result<Requests, Error> {
    let request = http::Request::get("/metrics")
        .body(Vec::new())
        .map_err(|e| Error::Options(format!("metrics request: {e}")))?;
    let text = client.request_text(request).await?;
    Ok(parse_requests(&text))
}

/// Parses `apiserver_request_total` lines of trunkline's group, writes only.
pub fn parse_requests(text: &str) -> Requests {
    let mut out = Requests::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let label = |name: &str| {
            labels.split(',').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                (k == name).then(|| v.trim_matches('"').to_owned())
            })
        };
        if label("group").as_deref() != Some(GROUP) {
            continue;
        }
        let verb = label("verb").unwrap_or_default();
        if !WRITES.contains(&verb.as_str()) {
            continue;
        }
        let key = (
            label("resource").unwrap_or_default(),
            label("subresource").unwrap_or_default(),
            verb,
        );
        *out.entry(key).or_default() += value as u64;
    }
    out
}

/// The counters of the agent and the operator that say where a change's
/// time goes: (what, agent or operator, sample name, label filter).
const COUNTERS: [(&str, bool, &str, &str); 9] = [
    (
        "agent builds, new tables",
        true,
        "trunkline_dataplane_compile_wakes_total",
        "outcome=\"build_swapped\"",
    ),
    (
        "agent builds, same tables",
        true,
        "trunkline_dataplane_compile_wakes_total",
        "outcome=\"build_unchanged\"",
    ),
    (
        "agent wake-ups without a build",
        true,
        "trunkline_dataplane_compile_wakes_total",
        "outcome=\"watermarks_only\"",
    ),
    (
        "agent build seconds",
        true,
        "trunkline_dataplane_build_seconds_total",
        "",
    ),
    (
        "agent reports written",
        true,
        "trunkline_dataplane_reports_total",
        "",
    ),
    (
        "operator passes",
        false,
        "trunkline_operator_reconcile_runs_total",
        "",
    ),
    (
        "operator pass seconds",
        false,
        "trunkline_operator_reconcile_duration_seconds_sum",
        "",
    ),
    (
        "operator status writes",
        false,
        "trunkline_operator_status_writes_total",
        "",
    ),
    (
        "operator label writes",
        false,
        "trunkline_operator_label_writes_total",
        "",
    ),
];

/// Reads [`COUNTERS`] from the agent's and the operator's `/metrics`
/// pages (the sum over the samples of a name whose labels hold the
/// filter); a counter a process does not have is left out.
pub fn counters(agent: &str, operator: &str) -> BTreeMap<&'static str, f64> {
    let mut out = BTreeMap::new();
    for (what, of_agent, name, filter) in COUNTERS {
        let text = if of_agent { agent } else { operator };
        let mut sum = None;
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((sample, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let (sample_name, labels) = sample.split_once('{').unwrap_or((sample, ""));
            if sample_name != name || !labels.contains(filter) {
                continue;
            }
            if let Ok(v) = value.trim().parse::<f64>() {
                *sum.get_or_insert(0.0) += v;
            }
        }
        if let Some(sum) = sum {
            out.insert(what, sum);
        }
    }
    out
}

/// The growth of each counter between two readings.
pub fn counters_between(
    before: &BTreeMap<&'static str, f64>,
    after: &BTreeMap<&'static str, f64>,
) -> Vec<(String, f64)> {
    after
        .iter()
        .filter_map(|(what, a)| Some((what.to_string(), a - before.get(what)?)))
        .collect()
}

/// The requests made between two readings (counters only grow).
pub fn requests_between(before: &Requests, after: &Requests) -> Requests {
    after
        .iter()
        .filter_map(|(key, &a)| {
            let d = a.saturating_sub(before.get(key).copied().unwrap_or(0));
            (d > 0).then(|| (key.clone(), d))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_sum_their_samples_and_skip_what_a_process_lacks() {
        let agent = "# HELP x\ntrunkline_dataplane_compile_wakes_total{outcome=\"build_swapped\"} 3\ntrunkline_dataplane_compile_wakes_total{outcome=\"watermarks_only\"} 5\ntrunkline_dataplane_build_seconds_total 0.25\n";
        let operator = "trunkline_operator_status_writes_total{kind=\"VirtualMachineInterface\"} 4\ntrunkline_operator_status_writes_total{kind=\"LogicalInterface\"} 2\ntrunkline_operator_reconcile_runs_total 7\n";
        let read = counters(agent, operator);
        assert_eq!(read["agent builds, new tables"], 3.0);
        assert_eq!(read["agent wake-ups without a build"], 5.0);
        assert_eq!(read["agent build seconds"], 0.25);
        assert_eq!(read["operator status writes"], 6.0);
        assert_eq!(read["operator passes"], 7.0);
        assert!(!read.contains_key("agent reports written"));
        let mut later = read.clone();
        later.insert("operator passes", 10.0);
        let grown = counters_between(&read, &later);
        assert!(grown.contains(&("operator passes".to_owned(), 3.0)));
    }

    #[test]
    fn only_trunkline_writes_are_counted_and_codes_are_summed() {
        let text = r#"# HELP apiserver_request_total x
apiserver_request_total{code="200",component="apiserver",dry_run="",group="trunkline.io",resource="virtualmachineinterfaces",scope="resource",subresource="status",verb="APPLY",version="v1alpha1"} 10
apiserver_request_total{code="409",component="apiserver",dry_run="",group="trunkline.io",resource="virtualmachineinterfaces",scope="resource",subresource="status",verb="APPLY",version="v1alpha1"} 2
apiserver_request_total{code="200",component="apiserver",dry_run="",group="trunkline.io",resource="virtualmachineinterfaces",scope="resource",subresource="",verb="PATCH",version="v1alpha1"} 5
apiserver_request_total{code="200",component="apiserver",dry_run="",group="trunkline.io",resource="logicalinterfaces",scope="cluster",subresource="",verb="WATCH",version="v1alpha1"} 7
apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="events",scope="resource",subresource="",verb="POST",version="v1"} 9
"#;
        let parsed = parse_requests(text);
        assert_eq!(parsed.len(), 2, "{parsed:?}");
        let status = (
            "virtualmachineinterfaces".to_owned(),
            "status".to_owned(),
            "APPLY".to_owned(),
        );
        assert_eq!(parsed[&status], 12);
        let mut later = parsed.clone();
        *later.get_mut(&status).unwrap() += 3;
        let between = requests_between(&parsed, &later);
        assert_eq!(between.len(), 1);
        assert_eq!(between[&status], 3);
    }
}
