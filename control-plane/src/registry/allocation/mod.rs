//! Service allocations: ClusterIPs and NodePorts drawn from the configured ranges and kept in
//! two replicated records. A Service's create, update or delete and the records it changes are
//! one store transaction that compares the Service's and each record's revision, so API
//! servers that allocate at once (HA) retry instead of handing out a value twice.

mod ranges;
mod record;
pub mod service;

use serde_json::Value;
use skiff_api::resources::ResourceKind;
use skiff_raft_store::{Compare, KeyValue, Op, OpResult, Txn, TxnResponse};

pub use ranges::{
    Cidr, PortRange, RangeError, ServiceRanges, DEFAULT_NODE_PORT_RANGE, DEFAULT_SERVICE_CIDR,
};
pub use record::Allocated;
use service::Records;

use super::codec::encode;
use super::quota::{Charge, Charged};
use super::{object, Registry};
use crate::error::ApiError;

/// Store key of the taken ClusterIPs.
pub const CLUSTER_IPS_KEY: &str = "/registry/ranges/serviceips";
/// Store key of the taken NodePorts.
pub const NODE_PORTS_KEY: &str = "/registry/ranges/servicenodeports";

/// Times a write reads the records again after another write changed them first.
const ATTEMPTS: usize = 32;

/// The records as read, with the revisions a write compares against.
struct ReadRecords {
    records: Records,
    cluster_ips_revision: u64,
    node_ports_revision: u64,
}

/// How a Service write with its records ended.
enum Outcome {
    Written(TxnResponse),
    /// The Service is not at the expected revision (taken name, or a concurrent write).
    ServiceMoved,
    /// Another write changed a record since it was read: read and allocate again.
    RecordsMoved,
    /// A quota charged with the Service changed since it was read: charge again.
    QuotaMoved,
}

impl Registry {
    /// Creates a Service at `key` with its allocations and the quota `charges`, in one write.
    pub(super) async fn create_service(
        &self,
        kind: &ResourceKind,
        key: &str,
        service: &Value,
        charges: &[Charge],
    ) -> Result<Charged, ApiError> {
        for _ in 0..ATTEMPTS {
            let read = self.read_records().await?;
            let mut records = read.records.clone();
            let mut service = service.clone();
            service::on_create(&self.service_ranges, &mut records, &mut service)
                .map_err(|causes| invalid(kind, &service, causes))?;
            match self
                .write_service(key, 0, Some(&service), &read, &records, charges)
                .await?
            {
                Outcome::Written(response) => return put_result(response).map(Charged::Stored),
                Outcome::ServiceMoved => return Ok(Charged::ObjectMoved),
                Outcome::QuotaMoved => return Ok(Charged::QuotaMoved),
                Outcome::RecordsMoved => self.read_barrier().await?,
            }
        }
        Err(contended(&key_name(key)))
    }

    /// Replaces the Service at `current` by `new`, moving its allocations, with the quota
    /// `charges`, in one write.
    pub(super) async fn update_service(
        &self,
        kind: &ResourceKind,
        current: &KeyValue,
        old: &Value,
        new: &Value,
        charges: &[Charge],
    ) -> Result<Charged, ApiError> {
        let key = String::from_utf8_lossy(&current.key).into_owned();
        for _ in 0..ATTEMPTS {
            let read = self.read_records().await?;
            let mut records = read.records.clone();
            let mut new = new.clone();
            service::on_update(&self.service_ranges, &mut records, old, &mut new)
                .map_err(|causes| invalid(kind, &new, causes))?;
            let written = self
                .write_service(
                    &key,
                    current.mod_revision,
                    Some(&new),
                    &read,
                    &records,
                    charges,
                )
                .await?;
            match written {
                Outcome::Written(response) => return put_result(response).map(Charged::Stored),
                Outcome::ServiceMoved => return Ok(Charged::ObjectMoved),
                Outcome::QuotaMoved => return Ok(Charged::QuotaMoved),
                Outcome::RecordsMoved => self.read_barrier().await?,
            }
        }
        Err(contended(&key_name(&key)))
    }

    /// Deletes the Service at `current` and frees its allocations; the deletion's revision,
    /// or `None` if the Service changed.
    pub(super) async fn delete_service(
        &self,
        current: &KeyValue,
        old: &Value,
    ) -> Result<Option<u64>, ApiError> {
        let key = String::from_utf8_lossy(&current.key).into_owned();
        for _ in 0..ATTEMPTS {
            let read = self.read_records().await?;
            let mut records = read.records.clone();
            service::release(&mut records, old);
            match self
                .write_service(&key, current.mod_revision, None, &read, &records, &[])
                .await?
            {
                Outcome::Written(response) => return Ok(Some(response.revision)),
                Outcome::ServiceMoved => return Ok(None),
                Outcome::RecordsMoved | Outcome::QuotaMoved => self.read_barrier().await?,
            }
        }
        Err(contended(&key_name(&key)))
    }

    async fn read_records(&self) -> Result<ReadRecords, ApiError> {
        let (cluster_ips, cluster_ips_revision) = self.read_record(CLUSTER_IPS_KEY).await?;
        let (node_ports, node_ports_revision) = self.read_record(NODE_PORTS_KEY).await?;
        Ok(ReadRecords {
            records: Records {
                cluster_ips,
                node_ports,
            },
            cluster_ips_revision,
            node_ports_revision,
        })
    }

    async fn read_record(&self, key: &str) -> Result<(Allocated, u64), ApiError> {
        let Some(kv) = self.store.get(key.as_bytes()).await? else {
            return Ok((Allocated::default(), 0));
        };
        let record = serde_json::from_slice(&kv.value)
            .map_err(|e| ApiError::Internal(format!("allocation record {key} is corrupt: {e}")))?;
        Ok((record, kv.mod_revision))
    }

    /// Puts (or, with `service` `None`, deletes) the Service at `key` if it is at `expected`,
    /// together with each record that differs from what was read, if that is unchanged.
    /// A dry run only checks the Service's precondition.
    async fn write_service(
        &self,
        key: &str,
        expected: u64,
        service: Option<&Value>,
        read: &ReadRecords,
        records: &Records,
        charges: &[Charge],
    ) -> Result<Outcome, ApiError> {
        if self.dry_run {
            let now = self.store.get(key.as_bytes()).await?;
            let response = match service {
                Some(service) => self
                    .check_put(key, expected, encode(service)?)
                    .await?
                    .map(|kv| TxnResponse {
                        succeeded: true,
                        revision: kv.mod_revision,
                        results: vec![OpResult::Put { kv, prev: None }],
                        compared: vec![],
                    }),
                None => now
                    .filter(|kv| kv.mod_revision == expected)
                    .map(|kv| TxnResponse {
                        succeeded: true,
                        revision: kv.mod_revision,
                        results: vec![],
                        compared: vec![],
                    }),
            };
            return Ok(response.map_or(Outcome::ServiceMoved, Outcome::Written));
        }
        let mut compare = vec![Compare::ModRevision {
            key: key.as_bytes().to_vec(),
            revision: expected,
        }];
        let plain = service.map(encode).transpose()?;
        let mut success = vec![match &plain {
            Some(plain) => Op::Put {
                key: key.as_bytes().to_vec(),
                value: self.encryption.seal(key.as_bytes(), plain.clone())?,
            },
            None => Op::Delete {
                key: key.as_bytes().to_vec(),
            },
        }];
        let changed = [
            (
                CLUSTER_IPS_KEY,
                read.cluster_ips_revision,
                &read.records.cluster_ips,
                &records.cluster_ips,
            ),
            (
                NODE_PORTS_KEY,
                read.node_ports_revision,
                &read.records.node_ports,
                &records.node_ports,
            ),
        ];
        for (record_key, revision, before, after) in changed {
            if before == after {
                continue;
            }
            compare.push(Compare::ModRevision {
                key: record_key.as_bytes().to_vec(),
                revision,
            });
            success.push(Op::Put {
                key: record_key.as_bytes().to_vec(),
                value: serde_json::to_vec(after).map_err(|e| ApiError::Internal(e.to_string()))?,
            });
        }
        let records_compared = compare.len();
        for charge in charges {
            let (c, op) = charge.txn_parts(self)?;
            compare.push(c);
            success.push(op);
        }
        let response = self
            .store
            .txn(Txn {
                compare,
                success,
                failure: vec![],
            })
            .await?;
        if response.succeeded {
            let mut response = response;
            // Answered in clear: what was written is what the caller asked for.
            if let (Some(plain), Some(OpResult::Put { kv, .. })) =
                (plain, response.results.first_mut())
            {
                kv.value = plain;
            }
            return Ok(Outcome::Written(response));
        }
        let service_now = response.compared.first().cloned().flatten();
        if service_now.map_or(0, |kv| kv.mod_revision) != expected {
            return Ok(Outcome::ServiceMoved);
        }
        let quotas_now = response.compared.iter().skip(records_compared);
        if charges
            .iter()
            .zip(quotas_now)
            .any(|(charge, now)| !charge.unchanged(now.as_ref()))
        {
            return Ok(Outcome::QuotaMoved);
        }
        Ok(Outcome::RecordsMoved)
    }
}

/// The Service's name from its store key.
fn key_name(key: &str) -> String {
    key.rsplit('/').next().unwrap_or(key).to_string()
}

/// Other writes kept changing the records: the client may retry (a 409, as Kubernetes').
fn contended(name: &str) -> ApiError {
    ApiError::Conflict {
        resource: "services".into(),
        name: name.to_string(),
        message: "the service allocations kept changing under concurrent writes; please try again"
            .into(),
    }
}

fn put_result(response: TxnResponse) -> Result<KeyValue, ApiError> {
    match response.results.into_iter().next() {
        Some(OpResult::Put { kv, .. }) => Ok(kv),
        other => Err(ApiError::Internal(format!(
            "store answered a put with {other:?}"
        ))),
    }
}

fn invalid(
    kind: &ResourceKind,
    service: &Value,
    causes: Vec<skiff_api::validation::FieldError>,
) -> ApiError {
    ApiError::invalid(kind, object::name(service).unwrap_or_default(), causes)
}
