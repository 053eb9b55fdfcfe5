//! The index: one reflector (watch + store) per kind, shared by the whole
//! operator; which objects each watch event touched; and the objects the
//! core decides on, converted to the model one at a time.
//!
//! ```text
//!  watch PhysicalRouters ──> store ─┐
//!  watch LogicalInterfaces ─> store ├──> Stores::object(key) ──> core::Decider
//!  ...one per kind...       > store ┘           (only the touched keys)
//!        │
//!        └─ every event: Touch (the object's key, or "kind relisted")
//! ```
//!
//! Stores keep no `managedFields`: the operator never reads them, and at
//! tens of thousands of objects they would be most of its memory.

use std::fmt::Debug;
use std::sync::Arc;

use futures::{Stream, StreamExt, stream};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use trunkline_api::{
    ClusterVirtualNetworkPolicy, DCGateway, ExternalVTEP, GatewayHAGroup, LogicalInterface,
    PhysicalRouter, SecurityGroup, VirtualGateway, VirtualMachineInterface, VirtualNetwork,
    VirtualNetworkPolicy,
};
use trunkline_model::{Kind, Object, ObjectKey, Snapshot, from_api};

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
    /// SecurityGroups.
    pub security_groups: Store<SecurityGroup>,
    /// VirtualNetworkPolicies.
    pub network_policies: Store<VirtualNetworkPolicy>,
    /// ClusterVirtualNetworkPolicies.
    pub cluster_network_policies: Store<ClusterVirtualNetworkPolicy>,
}

/// What a watch event touched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Touch {
    /// This object was created, changed or deleted: its store holds what
    /// it is now (or nothing).
    Object(ObjectKey),
    /// The watch of this kind listed everything again (it started, or
    /// resumed after an interruption): any object of it may have changed.
    Relisted(Kind),
}

/// A stream of what watch events touched (or watch errors), each with its
/// kind's name.
pub type Changes =
    std::pin::Pin<Box<dyn Stream<Item = Result<(&'static str, Option<Touch>), Error>> + Send>>;

/// The key of `object`, of kind `kind`.
pub fn key_of<K: Resource>(kind: Kind, object: &K) -> ObjectKey {
    match object.meta().namespace.as_deref() {
        Some(ns) if kind.is_namespaced() => ObjectKey::namespaced(kind, ns, object.name_any()),
        _ => ObjectKey::cluster(kind, object.name_any()),
    }
}

fn reflect<K>(client: &Client, kind: Kind) -> (Store<K>, Changes)
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    let name = kind.as_str();
    let (reader, writer) = reflector::store::<K>();
    let stream = reflector::reflector(
        writer,
        watcher(Api::<K>::all(client.clone()), watcher::Config::default())
            .modify(|o: &mut K| o.managed_fields_mut().clear())
            .backoff(trunkline_client::WatchBackoff::default()),
    )
    .map(move |event| {
        let touch = match event.map_err(|source| Error::Watch { kind: name, source })? {
            watcher::Event::Apply(o) | watcher::Event::Delete(o) => {
                Some(Touch::Object(key_of(kind, &o)))
            }
            watcher::Event::InitDone => Some(Touch::Relisted(kind)),
            watcher::Event::Init | watcher::Event::InitApply(_) => None,
        };
        Ok((name, touch))
    });
    (reader, stream.boxed())
}

/// The object of `store` named by `key`.
fn get<K: Resource<DynamicType = ()> + Clone>(store: &Store<K>, key: &ObjectKey) -> Option<Arc<K>> {
    let mut reference = ObjectRef::new(&key.name);
    if let Some(ns) = &key.namespace {
        reference = reference.within(ns);
    }
    store.get(&reference)
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
        let (security_groups, i) = reflect::<SecurityGroup>(client, Kind::SecurityGroup);
        let (network_policies, j) =
            reflect::<VirtualNetworkPolicy>(client, Kind::VirtualNetworkPolicy);
        let (cluster_network_policies, k) =
            reflect::<ClusterVirtualNetworkPolicy>(client, Kind::ClusterVirtualNetworkPolicy);
        let stores = Self {
            physical_routers,
            logical_interfaces,
            virtual_machine_interfaces,
            virtual_networks,
            gateway_ha_groups,
            virtual_gateways,
            external_vteps,
            dc_gateways,
            security_groups,
            network_policies,
            cluster_network_policies,
        };
        (
            stores,
            stream::select_all([a, b, c, d, e, f, g, h, i, j, k]).boxed(),
        )
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
        self.security_groups
            .wait_until_ready()
            .await
            .map_err(dropped("SecurityGroup"))?;
        self.network_policies
            .wait_until_ready()
            .await
            .map_err(dropped("VirtualNetworkPolicy"))?;
        self.cluster_network_policies
            .wait_until_ready()
            .await
            .map_err(dropped("ClusterVirtualNetworkPolicy"))?;
        Ok(())
    }

    /// The object of `key` as stored now, converted to the model (the one
    /// conversion the node dataplanes use too); `None` when it is gone.
    pub fn object(&self, key: &ObjectKey) -> Option<Object> {
        Some(match key.kind {
            Kind::PhysicalRouter => Object::PhysicalRouter(from_api::physical_router(&*get(
                &self.physical_routers,
                key,
            )?)),
            Kind::LogicalInterface => Object::LogicalInterface(from_api::logical_interface(&*get(
                &self.logical_interfaces,
                key,
            )?)),
            Kind::VirtualMachineInterface => Object::VirtualMachineInterface(
                from_api::virtual_machine_interface(&*get(&self.virtual_machine_interfaces, key)?),
            ),
            Kind::VirtualNetwork => Object::VirtualNetwork(from_api::virtual_network(&*get(
                &self.virtual_networks,
                key,
            )?)),
            Kind::GatewayHAGroup => Object::GatewayHaGroup(from_api::gateway_ha_group(&*get(
                &self.gateway_ha_groups,
                key,
            )?)),
            Kind::VirtualGateway => Object::VirtualGateway(from_api::virtual_gateway(&*get(
                &self.virtual_gateways,
                key,
            )?)),
            Kind::ExternalVTEP => {
                Object::ExternalVtep(from_api::external_vtep(&*get(&self.external_vteps, key)?))
            }
            Kind::DCGateway => {
                Object::DcGateway(from_api::dc_gateway(&*get(&self.dc_gateways, key)?))
            }
            Kind::SecurityGroup => {
                Object::SecurityGroup(from_api::security_group(&*get(&self.security_groups, key)?))
            }
            Kind::VirtualNetworkPolicy => Object::VirtualNetworkPolicy(
                from_api::virtual_network_policy(&*get(&self.network_policies, key)?),
            ),
            Kind::ClusterVirtualNetworkPolicy => {
                Object::VirtualNetworkPolicy(from_api::cluster_virtual_network_policy(&*get(
                    &self.cluster_network_policies,
                    key,
                )?))
            }
        })
    }

    /// The keys of every stored object of `kind`.
    pub fn keys(&self, kind: Kind) -> Vec<ObjectKey> {
        fn keys<K: Resource<DynamicType = ()> + Clone>(
            kind: Kind,
            store: &Store<K>,
        ) -> Vec<ObjectKey> {
            store.state().iter().map(|o| key_of(kind, &**o)).collect()
        }
        match kind {
            Kind::PhysicalRouter => keys(kind, &self.physical_routers),
            Kind::LogicalInterface => keys(kind, &self.logical_interfaces),
            Kind::VirtualMachineInterface => keys(kind, &self.virtual_machine_interfaces),
            Kind::VirtualNetwork => keys(kind, &self.virtual_networks),
            Kind::GatewayHAGroup => keys(kind, &self.gateway_ha_groups),
            Kind::VirtualGateway => keys(kind, &self.virtual_gateways),
            Kind::ExternalVTEP => keys(kind, &self.external_vteps),
            Kind::DCGateway => keys(kind, &self.dc_gateways),
            Kind::SecurityGroup => keys(kind, &self.security_groups),
            Kind::VirtualNetworkPolicy => keys(kind, &self.network_policies),
            Kind::ClusterVirtualNetworkPolicy => keys(kind, &self.cluster_network_policies),
        }
    }

    /// The stored API object of kind `K` named by `key`.
    pub fn api_object<K: Resource<DynamicType = ()> + Clone>(
        store: &Store<K>,
        key: &ObjectKey,
    ) -> Option<Arc<K>> {
        get(store, key)
    }

    /// Every object of every kind, converted to the model (the one
    /// conversion the node dataplanes use too).
    pub fn snapshot(&self) -> Snapshot {
        fn all<K: Resource<DynamicType = ()> + Clone, T>(
            store: &Store<K>,
            convert: impl Fn(&K) -> T,
        ) -> Vec<Arc<T>> {
            store
                .state()
                .iter()
                .map(|o: &Arc<K>| Arc::new(convert(o)))
                .collect()
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
            security_groups: all(&self.security_groups, from_api::security_group),
            virtual_network_policies: all(&self.network_policies, from_api::virtual_network_policy)
                .into_iter()
                .chain(all(
                    &self.cluster_network_policies,
                    from_api::cluster_virtual_network_policy,
                ))
                .collect(),
        }
    }
}
