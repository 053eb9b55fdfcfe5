//! The BGP speaker: a `gobgpd` child process this process runs, watches and
//! drives over gRPC (a Unix socket), so that a dead speaker is restarted
//! and given every peer and route again without anyone's help.
//!
//! ```text
//!   controller tick ──> ensure_running ──(child gone or gRPC failed)──> spawn gobgpd
//!        │                                                               (parent_death: it dies
//!        │                                                               with us), StartBgp, forget
//!        │                                                               what it had
//!        ├──> sync_peers(desired)   AddPeer / DeletePeer  (diff with what it has)
//!        ├──> sync_paths(desired)   AddPathStream (batched) / DeletePath  (diff with what it has)
//!        ├──> learned()             ListPath GLOBAL VPNv4 + VPNv6
//!        └──> peer_states()         ListPeer
//!   gobgpd's log lines ──> per-peer last error (AS mismatch, notifications)
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;
use tonic::transport::{Channel, Endpoint};

use crate::gobgp::apipb::gobgp_api_client::GobgpApiClient;
use crate::gobgp::{self, GracefulRestart, PeerConfig, apipb};
use crate::parent_death;
use crate::vpn::{LearnedRoute, VpnRoute};

/// Why the speaker could not be driven.
#[derive(Debug, thiserror::Error)]
pub enum SpeakerError {
    /// gobgpd could not be started.
    #[error("starting {path}: {source}")]
    Spawn {
        /// The binary.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// gobgpd's API did not answer in time.
    #[error("gobgpd's API at {0} did not answer within 15 s")]
    NoApi(String),
    /// A gRPC call failed.
    #[error("gobgpd {call}: {status}")]
    Call {
        /// The call.
        call: &'static str,
        /// What gobgpd said.
        status: Box<tonic::Status>,
    },
}

fn call(call: &'static str) -> impl FnOnce(tonic::Status) -> SpeakerError {
    move |status| SpeakerError::Call {
        call,
        status: Box::new(status),
    }
}

/// How to run gobgpd.
#[derive(Clone, Debug)]
pub struct SpeakerConfig {
    /// The gobgpd binary.
    pub gobgpd: PathBuf,
    /// The Unix socket of its gRPC API.
    pub api_socket: PathBuf,
    /// A network namespace to run it in (`nsenter --net=`), for the lab.
    pub netns: Option<PathBuf>,
    /// Our BGP identifier.
    pub router_id: Ipv4Addr,
    /// Our default AS number.
    pub asn: u32,
    /// The TCP port it listens on for peers (179; -1: it does not listen).
    pub listen_port: i32,
    /// Graceful restart's restart time (seconds) advertised to peers;
    /// `None`: no graceful restart (a restart withdraws everything).
    pub graceful_restart: Option<u32>,
}

/// A peer's state as gobgpd reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerReport {
    /// `Idle`, `Connect`, `Active`, `OpenSent`, `OpenConfirm`, `Established`.
    pub state: String,
    /// Routes advertised to it.
    pub sent: u64,
    /// Routes received from it.
    pub received: u64,
    /// OPEN messages received from it (none: it never answered).
    pub opens_received: u64,
    /// The last error gobgpd logged about it.
    pub last_error: Option<String>,
}

/// gobgpd, supervised.
pub struct Speaker {
    config: SpeakerConfig,
    child: Option<Child>,
    client: Option<GobgpApiClient<Channel>>,
    peers: BTreeMap<IpAddr, PeerConfig>,
    paths: BTreeMap<VpnRoute, apipb::Path>,
    errors: Arc<Mutex<BTreeMap<IpAddr, String>>>,
    starts: u64,
    /// gobgpd was just started and has not been given its peers yet.
    fresh: bool,
}

impl Speaker {
    /// A speaker not started yet.
    pub fn new(config: SpeakerConfig) -> Self {
        Speaker {
            config,
            child: None,
            client: None,
            peers: BTreeMap::new(),
            paths: BTreeMap::new(),
            errors: Arc::default(),
            starts: 0,
            fresh: false,
        }
    }

    /// How many times gobgpd was started.
    pub fn starts(&self) -> u64 {
        self.starts
    }

    /// The gobgpd process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Stops gobgpd (and forgets what it had).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
        self.client = None;
        self.peers.clear();
        self.paths.clear();
    }

    /// Whether gobgpd runs and its API was answering at the last call.
    pub fn running(&mut self) -> bool {
        self.client.is_some()
            && self
                .child
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Starts gobgpd when it is not running (first start, it exited, or a
    /// call failed); `true` when it was (re)started.
    pub async fn ensure_running(&mut self) -> Result<bool, SpeakerError> {
        if let (Some(child), Some(_)) = (self.child.as_mut(), self.client.as_ref()) {
            match child.try_wait() {
                Ok(None) => return Ok(false),
                Ok(Some(status)) => tracing::warn!(%status, "gobgpd exited; restarting it"),
                Err(e) => tracing::warn!(error = %e, "gobgpd state unknown; restarting it"),
            }
        }
        self.stop().await;
        let _ = std::fs::remove_file(&self.config.api_socket);
        if let Some(dir) = self.config.api_socket.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let api = format!("unix://{}", self.config.api_socket.display());
        // Through this binary's shim: gobgpd dies with us, even by SIGKILL.
        let mut command = match &self.config.netns {
            Some(netns) => {
                let mut c = parent_death::command(Path::new("nsenter"));
                c.arg(format!("--net={}", netns.display()))
                    .arg("--")
                    .arg(&self.config.gobgpd);
                c
            }
            None => parent_death::command(&self.config.gobgpd),
        };
        command
            .args([
                "--api-hosts",
                &api,
                "--pprof-disable",
                "--log-plain",
                "--log-level",
                "info",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|source| SpeakerError::Spawn {
            path: self.config.gobgpd.display().to_string(),
            source,
        })?;
        for out in [
            child
                .stdout
                .take()
                .map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child
                .stderr
                .take()
                .map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        ]
        .into_iter()
        .flatten()
        {
            let errors = self.errors.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(out).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::info!(target: "gobgpd", "{line}");
                    note_error(&errors, &line);
                }
            });
        }
        self.child = Some(child);
        self.starts += 1;
        let client = connect(&self.config.api_socket).await?;
        self.client = Some(client);
        let global = apipb::Global {
            asn: self.config.asn,
            router_id: self.config.router_id.to_string(),
            listen_port: self.config.listen_port,
            ..Default::default()
        };
        self.api()?
            .start_bgp(apipb::StartBgpRequest {
                global: Some(global),
            })
            .await
            .map_err(call("StartBgp"))?;
        self.fresh = true;
        tracing::info!(
            pid = self.pid(),
            starts = self.starts,
            router_id = %self.config.router_id,
            asn = self.config.asn,
            "gobgpd started"
        );
        Ok(true)
    }

    fn api(&mut self) -> Result<&mut GobgpApiClient<Channel>, SpeakerError> {
        self.client
            .as_mut()
            .ok_or_else(|| SpeakerError::NoApi(self.config.api_socket.display().to_string()))
    }

    /// Marks the speaker broken after a failed call: the next
    /// [`Speaker::ensure_running`] restarts it and pushes everything again.
    pub fn failed(&mut self) {
        self.client = None;
    }

    /// Makes gobgpd's peers `desired` (a changed peer is deleted and added
    /// again).
    pub async fn sync_peers(
        &mut self,
        desired: &BTreeMap<IpAddr, PeerConfig>,
    ) -> Result<(), SpeakerError> {
        let stale: Vec<IpAddr> = self
            .peers
            .iter()
            .filter(|(address, config)| desired.get(address) != Some(config))
            .map(|(address, _)| *address)
            .collect();
        for address in stale {
            self.api()?
                .delete_peer(apipb::DeletePeerRequest {
                    address: address.to_string(),
                    interface: String::new(),
                })
                .await
                .map_err(call("DeletePeer"))?;
            self.peers.remove(&address);
            self.errors.lock().expect("errors").remove(&address);
        }
        // The peers given to a gobgpd just started are told it restarted
        // (graceful restart): they keep our routes until it sends them.
        let gr = self
            .config
            .graceful_restart
            .map(|restart_time| GracefulRestart {
                restart_time,
                restarting: self.fresh,
            });
        self.fresh = false;
        for (address, config) in desired {
            if self.peers.contains_key(address) {
                continue;
            }
            self.api()?
                .add_peer(apipb::AddPeerRequest {
                    peer: Some(gobgp::peer(config, gr)),
                })
                .await
                .map_err(call("AddPeer"))?;
            self.peers.insert(*address, config.clone());
        }
        Ok(())
    }

    /// Makes gobgpd's local routes `desired`.
    pub async fn sync_paths(&mut self, desired: &BTreeSet<VpnRoute>) -> Result<(), SpeakerError> {
        let stale: Vec<VpnRoute> = self
            .paths
            .keys()
            .filter(|r| !desired.contains(*r))
            .cloned()
            .collect();
        for route in stale {
            let path = self.paths.get(&route).cloned();
            self.api()?
                .delete_path(apipb::DeletePathRequest {
                    table_type: apipb::TableType::Global as i32,
                    family: path.as_ref().and_then(|p| p.family),
                    path,
                    ..Default::default()
                })
                .await
                .map_err(call("DeletePath"))?;
            self.paths.remove(&route);
        }
        // New routes in one AddPathStream call (messages of
        // PATHS_PER_MESSAGE paths), not one AddPath round trip each: a
        // burst of VMIs programmed together costs one call.
        let added: Vec<(VpnRoute, apipb::Path)> = desired
            .iter()
            .filter(|r| !self.paths.contains_key(*r))
            .map(|r| (r.clone(), gobgp::path(r)))
            .collect();
        if !added.is_empty() {
            let requests = add_path_stream(added.iter().map(|(_, p)| p.clone()));
            self.api()?
                .add_path_stream(futures::stream::iter(requests))
                .await
                .map_err(call("AddPathStream"))?;
            tracing::debug!(paths = added.len(), "paths added");
            self.paths.extend(added);
        }
        Ok(())
    }

    /// How many routes gobgpd holds from us.
    pub fn advertised(&self) -> usize {
        self.paths.len()
    }

    /// The VPN routes learned from peers (best paths of the global RIB).
    pub async fn learned(&mut self) -> Result<Vec<LearnedRoute>, SpeakerError> {
        let mut out = Vec::new();
        for ipv6 in [false, true] {
            let mut stream = self
                .api()?
                .list_path(apipb::ListPathRequest {
                    table_type: apipb::TableType::Global as i32,
                    family: Some(gobgp::vpn_family(ipv6)),
                    ..Default::default()
                })
                .await
                .map_err(call("ListPath"))?
                .into_inner();
            while let Some(response) = stream.message().await.map_err(call("ListPath"))? {
                let Some(destination) = response.destination else {
                    continue;
                };
                out.extend(
                    destination
                        .paths
                        .iter()
                        .filter(|p| p.best)
                        .filter_map(gobgp::learned),
                );
            }
        }
        Ok(out)
    }

    /// Every configured peer's state.
    pub async fn peer_reports(&mut self) -> Result<BTreeMap<IpAddr, PeerReport>, SpeakerError> {
        let mut stream = self
            .api()?
            .list_peer(apipb::ListPeerRequest {
                address: String::new(),
                enable_advertised: true,
            })
            .await
            .map_err(call("ListPeer"))?
            .into_inner();
        let errors = self.errors.lock().expect("errors").clone();
        let mut out = BTreeMap::new();
        while let Some(response) = stream.message().await.map_err(call("ListPeer"))? {
            let Some(peer) = response.peer else { continue };
            let Some(address) = peer
                .conf
                .as_ref()
                .and_then(|c| c.neighbor_address.parse::<IpAddr>().ok())
            else {
                continue;
            };
            let state = peer.state.unwrap_or_default();
            let (mut sent, mut received) = (0, 0);
            for afi in &peer.afi_safis {
                if let Some(s) = &afi.state {
                    sent += s.advertised;
                    received += s.received;
                }
            }
            let opens_received = state
                .messages
                .as_ref()
                .and_then(|m| m.received)
                .map_or(0, |m| m.open);
            out.insert(
                address,
                PeerReport {
                    state: session_state(state.session_state).into(),
                    sent,
                    received,
                    opens_received,
                    last_error: errors.get(&address).cloned(),
                },
            );
        }
        Ok(out)
    }
}

/// Paths per AddPathStream message: about 60 KiB of VPNv4 paths, far
/// below gRPC's default 4 MiB message limit.
const PATHS_PER_MESSAGE: usize = 256;

/// The AddPathStream messages (global table) carrying `paths`, in order.
fn add_path_stream(paths: impl Iterator<Item = apipb::Path>) -> Vec<apipb::AddPathStreamRequest> {
    let paths: Vec<apipb::Path> = paths.collect();
    paths
        .chunks(PATHS_PER_MESSAGE)
        .map(|chunk| apipb::AddPathStreamRequest {
            table_type: apipb::TableType::Global as i32,
            vrf_id: String::new(),
            paths: chunk.to_vec(),
        })
        .collect()
}

/// The API's session state as RFC 4271 names it.
fn session_state(state: i32) -> &'static str {
    use apipb::peer_state::SessionState;
    match SessionState::try_from(state).unwrap_or(SessionState::Unknown) {
        SessionState::Unknown => "Unknown",
        SessionState::Idle => "Idle",
        SessionState::Connect => "Connect",
        SessionState::Active => "Active",
        SessionState::Opensent => "OpenSent",
        SessionState::Openconfirm => "OpenConfirm",
        SessionState::Established => "Established",
    }
}

/// Remembers what a gobgpd log line says went wrong with a peer (its
/// `Key=<address>` field): an AS mismatch, a notification received.
fn note_error(errors: &Mutex<BTreeMap<IpAddr, String>>, line: &str) {
    let Some(address) = line
        .split_whitespace()
        .find_map(|f| f.strip_prefix("Key="))
        .and_then(|k| k.trim_matches('"').parse::<IpAddr>().ok())
    else {
        return;
    };
    let lower = line.to_ascii_lowercase();
    let refused = lower.contains("as number mismatch")
        || lower.contains("bad peer as")
        || (lower.contains("notification") && (lower.contains("code=2") || lower.contains("open")));
    let what = if refused {
        Some(line.to_owned())
    } else if lower.contains("peer up") {
        None
    } else {
        return;
    };
    let mut errors = errors.lock().expect("errors");
    match what {
        Some(line) => {
            errors.insert(address, line);
        }
        None => {
            errors.remove(&address);
        }
    }
}

async fn connect(socket: &std::path::Path) -> Result<GobgpApiClient<Channel>, SpeakerError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let path = socket.to_owned();
        let endpoint = Endpoint::from_static("http://gobgpd.local");
        let connector = tower::service_fn(move |_: tonic::transport::Uri| {
            let path = path.clone();
            async move {
                tokio::net::UnixStream::connect(path)
                    .await
                    .map(TokioIo::new)
            }
        });
        match endpoint.connect_with_connector(connector).await {
            Ok(channel) => return Ok(GobgpApiClient::new(channel)),
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::debug!(error = %e, "waiting for gobgpd's API");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(_) => return Err(SpeakerError::NoApi(socket.display().to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_paths_go_in_few_stream_messages_in_order() {
        let route = |i: u32| VpnRoute {
            rd: "10.3.0.100:7".parse().expect("rd"),
            prefix: format!("10.{}.{}.{}/32", i >> 16, (i >> 8) & 0xff, i & 0xff)
                .parse()
                .expect("prefix"),
            label: 16 + i,
            next_hop: "10.3.0.1".parse().expect("ip"),
            route_targets: ["target:64512:100".parse().expect("rt")].into(),
            encapsulation: trunkline_model::Encapsulation::MplsOverUdp,
        };
        let paths: Vec<apipb::Path> = (0..1000).map(|i| gobgp::path(&route(i))).collect();
        let messages = add_path_stream(paths.clone().into_iter());
        assert_eq!(
            messages.iter().map(|m| m.paths.len()).collect::<Vec<_>>(),
            [256, 256, 256, 232]
        );
        assert!(
            messages
                .iter()
                .all(|m| m.table_type == apipb::TableType::Global as i32 && m.vrf_id.is_empty())
        );
        let sent: Vec<apipb::Path> = messages.into_iter().flat_map(|m| m.paths).collect();
        assert_eq!(sent, paths, "every path once, in order");
        assert!(add_path_stream(std::iter::empty()).is_empty());
    }

    #[test]
    fn log_lines_about_a_peer_set_and_clear_its_error() {
        let errors = Mutex::new(BTreeMap::new());
        note_error(
            &errors,
            r#"time="x" level=warning msg="sent notification" Code=2 Data="as number mismatch expected 65001, received 65002" Key=10.3.0.200 State=BGP_FSM_OPENSENT Topic=Peer"#,
        );
        let key: IpAddr = "10.3.0.200".parse().expect("ip");
        assert!(errors.lock().expect("errors")[&key].contains("mismatch"));
        note_error(
            &errors,
            r#"level=info msg="Peer Up" Key=10.3.0.200 State=BGP_FSM_OPENCONFIRM Topic=Peer"#,
        );
        assert!(errors.lock().expect("errors").is_empty());
    }
}
