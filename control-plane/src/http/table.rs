//! `meta.k8s.io` Table responses (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`), as
//! `kubectl get` asks for them: the columns of `skiff_api::printers`, the `-o wide` ones at
//! priority 1, and each row's object as `PartialObjectMetadata` unless `includeObject` says else.

use axum::http::{header, HeaderMap};
use serde_json::{json, Value};
use skiff_api::printers::columns;
use skiff_api::resources::ResourceKind;

use crate::error::ApiError;

/// The Table form a request asks for (`meta.k8s.io/v1` or `v1beta1`), with what each row carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRequest {
    api_version: &'static str,
    include: IncludeObject,
}

/// `includeObject`: what each row's `object` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl TableRequest {
    /// The Table the `Accept` header asks for first, if any; `None` when it asks for plain JSON.
    pub fn from_request(
        headers: &HeaderMap,
        include_object: Option<&str>,
    ) -> Result<Option<Self>, ApiError> {
        let accept = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        let Some(api_version) = accept.split(',').find_map(table_version) else {
            return Ok(None);
        };
        let include = match include_object {
            None | Some("Metadata") => IncludeObject::Metadata,
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "includeObject {other:?} is not one of None, Metadata, Object"
                )))
            }
        };
        Ok(Some(TableRequest {
            api_version,
            include,
        }))
    }

    /// A Table of `items` (a list's, or one object's), with the list metadata given.
    pub fn render(&self, kind: &ResourceKind, items: &[Value], metadata: Value) -> Value {
        let own = columns::for_kind(kind.kind, false).header.len();
        let wide = columns::for_kind(kind.kind, true);
        let definitions: Vec<Value> = wide
            .header
            .iter()
            .enumerate()
            .map(|(i, name)| column_definition(name, i >= own))
            .collect();
        let rows: Vec<Value> = items
            .iter()
            .map(|item| {
                json!({
                    "cells": (wide.row)(item, true),
                    "object": self.row_object(item),
                })
            })
            .collect();
        json!({
            "kind": "Table",
            "apiVersion": self.api_version,
            "metadata": metadata,
            "columnDefinitions": definitions,
            "rows": rows,
        })
    }

    fn row_object(&self, item: &Value) -> Value {
        match self.include {
            IncludeObject::None => Value::Null,
            IncludeObject::Object => item.clone(),
            IncludeObject::Metadata => json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": self.api_version,
                "metadata": item["metadata"],
            }),
        }
    }
}

/// `meta.k8s.io/v1` for `application/json;as=Table;v=v1;g=meta.k8s.io` (any parameter order).
fn table_version(media_range: &str) -> Option<&'static str> {
    let mut parts = media_range.split(';').map(str::trim);
    if parts.next()? != "application/json" {
        return None;
    }
    let (mut is_table, mut group, mut version) = (false, false, None);
    for param in parts {
        match param.split_once('=') {
            Some(("as", "Table")) => is_table = true,
            Some(("g", "meta.k8s.io")) => group = true,
            Some(("v", "v1")) => version = Some("meta.k8s.io/v1"),
            Some(("v", "v1beta1")) => version = Some("meta.k8s.io/v1beta1"),
            _ => {}
        }
    }
    version.filter(|_| is_table && group)
}

/// A column as Kubernetes describes it: kubectl prints `name` upper-cased as the header.
fn column_definition(header: &str, wide: bool) -> Value {
    let name = title_case(header);
    let format = if header == "NAME" { "name" } else { "" };
    json!({
        "name": name,
        "type": "string",
        "format": format,
        "description": format!("{name} as `kubectl get` shows it"),
        "priority": i32::from(wide),
    })
}

/// `NOMINATED NODE` → `Nominated Node`; `IP`, `CLUSTER-IP` and `PORT(S)` stay as they are.
fn title_case(header: &str) -> String {
    if header.len() <= 2 || header.contains(['(', '-']) {
        return header.to_string();
    }
    header
        .split(' ')
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_string() + &chars.as_str().to_lowercase(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
