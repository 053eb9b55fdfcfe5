//! The index: one reflector (watch + store) per kind, shared by the whole
//! operator, and the snapshot of every object that the core decides on.
//!
//! ```text
//!  watch PhysicalRouters ──> store ─┐
//!  watch LogicalInterfaces ─> store ├──> Stores::snapshot() ──> core::decide
//!  ...one per kind...       > store ┘
//!        │
//!        └─ every watch event bumps a change counter (tokio watch channel)
//! ```

use std::fmt::Debug;
use std::sync::Arc;

use futures::{Stream, StreamExt, stream};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use trunkline_api::{
    DCGateway, ExternalVTEP, GatewayHAGroup, LogicalInterface, PhysicalRouter, VirtualGateway,
    VirtualMachineInterface, VirtualNetwork,
};
use trunkline_model::{Kind, Snapshot, from_api};

use crate::Error;

/// The stores of every kind.
#[derive(Clone)]
pub struct Stores {
    /// PhysicalRouters.
    pub physical_routers: Store<PhysicalRouter>,
    /// LogicalInterfaces.
    pub logical_interfaces: Store<LogicalInterface>,
    /// VirtualMachineInterfaces.
    pub virtual_machine_interfaces: Store<VirtualMachineInterface>,
    /// VirtualNetworks.
    pub virtual_networks: Store<VirtualNetwork>,
    /// GatewayHAGroups.
    pub gateway_ha_groups: Store<GatewayHAGroup>,
    /// VirtualGateways.
    pub virtual_gateways: Store<VirtualGateway>,
    /// ExternalVTEPs.
    pub external_vteps: Store<ExternalVTEP>,
    /// DCGateways.
    pub dc_gateways: Store<DCGateway>,
}

/// A stream of "something of kind `K` changed" (or a watch error).
pub type Changes = std::pin::Pin<Box<dyn Stream<Item = Result<&'static str, Error>> + Send>>;

fn reflect<K>(client: &Client, kind: Kind) -> (Store<K>, Changes)
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    let kind = kind.as_str();
    let (reader, writer) = reflector::store::<K>();
    let stream = reflector::reflector(
        writer,
        watcher(Api::<K>::all(client.clone()), watcher::Config::default())
            .backoff(trunkline_client::WatchBackoff::default()),
    )
    .map(move |event| {
        event
            .map(|_| kind)
            .map_err(|source| Error::Watch { kind, source })
    });
    (reader, stream.boxed())
}

impl Stores {
    /// Starts nothing: returns the stores and the merged stream of changes,
    /// which fills the stores as it is polled.
    pub fn new(client: &Client) -> (Self, Changes) {
        let (physical_routers, a) = reflect::<PhysicalRouter>(client, Kind::PhysicalRouter);
        let (logical_interfaces, b) = reflect::<LogicalInterface>(client, Kind::LogicalInterface);
        let (virtual_machine_interfaces, c) =
            reflect::<VirtualMachineInterface>(client, Kind::VirtualMachineInterface);
        let (virtual_networks, d) = reflect::<VirtualNetwork>(client, Kind::VirtualNetwork);
        let (gateway_ha_groups, e) = reflect::<GatewayHAGroup>(client, Kind::GatewayHAGroup);
        let (virtual_gateways, f) = reflect::<VirtualGateway>(client, Kind::VirtualGateway);
        let (external_vteps, g) = reflect::<ExternalVTEP>(client, Kind::ExternalVTEP);
        let (dc_gateways, h) = reflect::<DCGateway>(client, Kind::DCGateway);
        let stores = Self {
            physical_routers,
            logical_interfaces,
            virtual_machine_interfaces,
            virtual_networks,
            gateway_ha_groups,
            virtual_gateways,
            external_vteps,
            dc_gateways,
        };
        (stores, stream::select_all([a, b, c, d, e, f, g, h]).boxed())
    }

    /// Waits until every store has completed its first list.
    pub async fn wait_until_ready(&self) -> Result<(), Error> {
        let dropped = |kind| move |_| Error::StoreDropped { kind };
        self.physical_routers
            .wait_until_ready()
            .await
            .map_err(dropped("PhysicalRouter"))?;
        self.logical_interfaces
            .wait_until_ready()
            .await
            .map_err(dropped("LogicalInterface"))?;
        self.virtual_machine_interfaces
            .wait_until_ready()
            .await
            .map_err(dropped("VirtualMachineInterface"))?;
        self.virtual_networks
            .wait_until_ready()
            .await
            .map_err(dropped("VirtualNetwork"))?;
        self.gateway_ha_groups
            .wait_until_ready()
            .await
            .map_err(dropped("GatewayHAGroup"))?;
        self.virtual_gateways
            .wait_until_ready()
            .await
            .map_err(dropped("VirtualGateway"))?;
        self.external_vteps
            .wait_until_ready()
            .await
            .map_err(dropped("ExternalVTEP"))?;
        self.dc_gateways
            .wait_until_ready()
            .await
            .map_err(dropped("DCGateway"))?;
        Ok(())
    }

    /// Every object of every kind, converted to the model (the one
    /// conversion the node dataplanes use too).
    pub fn snapshot(&self) -> Snapshot {
        fn all<K: Resource<DynamicType = ()> + Clone, T>(
            store: &Store<K>,
            convert: impl Fn(&K) -> T,
        ) -> Vec<T> {
            store.state().iter().map(|o: &Arc<K>| convert(o)).collect()
        }
        Snapshot {
            physical_routers: all(&self.physical_routers, from_api::physical_router),
            logical_interfaces: all(&self.logical_interfaces, from_api::logical_interface),
            virtual_machine_interfaces: all(
                &self.virtual_machine_interfaces,
                from_api::virtual_machine_interface,
            ),
            virtual_networks: all(&self.virtual_networks, from_api::virtual_network),
            gateway_ha_groups: all(&self.gateway_ha_groups, from_api::gateway_ha_group),
            virtual_gateways: all(&self.virtual_gateways, from_api::virtual_gateway),
            external_vteps: all(&self.external_vteps, from_api::external_vtep),
            dc_gateways: all(&self.dc_gateways, from_api::dc_gateway),
        }
    }
}
