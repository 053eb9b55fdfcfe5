//! Observe PacketTraces: the API's filter on this node's ports, and the
//! XDP tier's share of an observation ([`KernelObservation`]: the verdicts
//! the tier makes in the kernel, read from its ring off the forwarding
//! path). The sampler itself (a bounded ring the forwarding thread offers
//! verdicts to, never waiting) is the pipeline's: `trunkline_pipeline::sample`.

use trunkline_api::packet_trace::ObserveFilter;
use trunkline_pipeline::kernel::observe as obs;
pub use trunkline_pipeline::sample::{
    Filter, Head, MAX_SAMPLES_PER_SECOND, Sample, Sampler, Session,
};

use crate::control::Plan;

/// A filter the node cannot apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// Not a port of the node.
    #[error("spec.filter.port: {0} is not a port of this node")]
    UnknownPort(String),
    /// Not an address.
    #[error("spec.filter.ip: {0:?} is not an IP address")]
    BadIp(String),
}

/// The filter of an API question, on `plan`'s ports.
pub fn filter(plan: &Plan, filter: Option<&ObserveFilter>) -> Result<Filter, FilterError> {
    let Some(f) = filter else {
        return Ok(Filter::default());
    };
    let port = match &f.port {
        Some(name) => Some(
            crate::trace::port_id(plan, name.as_str())
                .ok_or_else(|| FilterError::UnknownPort(name.to_string()))?,
        ),
        None => None,
    };
    let ip = match &f.ip {
        Some(ip) => Some(
            ip.as_str()
                .parse()
                .map_err(|_| FilterError::BadIp(ip.to_string()))?,
        ),
        None => None,
    };
    Ok(Filter {
        port,
        vlan: f.vlan,
        ip,
        drops_only: f.drops_only,
    })
}

/// The XDP tier's share of an observation: the filter written into the
/// tier's maps while it runs (off: one lookup and a branch per frame in
/// the program), its records drained from the tier's ring into the same
/// session, marked as decided in the XDP tier, and what the program could
/// not record (over its rate, ring full) counted as dropped.
///
/// ```text
///  arm: tier_observe <- filter (the port as its interface index)
///  every 100 ms: drain tier_obs_ring -> Record -> Sample -> Session::record
///  finish: tier_observe <- off, drain, + obs_cpu's not-recorded delta
/// ```
pub struct KernelObservation {
    maps: std::sync::Arc<trunkline_xdp::TierMaps>,
    /// The tier's interface index of each port (index: port id).
    ports: Vec<Option<u32>>,
    armed_ns: u64,
    not_recorded_before: u64,
}

impl KernelObservation {
    /// Arms the tier for `filter`; `None` when the filter's port is not one
    /// the tier serves (then only the pipeline sees its frames).
    pub fn arm(
        maps: std::sync::Arc<trunkline_xdp::TierMaps>,
        filter: Filter,
        ports: Vec<Option<u32>>,
    ) -> Result<Option<KernelObservation>, trunkline_xdp::TierError> {
        let ifindex = match filter.port {
            Some(port) => match ports.get(usize::from(port.0)).copied().flatten() {
                Some(i) => Some(i),
                None => return Ok(None),
            },
            None => None,
        };
        // The whole node's budget, shared by the CPUs.
        let cpus = u32::try_from(maps.cpus().max(1)).unwrap_or(u32::MAX);
        let rate = (MAX_SAMPLES_PER_SECOND / cpus).max(1);
        static EPOCH: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let value = obs::ObsFilter {
            filter,
            ifindex,
            rate,
            epoch: EPOCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
        }
        .encode();
        let mut kernel = KernelObservation {
            maps,
            ports,
            armed_ns: trunkline_xdp::tier::monotonic_ns(),
            not_recorded_before: 0,
        };
        kernel.not_recorded_before = kernel.not_recorded()?;
        // Records of an earlier observation, if any were left: not ours.
        kernel.maps.drain_observations(|_| {});
        kernel.maps.update("tier_observe", &ZERO, &value)?;
        Ok(Some(kernel))
    }

    fn not_recorded(&self) -> Result<u64, trunkline_xdp::TierError> {
        Ok(obs::not_recorded(
            &self.maps.lookup_per_cpu("tier_stats", &ZERO)?,
        ))
    }

    /// Moves the records waiting in the ring into `session`.
    pub fn drain(&self, session: &Session<'_>) {
        let port = |ifindex: u32| {
            self.ports
                .iter()
                .position(|p| *p == Some(ifindex))
                .and_then(|i| u16::try_from(i).ok())
                .map(trunkline_pipeline::PortId)
        };
        self.maps.drain_observations(|bytes| {
            match obs::Record::parse(bytes).and_then(|r| r.sample(self.armed_ns, port)) {
                Some(sample) => session.record(sample),
                // A record of a port that went away, or of a layout this
                // agent does not know: counted, not guessed.
                None => session.count_dropped(1),
            }
        });
    }

    /// Disarms the tier, takes the last records and counts what the
    /// program could not record.
    pub fn finish(self, session: &Session<'_>) {
        if let Err(e) = self
            .maps
            .update("tier_observe", &ZERO, &obs::ObsFilter::OFF)
        {
            tracing::warn!(error = %e, "could not disarm the XDP tier's observation");
        }
        self.drain(session);
        match self.not_recorded() {
            Ok(n) => session.count_dropped(n.saturating_sub(self.not_recorded_before)),
            Err(e) => {
                tracing::warn!(error = %e, "could not read the XDP tier's observation counters")
            }
        }
    }
}

const ZERO: [u8; 4] = [0; 4];
