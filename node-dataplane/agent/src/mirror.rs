//! The XDP tier's mirror thread: it keeps the kernel's maps equal to the
//! plan's tables, off the forwarding thread (an install waits for an RCU
//! grace period).
//!
//! ```text
//!  every TICK: plan (version, runtime cells) + the ports the forwarding thread runs on the tier
//!     changed? ──> Mirror::build (image, stable slots) ──> Mirror::install:
//!                  diff into the idle generation, flip tier_state, wait for the grace period
//!     ok:     Control::set_tier_installed (metrics read the kernel counters by slot)
//!     failed: every frame handed off to AF_XDP (Mirror::disable), the problem reported,
//!             tried again at the next change or after RETRY
//! ```
//!
//! A runtime cell of the tables (an underlay next hop written by the host
//! thread) moves `Tables::cells_version`, which makes the next tick build
//! and install the image again: one peer entry written, no table rebuild.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use trunkline_pipeline::kernel::{MapWriter, Mirror, TierMap, VMI_STATS_SIZE};
use trunkline_xdp::{TierError, TierMaps};

use crate::control::Control;

/// How often the thread looks for a change.
const TICK: Duration = Duration::from_millis(10);
/// How soon a failed install is tried again without a change.
const RETRY: Duration = Duration::from_secs(5);

/// The tier's maps as the swap's writer.
struct Writer<'a>(&'a TierMaps);

impl MapWriter for Writer<'_> {
    type Error = TierError;
    fn put(&mut self, map: TierMap, key: &[u8], value: &[u8]) -> Result<(), TierError> {
        self.0.update(map.name(), key, value)
    }
    fn remove(&mut self, map: TierMap, key: &[u8]) -> Result<(), TierError> {
        self.0.delete(map.name(), key)
    }
    fn set_state(&mut self, state: u32) -> Result<(), TierError> {
        self.0
            .update("tier_state", &0u32.to_ne_bytes(), &state.to_ne_bytes())
    }
    fn synchronize(&mut self) -> Result<(), TierError> {
        self.0.synchronize()
    }
    fn zero_vmi_counters(&mut self, slot: u32) -> Result<(), TierError> {
        self.0
            .update_per_cpu("tier_vmi_stats", &slot.to_ne_bytes(), &[0; VMI_STATS_SIZE])
    }
}

/// What an install was made from: a change of any part installs again.
#[derive(Clone, PartialEq, Eq)]
struct Source {
    plan: i64,
    cells: u64,
    ports: Vec<Option<u32>>,
}

/// Starts the mirror thread. It idles until the forwarding thread loads the
/// tier (never, in the AF_XDP-only and AF_PACKET modes).
pub fn spawn(control: Arc<Control>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("xdp-mirror".to_owned())
        .spawn(move || {
            let mut mirror = Mirror::default();
            let mut installed: Option<Source> = None;
            let mut failed_at: Option<Instant> = None;
            while !control.stopping() {
                std::thread::sleep(TICK);
                let Some(maps) = control.tier_maps() else {
                    continue;
                };
                let plan = control.plan();
                let (version, ports) = control.tier_ports();
                // The ports' indexes belong to one plan: wait for the
                // forwarding thread to match this one.
                if version != plan.version {
                    continue;
                }
                let source = Source {
                    plan: plan.version,
                    cells: plan.tables.cells_version(),
                    ports,
                };
                let retry = failed_at.is_some_and(|at| at.elapsed() >= RETRY);
                if installed.as_ref() == Some(&source) && !retry {
                    continue;
                }
                let started = Instant::now();
                let image = mirror.build(&plan.tables, |port| {
                    source.ports.get(usize::from(port.0)).copied().flatten()
                });
                let entries = image.len();
                match mirror.install(image, &mut Writer(&maps)) {
                    Ok(done) => {
                        tracing::info!(
                            version = plan.version,
                            generation = done.generation,
                            entries,
                            writes = done.writes,
                            ms = started.elapsed().as_millis() as u64,
                            "XDP tier: tables installed in the kernel"
                        );
                        control.set_tier_installed(
                            plan.version,
                            Ok(Arc::new(mirror.slots().clone())),
                        );
                        failed_at = None;
                    }
                    Err(e) => {
                        tracing::error!(version = plan.version, error = %e, "XDP tier: the tables could not be installed; every frame goes through AF_XDP meanwhile");
                        if let Err(e) = mirror.disable(&mut Writer(&maps)) {
                            tracing::error!(error = %e, "XDP tier: cannot hand every frame off");
                        }
                        control.set_tier_installed(plan.version, Err(e.to_string()));
                        failed_at = Some(Instant::now());
                    }
                }
                installed = Some(source);
            }
        })
}
