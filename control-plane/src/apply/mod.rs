//! Server-side apply (`PATCH` with `application/apply-patch+yaml`) and field ownership
//! (`metadata.managedFields`), as Kubernetes' structured-merge-diff keeps them: which
//! manager set which field, conflicts when an apply would change another manager's field,
//! and removal of the fields an apply configuration stops naming. Pure functions of JSON
//! values; the registry calls them inside its writes.

pub mod fieldset;
pub mod managed;
pub mod merge;
#[cfg(test)]
mod tests;

pub use managed::{Scope, Writer};
pub use merge::{apply, Applier, ApplyError, FieldConflict};
