//! `trunkline-lab`: the lab from a shell (`scripts/lab.sh` runs it). Parses
//! the command line and calls the `trunkline_lab` library; every part's
//! `key=value` syntax is documented in `trunkline_lab::spec::text`.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use trunkline_lab::{
    DcGatewayRoute, DcGatewaySpec, FabricHostSpec, Frr, InstanceSpec, Lab, LabSpec, Limit,
    NodeSpec, TrunkSpec, VtepSpec,
};

/// How parts are written on the command line.
const PARTS_HELP: &str = "Parts, one argument each (repeat the option for more):
  --node     name=gw1,underlay=10.0.0.1/24,underlay=fd00:f::1/64,trunk=eth1,trunk=eth2
  --instance name=bms1,node=gw1,port=eth1,vlan=100,ip=192.168.1.10/24,ip=fd00:1::10/64,
             mac=02:00:00:00:01:01,gw=192.168.1.1,gw6=fd00:1::1      (no ip=: a DHCP client)
  --host     name=pub,ip=10.0.0.253/24,route=192.168.1.0/24@10.0.0.1
  --vtep     name=vtep1,local=10.0.0.100/24,vni=5001,remote=10.0.0.1,ip=192.168.1.50/24
  --dc-gateway name=dcgw,local=10.0.0.254/24,host=ext,host-ip=203.0.113.10/24 (outside=203.0.113.1/24)";

/// The trunkline network-namespace lab.
#[derive(Parser)]
#[command(after_help = PARTS_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

/// The parts of a lab given on the command line.
#[derive(clap::Args)]
struct Parts {
    /// A YAML or JSON spec file (the parts below are added to it).
    #[arg(long)]
    spec: Option<PathBuf>,
    /// MTU of the fabric.
    #[arg(long)]
    fabric_mtu: Option<u32>,
    /// A gateway node.
    #[arg(long = "node")]
    nodes: Vec<NodeSpec>,
    /// A remote instance.
    #[arg(long = "instance")]
    instances: Vec<InstanceSpec>,
    /// A host on the fabric.
    #[arg(long = "host")]
    hosts: Vec<FabricHostSpec>,
    /// A kernel VXLAN VTEP on the fabric.
    #[arg(long = "vtep")]
    vteps: Vec<VtepSpec>,
    /// A DC gateway on the fabric (MPLS over UDP) with a host behind it.
    #[arg(long = "dc-gateway")]
    dc_gateways: Vec<DcGatewaySpec>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build a lab (removing any lab of that prefix first).
    #[command(after_help = PARTS_HELP)]
    Up {
        /// Prefix of its namespaces.
        #[arg(long)]
        prefix: String,
        #[command(flatten)]
        parts: Parts,
    },
    /// Remove the lab: every namespace <prefix>-*.
    Down {
        /// The lab's prefix.
        #[arg(long)]
        prefix: String,
    },
    /// Run a command in namespace <prefix>-NAME (a node, instance, host,
    /// VTEP, `fab`, or a switch `<node>-<port>`).
    Exec {
        /// The lab's prefix.
        #[arg(long)]
        prefix: String,
        /// The lab-relative namespace name.
        name: String,
        /// The command and its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
    /// Print the lab's spec (JSON) and its namespaces.
    Show {
        /// The lab's prefix.
        #[arg(long)]
        prefix: String,
    },
    /// Add a gateway node to a running lab.
    AddNode {
        /// The lab's prefix.
        #[arg(long)]
        prefix: String,
        /// The node.
        node: NodeSpec,
    },
    /// Add a trunk port (and its switch) to a node of a running lab.
    AddPort {
        /// The lab's prefix.
        #[arg(long)]
        prefix: String,
        /// The node.
        node: String,
        /// The port's name (eth2, ...).
        port: String,
        /// Its MAC.
        #[arg(long)]
        mac: Option<String>,
        /// Its MTU.
        #[arg(long)]
        mtu: Option<u32>,
    },
    /// Add a remote instance to a running lab.
    AddInstance {
        /// The lab's prefix.
        #[arg(long)]
        prefix: String,
        /// The instance.
        instance: InstanceSpec,
    },
    /// Remove a remote instance from a running lab.
    RemoveInstance {
        /// The lab's prefix.
        #[arg(long)]
        prefix: String,
        /// Its name.
        name: String,
    },
    /// Add a host on the fabric of a running lab.
    AddHost {
        /// The lab's prefix.
        #[arg(long)]
        prefix: String,
        /// The host.
        host: FabricHostSpec,
    },
    /// Add a kernel VXLAN VTEP to a running lab.
    AddVtep {
        /// The lab's prefix.
        #[arg(long)]
        prefix: String,
        /// The VTEP.
        vtep: VtepSpec,
    },
    /// Route destination TO of DC gateway GATEWAY into the overlay: MPLS
    /// over UDP to gateway node address NODE with LABEL (an instance's
    /// routed label, e.g. as the DC gateway's BGP learned it).
    AddDcGatewayRoute {
        /// The lab's prefix.
        #[arg(long)]
        prefix: String,
        /// The DC gateway's name.
        gateway: String,
        /// The destination prefix (198.51.100.70/32).
        to: String,
        /// The gateway node's underlay address.
        node: std::net::IpAddr,
        /// The MPLS label.
        label: u32,
    },
    /// Start FRR (zebra + bgpd) in namespace <prefix>-NAME with the bgpd
    /// configuration CONFIG, in FRR path space <prefix>-NAME (`vtysh -N
    /// <prefix>-NAME` reaches it); it keeps running until `frr-down`.
    FrrUp {
        /// The lab's prefix.
        #[arg(long)]
        prefix: String,
        /// The lab-relative namespace name (a DC gateway).
        name: String,
        /// bgpd's configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Stop the FRR `frr-up` started in NAME.
    FrrDown {
        /// The lab's prefix.
        #[arg(long)]
        prefix: String,
        /// The lab-relative namespace name.
        name: String,
    },
    /// Capture with tshark and print each frame's fields as JSON, one line each.
    Capture {
        /// The lab's prefix.
        #[arg(long)]
        prefix: String,
        /// The lab-relative namespace name.
        name: String,
        /// The interface.
        iface: String,
        /// Capture filter (pcap-filter syntax).
        filter: String,
        /// Stop after this many frames.
        #[arg(long)]
        count: Option<u32>,
        /// Stop after this many seconds.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// tshark decode-as rules (`udp.port==6635,mpls`).
        #[arg(long = "decode-as")]
        decode_as: Vec<String>,
        /// tshark fields to print.
        #[arg(long = "field", required = true)]
        fields: Vec<String>,
    },
}

fn spec_of(parts: Parts) -> Result<LabSpec> {
    let mut spec = match &parts.spec {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_saphyr::from_str::<LabSpec>(&text)
                .with_context(|| format!("{} is not a lab spec", path.display()))?
        }
        None => LabSpec::new(),
    };
    if let Some(mtu) = parts.fabric_mtu {
        spec.fabric.mtu = mtu;
    }
    spec.nodes.extend(parts.nodes);
    spec.instances.extend(parts.instances);
    spec.hosts.extend(parts.hosts);
    spec.vteps.extend(parts.vteps);
    spec.dc_gateways.extend(parts.dc_gateways);
    Ok(spec)
}

fn log(line: &str) {
    eprintln!("[lab] {line}");
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Up { prefix, parts } => {
            let lab = Lab::up_named(&prefix, spec_of(parts)?)?;
            let spec = lab.spec();
            for n in &spec.nodes {
                let ports: Vec<_> = n.trunks.iter().map(|t| t.name.as_str()).collect();
                log(&format!(
                    "node {} (namespace {}): eth0 on the fabric {:?}, trunks {ports:?}",
                    n.name,
                    lab.namespace(&n.name),
                    n.underlay
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                ));
            }
            for i in &spec.instances {
                log(&format!(
                    "instance {} behind {}/{} VLAN {}: {:?} (namespace {})",
                    i.name,
                    i.node,
                    i.port,
                    i.vlan,
                    i.addresses
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>(),
                    lab.namespace(&i.name)
                ));
            }
            for h in &spec.hosts {
                log(&format!(
                    "fabric host {} {:?} (namespace {})",
                    h.name,
                    h.addresses
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>(),
                    lab.namespace(&h.name)
                ));
            }
            for v in &spec.vteps {
                log(&format!(
                    "VTEP {} local {} VNI {} (namespace {})",
                    v.name,
                    v.local,
                    v.vni,
                    lab.namespace(&v.name)
                ));
            }
            for g in &spec.dc_gateways {
                log(&format!(
                    "DC gateway {} {} (namespace {}), host {} {} behind it",
                    g.name,
                    g.local,
                    lab.namespace(&g.name),
                    g.host,
                    g.host_address
                ));
            }
        }
        Cmd::Down { prefix } => Lab::down(&prefix)?,
        Cmd::Exec {
            prefix,
            name,
            command,
        } => {
            let lab = Lab::open(&prefix)?;
            let err = Command::new("ip")
                .args(["netns", "exec", &lab.namespace(&name)])
                .args(&command)
                .exec();
            bail!("ip netns exec: {err}");
        }
        Cmd::Show { prefix } => {
            let lab = Lab::open(&prefix)?;
            println!("{}", serde_json::to_string_pretty(lab.spec())?);
            for ns in lab.namespaces() {
                log(&format!("namespace {ns}"));
            }
        }
        Cmd::AddNode { prefix, node } => Lab::open(&prefix)?.add_node(node)?,
        Cmd::AddPort {
            prefix,
            node,
            port,
            mac,
            mtu,
        } => {
            let mut trunk = TrunkSpec::new(&port);
            trunk.mac = mac.map(|m| m.parse()).transpose()?;
            trunk.mtu = mtu;
            Lab::open(&prefix)?.add_trunk(&node, trunk)?;
        }
        Cmd::AddInstance { prefix, instance } => Lab::open(&prefix)?.add_instance(instance)?,
        Cmd::RemoveInstance { prefix, name } => Lab::open(&prefix)?.remove_instance(&name)?,
        Cmd::AddHost { prefix, host } => Lab::open(&prefix)?.add_host(host)?,
        Cmd::AddVtep { prefix, vtep } => Lab::open(&prefix)?.add_vtep(vtep)?,
        Cmd::AddDcGatewayRoute {
            prefix,
            gateway,
            to,
            node,
            label,
        } => Lab::open(&prefix)?.add_dc_gateway_route(
            &gateway,
            DcGatewayRoute {
                to: to.parse()?,
                node,
                label,
            },
        )?,
        Cmd::FrrUp {
            prefix,
            name,
            config,
        } => {
            let lab = Lab::open(&prefix)?;
            let text = std::fs::read_to_string(&config)
                .with_context(|| format!("reading {}", config.display()))?;
            let frr = Frr::start(&lab, &name, &lab.namespace(&name), &text)?;
            log(&format!(
                "FRR in {} (path space {}; vtysh -N {}), logs in {}",
                lab.namespace(&name),
                frr.pathspace(),
                frr.pathspace(),
                frr.log_dir().display()
            ));
            frr.keep();
        }
        // The path space is named as `frr-up` names it; the lab may be gone.
        Cmd::FrrDown { prefix, name } => Frr::stop(&format!("{prefix}-{name}"))?,
        Cmd::Capture {
            prefix,
            name,
            iface,
            filter,
            count,
            seconds,
            decode_as,
            fields,
        } => {
            let lab = Lab::open(&prefix)?;
            let limit = match count {
                Some(n) => Limit::packets(n),
                None => Limit::duration(std::time::Duration::from_secs(seconds)),
            }
            .within(std::time::Duration::from_secs(seconds));
            let capture = lab.capture(&name, &iface, &filter, limit)?;
            log("capturing");
            let pcap = capture.finish()?;
            let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
            let decode_as: Vec<&str> = decode_as.iter().map(String::as_str).collect();
            for packet in pcap.fields(&fields, &decode_as)? {
                println!("{}", serde_json::to_string(packet.fields())?);
            }
        }
    }
    Ok(())
}
