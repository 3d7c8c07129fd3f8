//! Namespace policies applied to objects at admission: LimitRange defaults and bounds, and
//! ResourceQuota usage. Pure functions of the objects; the API server reads and writes them.

pub mod limit_range;
pub mod quota;
pub mod quota_scope;

use crate::quantity;

/// A quantity in thousandths of its unit (millicores, millibytes, milli-objects), so cpu,
/// memory and counts compare and add alike.
pub(crate) fn milli(value: &str) -> Result<u64, quantity::QuantityError> {
    quantity::parse_cpu_millis(value)
}

/// A quantity in thousandths (see `milli`) written back as Kubernetes prints it: `500m`, `2`, `128Mi`.
pub fn format_milli(resource: &str, value: u64) -> String {
    if resource == "cpu" || resource.ends_with(".cpu") {
        quantity::format_cpu_millis(value)
    } else if value.is_multiple_of(1000) {
        quantity::format_bytes(value / 1000)
    } else {
        format!("{value}m")
    }
}
