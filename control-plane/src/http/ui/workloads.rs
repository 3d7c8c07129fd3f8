//! The namespaced lists: workloads (Deployments, ReplicaSets, DaemonSets, StatefulSets, Jobs),
//! pods, and events, whose page keeps appending the events a watch sends
//! (`/ui/events/stream`, server-sent events that `app.js` reads).

use std::convert::Infallible;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures::StreamExt;
use maud::html;
use serde::Deserialize;
use serde_json::json;

use super::layout;
use super::reader::Reader;
use super::tables::{self, TableOptions};
use crate::http::AppState;
use crate::identity::UserInfo;
use crate::registry::WatchEventType;

/// The workload kinds the workloads page lists, by resource and kind.
const WORKLOADS: [(&str, &str); 5] = [
    ("deployments", "Deployment"),
    ("replicasets", "ReplicaSet"),
    ("daemonsets", "DaemonSet"),
    ("statefulsets", "StatefulSet"),
    ("jobs", "Job"),
];

/// `?namespace=`: one namespace, or all when absent or empty.
#[derive(Deserialize, Default)]
pub struct Scope {
    namespace: Option<String>,
}

impl Scope {
    fn namespace(&self) -> Option<&str> {
        self.namespace
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
    }

    fn options(&self, link: Option<fn(&serde_json::Value) -> String>) -> TableOptions {
        TableOptions {
            namespace_column: self.namespace().is_none(),
            link,
        }
    }
}

/// `GET /ui/workloads`: a table per kind; a kind the user may not list shows the refusal.
pub async fn page(
    State(state): State<AppState>,
    Extension(user): Extension<UserInfo>,
    Query(scope): Query<Scope>,
) -> Response {
    let reader = Reader::new(&state, &user);
    let mut sections = Vec::new();
    for (plural, kind) in WORKLOADS {
        let table = match reader.list(plural, scope.namespace()).await {
            Ok(items) => tables::objects(kind, &items, &scope.options(None)),
            Err(err) => layout::refused(&err),
        };
        sections.push((kind, table));
    }
    let body = html! {
        (layout::namespace_form("/ui/workloads", scope.namespace()))
        @for (kind, table) in sections {
            h2 { (kind) "s" }
            (table)
        }
    };
    layout::page("Workloads", &user, body).into_response()
}

/// `GET /ui/pods`: as `kubectl get pods -o wide --show-labels`; 403 if the user may not list
/// them.
pub async fn pods(
    State(state): State<AppState>,
    Extension(user): Extension<UserInfo>,
    Query(scope): Query<Scope>,
) -> Response {
    let reader = Reader::new(&state, &user);
    let pods = match reader.list("pods", scope.namespace()).await {
        Ok(pods) => pods,
        Err(err) => {
            let chooser = layout::namespace_form("/ui/pods", scope.namespace());
            return layout::error_page("Pods", &user, &err, chooser);
        }
    };
    let body = html! {
        (layout::namespace_form("/ui/pods", scope.namespace()))
        (tables::objects("Pod", &pods, &scope.options(Some(tables::pod_link))))
    };
    layout::page("Pods", &user, body).into_response()
}

/// `GET /ui/events`: the events so far, then live ones (the page's script).
pub async fn events(
    State(state): State<AppState>,
    Extension(user): Extension<UserInfo>,
    Query(scope): Query<Scope>,
) -> Response {
    let reader = Reader::new(&state, &user);
    let mut events = match reader.list("events", scope.namespace()).await {
        Ok(events) => events,
        Err(err) => {
            let chooser = layout::namespace_form("/ui/events", scope.namespace());
            return layout::error_page("Events", &user, &err, chooser);
        }
    };
    tables::sort_events(&mut events);
    let stream = match scope.namespace() {
        Some(ns) => format!(
            "/ui/events/stream?namespace={}",
            form_urlencoded::byte_serialize(ns.as_bytes()).collect::<String>()
        ),
        None => "/ui/events/stream".into(),
    };
    let body = html! {
        (layout::namespace_form("/ui/events", scope.namespace()))
        p #live data-stream=(stream) { "Waiting for events…" }
        (tables::objects("Event", &events, &scope.options(None)))
    };
    layout::page("Events", &user, body).into_response()
}

/// `GET /ui/events/stream`: each event added or changed from now on, as one server-sent
/// event whose data is `{"type": "ADDED", "cells": [...]}` with the events table's cells.
pub async fn event_stream(
    State(state): State<AppState>,
    Extension(user): Extension<UserInfo>,
    Query(scope): Query<Scope>,
) -> Response {
    let reader = Reader::new(&state, &user);
    let watch = match reader.watch("events", scope.namespace()).await {
        Ok(watch) => watch,
        Err(err) => return err.into_response(),
    };
    let options = scope.options(None);
    let events = watch
        .filter(|e| {
            std::future::ready(matches!(
                e.event_type,
                WatchEventType::Added | WatchEventType::Modified
            ))
        })
        .map(move |e| {
            let data = json!({
                "type": e.event_type,
                "cells": tables::cells("Event", &e.object, &options),
            });
            Ok::<_, Infallible>(Event::default().event("row").data(data.to_string()))
        })
        .take_until(state.shutdown.clone().cancelled_owned());
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}
