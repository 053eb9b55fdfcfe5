//! Where the control-plane burst's time goes: the CPU seconds each process
//! of the control plane spent during it (API server, etcd, operator, agent,
//! and this benchmark's applier), and the mutating API requests it caused
//! per resource, subresource and verb (from the API server's own
//! `apiserver_request_total`).
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
