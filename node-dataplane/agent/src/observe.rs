//! Observe PacketTraces: the API's filter on this node's ports. The sampler
//! itself (a bounded ring the forwarding thread offers verdicts to, never
//! waiting) is the pipeline's: `trunkline_pipeline::sample`.

use trunkline_api::packet_trace::ObserveFilter;
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
