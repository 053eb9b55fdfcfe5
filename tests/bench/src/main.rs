//! `trunkline-bench`: flags in, [`trunkline_bench::run`] (or
//! [`trunkline_bench::ha::run`]) out; also the bare forwarder of mode (b)
//! (`trunkline-bench forward`) and the paced streams of the HA benchmark
//! (`pace`, `sink`), which run as child processes of the benchmark.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use trunkline_bench::modes::Mode;
use trunkline_bench::{Binaries, Options};

/// Forwarding benchmark of the trunkline node dataplane against baselines
/// measured in the same run, control-plane figures, and gateway HA loss
/// windows.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the benchmark; writes report.md, forwarding.tsv and forwarding.png.
    Run(RunFlags),
    /// The gateway HA benchmark (`make bench-ha`): loss windows of paced
    /// streams during failures, modes Fast and STP, keepalived baseline;
    /// writes ha.md.
    Ha(HaFlags),
    /// (internal) A paced UDP sender of the HA benchmark.
    Pace {
        /// Destination address:port.
        #[arg(long)]
        to: std::net::SocketAddr,
        /// Datagrams per second.
        #[arg(long, default_value_t = 1000)]
        rate: u32,
        /// For how long.
        #[arg(long)]
        seconds: f64,
    },
    /// (internal) The receiving end of a paced stream: arrival times.
    Sink {
        /// UDP port.
        #[arg(long)]
        port: u16,
        /// For how long.
        #[arg(long)]
        seconds: f64,
    },
    /// (internal) The bare AF_XDP forwarder of mode (b).
    Forward {
        /// Network namespace of the ports.
        #[arg(long)]
        netns: PathBuf,
        /// Pin to this core.
        #[arg(long)]
        core: Option<usize>,
        /// Ingress port.
        #[arg(long, default_value = "in")]
        ingress: String,
        /// Egress port.
        #[arg(long, default_value = "out")]
        egress: String,
    },
}

#[derive(Debug, Args)]
struct RunFlags {
    /// A short run for tests: 1 round, 1 s per run, 64 control-plane objects
    /// (explicit flags still win).
    #[arg(long)]
    smoke: bool,
    /// Interleaved rounds (default 3; smoke 1).
    #[arg(long)]
    rounds: Option<usize>,
    /// Measured seconds per run (default 5; smoke 1).
    #[arg(long)]
    duration: Option<f64>,
    /// Warm-up seconds per run (default 1; smoke 0.5).
    #[arg(long)]
    warmup: Option<f64>,
    /// Frame sizes in bytes.
    #[arg(long, value_delimiter = ',', default_values_t = [64usize, 512])]
    sizes: Vec<usize>,
    /// Modes: a (agent, AF_XDP only), b (bare AF_XDP), c (Linux), d (Open
    /// vSwitch), h (agent, XDP tier), i (bare XDP_REDIRECT); across two
    /// nodes: e (our overlay, VXLAN), f (Linux VXLAN), g (our overlay,
    /// MPLSoUDP), j and k (e and g with the XDP tier); SNAT to the fabric:
    /// l (agent, XDP tier) and m (Linux masquerade); o (h while an
    /// observation runs); p (h with both VMIs policed, 100 rules).
    #[arg(long, value_delimiter = ',', default_values_t = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "o", "p"].map(String::from))]
    modes: Vec<String>,
    /// Logical interfaces and VMIs of the control-plane measurement
    /// (default 4096; smoke 64; 0: skip).
    #[arg(long)]
    scale: Option<usize>,
    /// Seconds the control-plane measurement may wait.
    #[arg(long, default_value_t = 900)]
    scale_limit: u64,
    /// gobgpd (scripts/build-gobgp.sh prints its path): the control-plane
    /// measurement then also times route propagation, the VMIs' VPNv4
    /// routes from the speaker (trunkline-bgp) to FRR's bgpd.
    #[arg(long)]
    gobgpd: Option<PathBuf>,
    /// Output directory (default: target/bench of the repository).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Prefix of the namespaces (default: tb<pid>).
    #[arg(long)]
    prefix: Option<String>,
    /// Do not pin the generator and the devices to cores.
    #[arg(long)]
    no_pin: bool,
    /// Directory of trunkline-dataplane and trunkline-operator (default:
    /// this executable's).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// The command line to show in the report (default: this one).
    #[arg(long)]
    command: Option<String>,
}

#[derive(Debug, Args)]
struct HaFlags {
    /// Repetitions of each failure (at least 5 for the README's figures).
    #[arg(long, default_value_t = 5)]
    repetitions: usize,
    /// Datagrams per second of each stream.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// Mode Fast's hello (and keepalived's advert interval), ms.
    #[arg(long, default_value_t = 100)]
    hello: u64,
    /// Mode Fast's dead time, ms.
    #[arg(long, default_value_t = 300)]
    dead: u64,
    /// Modes: fast, stp, keepalived.
    #[arg(long, value_delimiter = ',', default_values_t = ["fast".to_owned(), "stp".to_owned(), "keepalived".to_owned()])]
    modes: Vec<String>,
    /// Output directory (default: target/bench of the repository).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Directory of trunkline-dataplane and trunkline-operator (default:
    /// this executable's).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// The command line to show in the report (default: this one).
    #[arg(long)]
    command: Option<String>,
}

fn this_command() -> String {
    let mut args: Vec<String> = std::env::args().collect();
    if let Some(first) = args.first_mut() {
        *first = "trunkline-bench".to_owned();
    }
    args.join(" ")
}

fn bin_dir(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    Ok(match given {
        Some(dir) => dir,
        None => std::env::current_exe()?
            .parent()
            .context("the executable's directory")?
            .to_path_buf(),
    })
}

fn ha(flags: HaFlags) -> anyhow::Result<()> {
    let bin_dir = bin_dir(flags.bin_dir)?;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let options = trunkline_bench::ha::HaOptions {
        repetitions: flags.repetitions.max(1),
        rate: flags.rate,
        hello: flags.hello,
        dead: flags.dead,
        modes: flags.modes,
        binaries: Binaries {
            agent: bin_dir.join("trunkline-dataplane"),
            operator: bin_dir.join("trunkline-operator"),
            speaker: bin_dir.join("trunkline-bgp"),
        },
        bench: std::env::current_exe()?,
        out: flags.out.unwrap_or_else(|| repo.join("target/bench")),
        command: flags.command.unwrap_or_else(this_command),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        tokio::select! {
            done = trunkline_bench::ha::run(&options) => done.map(drop).map_err(anyhow::Error::from),
            signal = interrupted() => Err(anyhow::anyhow!("stopped by {signal}")),
        }
    })
}

fn options(flags: RunFlags) -> anyhow::Result<Options> {
    let modes = flags
        .modes
        .iter()
        .map(|m| Mode::parse(m))
        .collect::<Result<Vec<_>, _>>()?;
    let bin_dir = match flags.bin_dir {
        Some(dir) => dir,
        None => std::env::current_exe()?
            .parent()
            .context("the executable's directory")?
            .to_path_buf(),
    };
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let command = flags.command.unwrap_or_else(|| {
        let mut args: Vec<String> = std::env::args().collect();
        if let Some(first) = args.first_mut() {
            *first = "trunkline-bench".to_owned();
        }
        args.join(" ")
    });
    let smoke = flags.smoke;
    Ok(Options {
        rounds: flags.rounds.unwrap_or(if smoke { 1 } else { 3 }),
        duration: Duration::from_secs_f64(flags.duration.unwrap_or(if smoke { 1.0 } else { 5.0 })),
        warmup: Duration::from_secs_f64(flags.warmup.unwrap_or(if smoke { 0.5 } else { 1.0 })),
        sizes: flags.sizes,
        modes,
        scale: flags.scale.unwrap_or(if smoke { 64 } else { 4096 }),
        scale_limit: Duration::from_secs(flags.scale_limit),
        gobgpd: flags.gobgpd,
        out: flags.out.unwrap_or_else(|| repo.join("target/bench")),
        prefix: flags
            .prefix
            .unwrap_or_else(|| format!("tb{}", std::process::id() % 1_000_000)),
        pin: !flags.no_pin,
        binaries: Binaries {
            agent: bin_dir.join("trunkline-dataplane"),
            operator: bin_dir.join("trunkline-operator"),
            speaker: bin_dir.join("trunkline-bgp"),
        },
        command,
    })
}

async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

fn forward(netns: &Path, core: Option<usize>, ingress: &str, egress: &str) -> anyhow::Result<()> {
    // Die with the benchmark, however it ends.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
    if let Some(core) = core {
        trunkline_bench::cpu::pin_current_thread(core)?;
    }
    static STOP: AtomicBool = AtomicBool::new(false);
    trunkline_bench::modes::bare::forward(netns, ingress, egress, &STOP)?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Forward {
            netns,
            core,
            ingress,
            egress,
        } => forward(&netns, core, &ingress, &egress),
        Command::Ha(flags) => ha(flags),
        Command::Pace { to, rate, seconds } => {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
            trunkline_bench::ha::stream::pace(to, rate, seconds)?;
            Ok(())
        }
        Command::Sink { port, seconds } => {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
            trunkline_bench::ha::stream::sink(port, seconds)?;
            Ok(())
        }
        Command::Run(flags) => {
            let options = options(flags)?;
            // One thread: children started with a parent-death signal (OVS,
            // the agent) are tied to this thread, which lives as long as the
            // process.
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let report = runtime.block_on(async {
                tokio::select! {
                    report = trunkline_bench::run(&options) => report.map_err(anyhow::Error::from),
                    signal = interrupted() => Err(anyhow::anyhow!("stopped by {signal}; everything started was cleaned up")),
                }
            })?;
            eprintln!(
                "[bench] report: {}",
                options.out.join("report.md").display()
            );
            if !report.failures.is_empty() {
                for (mode, why) in &report.failures {
                    eprintln!("[bench] {} could not run: {why}", mode.label());
                }
                anyhow::bail!("{} mode(s) could not run", report.failures.len());
            }
            Ok(())
        }
    }
}
