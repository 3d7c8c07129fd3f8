//! A replicated allocation record (Kubernetes' `RangeAllocation`): the values of one range
//! that are taken. It is stored under its own key and written in the same transaction as
//! the Service that takes or frees a value, compared by revision, so two API servers that
//! allocate at once cannot both win.

use std::collections::BTreeSet;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// The taken values of a range (IPv4 addresses as `u32`, or ports).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocated {
    taken: BTreeSet<u32>,
}

impl Allocated {
    /// Whether `value` is taken.
    pub fn is_taken(&self, value: u32) -> bool {
        self.taken.contains(&value)
    }

    /// Takes `value`; false if it was taken already.
    pub fn take(&mut self, value: u32) -> bool {
        self.taken.insert(value)
    }

    /// Frees `value` (nothing if it was free).
    pub fn release(&mut self, value: u32) {
        self.taken.remove(&value);
    }

    /// Takes a free value of `first..=last`, scanning from a random start (as Kubernetes'
    /// allocators do, so values are not reused at once); `None` if the range is full.
    pub fn take_any(&mut self, first: u32, last: u32) -> Option<u32> {
        if first > last {
            return None;
        }
        let size = u64::from(last - first) + 1;
        let start = rand::thread_rng().gen_range(0..size);
        let found = (0..size)
            .map(|i| first + ((start + i) % size) as u32)
            .find(|v| !self.taken.contains(v))?;
        self.taken.insert(found);
        Some(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_any_fills_the_range_then_answers_none() {
        let mut record = Allocated::default();
        assert!(record.take(11));
        assert!(!record.take(11));
        let mut got: Vec<u32> = (0..2).filter_map(|_| record.take_any(10, 12)).collect();
        got.sort();
        assert_eq!(got, vec![10, 12]);
        assert_eq!(record.take_any(10, 12), None);
        record.release(12);
        assert_eq!(record.take_any(10, 12), Some(12));
    }
}
