//! Dry runs (`dryRun=All`): a write takes its whole path but the store is only read.

use skiff_raft_store::KeyValue;

use super::Registry;
use crate::error::ApiError;

impl Registry {
    /// This registry in dry-run mode (`dryRun=All`): every write goes through defaulting,
    /// admission, validation and its preconditions and answers what it would have written,
    /// but nothing reaches the store.
    pub fn dry_run(&self) -> Registry {
        Registry {
            dry_run: true,
            ..self.clone()
        }
    }

    /// A dry run's put: whether the key is at `expected` (0: absent) now, and the entry the
    /// put would have left, at the key's current revision.
    pub(super) async fn check_put(
        &self,
        key: &str,
        expected: u64,
        value: Vec<u8>,
    ) -> Result<Option<KeyValue>, ApiError> {
        let current = self.store.get(key.as_bytes()).await?;
        let revision = current.as_ref().map_or(0, |kv| kv.mod_revision);
        if revision != expected {
            return Ok(None);
        }
        Ok(Some(KeyValue {
            key: key.as_bytes().to_vec(),
            value,
            create_revision: current.as_ref().map_or(0, |kv| kv.create_revision),
            mod_revision: revision,
            version: current.map_or(0, |kv| kv.version),
        }))
    }
}
