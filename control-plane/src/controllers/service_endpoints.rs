//! Starting the controllers that keep Services' endpoints: EndpointSlices, Endpoints and the
//! slices mirrored from Endpoints, over the leader's shared informers.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{endpoints, endpointslice, endpointslice_mirroring, WORKERS};
use crate::metrics::QueueMetrics;
use crate::registry::Registry;
use crate::runtime::events::EventRecorder;
use crate::runtime::feed::feed;
use crate::runtime::informer::key_of;
use crate::runtime::{runner, Informers};

/// Starts the three; they run until `shutdown` is cancelled.
pub(super) fn start(
    registry: &Registry,
    informers: &Informers,
    queues: &QueueMetrics,
    shutdown: &CancellationToken,
) {
    start_endpoint_slices(registry, informers, queues, shutdown);
    start_endpoints(registry, informers, queues, shutdown);
    start_endpoint_slice_mirroring(registry, informers, queues, shutdown);
}

/// Starts the EndpointSlice controller: a Service's slices follow the Service, the pods it
/// selects and the slices themselves.
fn start_endpoint_slices(
    registry: &Registry,
    informers: &Informers,
    queues: &QueueMetrics,
    shutdown: &CancellationToken,
) {
    let queue = queues.queue("endpoint_slice");
    let services = &informers.services;
    feed(services, &queue, |s| Some(key_of(s)), services, shutdown);
    feed(
        &informers.endpoint_slices,
        &queue,
        endpointslice::service_key,
        services,
        shutdown,
    );
    let controller = endpointslice::EndpointSliceController {
        registry: registry.clone(),
        services: services.clone(),
        pods: informers.pods.clone(),
        slices: informers.endpoint_slices.clone(),
    };
    endpointslice::feed(&controller, &queue, shutdown);
    runner::spawn(Arc::new(controller), queue, WORKERS, shutdown.clone());
}

/// Starts the endpoints controller: a Service's Endpoints follow the Service, the pods it
/// selects and the Endpoints itself (every one at start, so those of Services deleted while
/// no member led are removed).
fn start_endpoints(
    registry: &Registry,
    informers: &Informers,
    queues: &QueueMetrics,
    shutdown: &CancellationToken,
) {
    let queue = queues.queue("endpoints");
    let services = &informers.services;
    feed(services, &queue, |s| Some(key_of(s)), services, shutdown);
    let endpoints = &informers.endpoints;
    feed(
        endpoints,
        &queue,
        endpoints::managed_key,
        endpoints,
        shutdown,
    );
    let controller = endpoints::EndpointsController {
        registry: registry.clone(),
        services: services.clone(),
        pods: informers.pods.clone(),
        endpoints: endpoints.clone(),
    };
    endpoints::feed_pods(&controller, &queue, shutdown);
    runner::spawn(Arc::new(controller), queue, WORKERS, shutdown.clone());
}

/// Starts the EndpointSlice mirroring controller: the slices mirrored from an Endpoints
/// follow it, its Service (which may gain a selector or go) and the slices themselves.
fn start_endpoint_slice_mirroring(
    registry: &Registry,
    informers: &Informers,
    queues: &QueueMetrics,
    shutdown: &CancellationToken,
) {
    let queue = queues.queue("endpoint_slice_mirroring");
    let endpoints = &informers.endpoints;
    feed(endpoints, &queue, |e| Some(key_of(e)), endpoints, shutdown);
    let services = &informers.services;
    feed(services, &queue, |s| Some(key_of(s)), endpoints, shutdown);
    feed(
        &informers.endpoint_slices,
        &queue,
        endpointslice_mirroring::endpoints_key,
        endpoints,
        shutdown,
    );
    let controller = endpointslice_mirroring::EndpointSliceMirroringController {
        registry: registry.clone(),
        services: services.clone(),
        endpoints: endpoints.clone(),
        slices: informers.endpoint_slices.clone(),
        events: EventRecorder::new(registry.clone(), "endpointslice-mirroring-controller"),
    };
    endpointslice_mirroring::feed_orphans(&controller, &queue, shutdown);
    runner::spawn(Arc::new(controller), queue, WORKERS, shutdown.clone());
}
