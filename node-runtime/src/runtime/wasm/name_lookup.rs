//! `wasi:sockets/ip-name-lookup` through the pod's resolver. wasmtime-wasi's own lookup asks
//! the agent process's resolver (`getaddrinfo`, the node's resolv.conf) and has no hook, so
//! the component linker's definitions of that interface are shadowed by these: the lookup is
//! done by the guest's [`PodResolver`] (its nameservers, search list and `ndots`), awaited in
//! `resolve-addresses` (the guest's fiber waits, not the thread), and the stream handed back
//! is already complete, its pollable always ready.

use std::net::IpAddr;
use std::sync::Arc;

use wasmtime::component::{Linker, Resource, ResourceType};
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddress};
use wasmtime_wasi::p2::{subscribe, DynPollable, Network, Pollable};
use wasmtime_wasi::WasiView;

use super::resolver::{LookupError, PodResolver};

/// The interface as wasmtime-wasi's bindings name it (guests importing an older 0.2 version
/// are linked to it by semver).
const INTERFACE: &str = "wasi:sockets/ip-name-lookup@0.2.12";

/// Store data that can name a guest's resolver.
pub trait PodNames: WasiView {
    /// The pod's resolver; None: the node's (as wasmtime-wasi resolves).
    fn resolver(&self) -> Option<Arc<PodResolver>>;
}

/// The addresses one lookup found, handed out one by one.
pub struct ResolvedAddresses {
    addresses: std::vec::IntoIter<IpAddr>,
}

#[async_trait::async_trait]
impl Pollable for ResolvedAddresses {
    async fn ready(&mut self) {}
}

/// Replaces `linker`'s `ip-name-lookup` (added by wasmtime-wasi) with the pod resolver's.
pub fn shadow<T: PodNames>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut instance = linker.instance(INTERFACE)?;
    instance.resource(
        "resolve-address-stream",
        ResourceType::host::<ResolvedAddresses>(),
        |mut store, rep| {
            store
                .data_mut()
                .ctx()
                .table
                .delete(Resource::<ResolvedAddresses>::new_own(rep))?;
            Ok(())
        },
    )?;
    instance.func_wrap_async(
        "resolve-addresses",
        |mut store, (network, name): (Resource<Network>, String)| {
            Box::new(async move {
                store.data_mut().ctx().table.get(&network)?;
                let resolver = store.data().resolver();
                let found = match resolver {
                    Some(resolver) => resolver.resolve(&name).await.map_err(error_code),
                    None => node_lookup(&name).await,
                };
                Ok((match found {
                    Ok(addresses) => {
                        let stream = ResolvedAddresses {
                            addresses: addresses.into_iter(),
                        };
                        Ok(store.data_mut().ctx().table.push(stream)?)
                    }
                    Err(code) => Err(code),
                },))
            })
        },
    )?;
    instance.func_wrap(
        "[method]resolve-address-stream.resolve-next-address",
        |mut store, (stream,): (Resource<ResolvedAddresses>,)| {
            let stream = store.data_mut().ctx().table.get_mut(&stream)?;
            let next: Option<IpAddress> = stream.addresses.next().map(IpAddress::from);
            Ok((Ok::<_, ErrorCode>(next),))
        },
    )?;
    instance.func_wrap(
        "[method]resolve-address-stream.subscribe",
        |mut store, (stream,): (Resource<ResolvedAddresses>,)| {
            let pollable: Resource<DynPollable> = subscribe(store.data_mut().ctx().table, stream)?;
            Ok((pollable,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

fn error_code(error: LookupError) -> ErrorCode {
    match error {
        LookupError::InvalidName => ErrorCode::InvalidArgument,
        LookupError::NoName => ErrorCode::NameUnresolvable,
        LookupError::Unreachable => ErrorCode::TemporaryResolverFailure,
    }
}

/// The node's resolver, for guests outside a pod (as wasmtime-wasi's lookup).
async fn node_lookup(name: &str) -> Result<Vec<IpAddr>, ErrorCode> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let found = tokio::net::lookup_host((name, 0))
        .await
        .map_err(|_| ErrorCode::NameUnresolvable)?;
    Ok(found.map(|addr| addr.ip().to_canonical()).collect())
}
