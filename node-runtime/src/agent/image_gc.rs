//! Image garbage collection, as the kubelet's image manager does it: when the filesystem that
//! holds the image store is fuller than the high threshold, images no container uses are
//! removed, least recently used first, until it is down to the low threshold. Images seen for
//! less than the minimum age are kept, so a pull is never collected before its pod starts.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::runtime::{ImageRef, ImageService, RuntimeError, RuntimeSet};

/// When images are collected (kubelet flags of the same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageGcPolicy {
    /// Percent of the image filesystem in use above which images are collected.
    pub high_threshold_percent: u8,
    /// Percent of the image filesystem in use that a collection frees down to.
    pub low_threshold_percent: u8,
    /// How long an image is kept after it was first seen, whatever the disk use.
    pub minimum_age: Duration,
    /// How often disk use is checked.
    pub period: Duration,
}

impl Default for ImageGcPolicy {
    /// The kubelet's defaults: 85 %, 80 %, two minutes, every five minutes.
    fn default() -> Self {
        ImageGcPolicy {
            high_threshold_percent: 85,
            low_threshold_percent: 80,
            minimum_age: Duration::from_secs(120),
            period: Duration::from_secs(300),
        }
    }
}

/// Size and use of a filesystem, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsUsage {
    pub capacity: u64,
    pub used: u64,
}

impl FsUsage {
    /// Of the filesystem holding `path`.
    fn of(path: &std::path::Path) -> std::io::Result<FsUsage> {
        let stat = nix::sys::statvfs::statvfs(path).map_err(std::io::Error::from)?;
        let block = stat.fragment_size() as u64;
        let capacity = stat.blocks() as u64 * block;
        let available = stat.blocks_available() as u64 * block;
        Ok(FsUsage {
            capacity,
            used: capacity.saturating_sub(available),
        })
    }

    /// Bytes to free to get from above `high` percent down to `low` percent; 0 at or below `high`.
    pub fn bytes_over(self, high: u8, low: u8) -> u64 {
        let percent = |p: u8| self.capacity / 100 * u64::from(p);
        if self.capacity == 0 || self.used <= percent(high) {
            return 0;
        }
        self.used.saturating_sub(percent(low))
    }
}

/// One image as the collector knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracked {
    pub image: ImageRef,
    pub first_seen: Instant,
    pub last_used: Instant,
}

/// The references to remove to free `to_free` bytes: unused images older than `minimum_age`,
/// least recently used first (the larger first among equals).
pub fn plan(
    images: &[Tracked],
    in_use: &HashSet<String>,
    to_free: u64,
    minimum_age: Duration,
    now: Instant,
) -> Vec<String> {
    let mut candidates: Vec<&Tracked> = images
        .iter()
        .filter(|t| !in_use.contains(&t.image.reference))
        .filter(|t| now.saturating_duration_since(t.first_seen) >= minimum_age)
        .collect();
    candidates.sort_by(|a, b| {
        a.last_used
            .cmp(&b.last_used)
            .then(b.image.size.cmp(&a.image.size))
    });
    let mut freed = 0;
    let mut remove = Vec::new();
    for tracked in candidates {
        if freed >= to_free {
            break;
        }
        freed += tracked.image.size;
        remove.push(tracked.image.reference.clone());
    }
    remove
}

/// The collector of one node.
pub struct ImageGc {
    pub images: Arc<dyn ImageService>,
    pub runtimes: RuntimeSet,
    /// A path on the image store's filesystem.
    pub store_dir: PathBuf,
    pub policy: ImageGcPolicy,
    tracked: HashMap<String, Tracked>,
}

impl ImageGc {
    /// A collector of `images` whose store lies on the filesystem of `store_dir`.
    pub fn new(
        images: Arc<dyn ImageService>,
        runtimes: RuntimeSet,
        store_dir: PathBuf,
        policy: ImageGcPolicy,
    ) -> Self {
        ImageGc {
            images,
            runtimes,
            store_dir,
            policy,
            tracked: HashMap::new(),
        }
    }

    /// Checks every `period` until `stop`.
    pub async fn run(mut self, stop: CancellationToken) {
        let mut ticks = tokio::time::interval(self.policy.period);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stop.cancelled() => return,
            }
            if let Err(err) = self.collect().await {
                tracing::warn!(%err, "image garbage collection failed");
            }
        }
    }

    /// Notes which images are in use, then removes unused ones if the disk is too full.
    async fn collect(&mut self) -> Result<(), GcError> {
        let now = Instant::now();
        let in_use: HashSet<String> = self.runtimes.image_users().await?.into_keys().collect();
        let listed = self.images.list_images().await?;
        let present: HashSet<&str> = listed.iter().map(|i| i.reference.as_str()).collect();
        self.tracked
            .retain(|reference, _| present.contains(reference.as_str()));
        for image in &listed {
            let tracked = self
                .tracked
                .entry(image.reference.clone())
                .or_insert_with(|| Tracked {
                    image: image.clone(),
                    first_seen: now,
                    last_used: now,
                });
            tracked.image = image.clone();
            if in_use.contains(&image.reference) {
                tracked.last_used = now;
            }
        }
        if listed.is_empty() {
            // Nothing to remove (and before the first pull the store's directory may not exist).
            return Ok(());
        }
        let usage = FsUsage::of(&self.store_dir).map_err(GcError::Usage)?;
        let to_free = usage.bytes_over(
            self.policy.high_threshold_percent,
            self.policy.low_threshold_percent,
        );
        if to_free == 0 {
            return Ok(());
        }
        let tracked: Vec<Tracked> = self.tracked.values().cloned().collect();
        let remove = plan(&tracked, &in_use, to_free, self.policy.minimum_age, now);
        let mut freed = 0;
        for reference in &remove {
            self.images.remove_image(reference).await?;
            if let Some(gone) = self.tracked.remove(reference) {
                freed += gone.image.size;
            }
            tracing::info!(image = %reference, "image garbage collected");
        }
        if freed < to_free {
            tracing::warn!(
                freed,
                wanted = to_free,
                "image garbage collection could not free enough space: the rest is in use, \
                 younger than the minimum age, or not images"
            );
        }
        Ok(())
    }
}

/// Why a collection failed.
#[derive(Debug, thiserror::Error)]
enum GcError {
    #[error("reading the image filesystem's usage: {0}")]
    Usage(#[source] std::io::Error),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracked(
        base: Instant,
        reference: &str,
        size: u64,
        first_seen: u64,
        last_used: u64,
    ) -> Tracked {
        Tracked {
            image: ImageRef {
                reference: reference.into(),
                digest: format!("sha256:{reference}"),
                size,
                config: Default::default(),
                content: PathBuf::new(),
                layers: Vec::new(),
            },
            first_seen: base + Duration::from_secs(first_seen),
            last_used: base + Duration::from_secs(last_used),
        }
    }

    #[test]
    fn frees_from_the_high_threshold_down_to_the_low_one() {
        let usage = |used| FsUsage {
            capacity: 1000,
            used,
        };
        assert_eq!(usage(850).bytes_over(85, 80), 0);
        assert_eq!(usage(851).bytes_over(85, 80), 51);
        assert_eq!(usage(990).bytes_over(85, 80), 190);
        assert_eq!(
            FsUsage {
                capacity: 0,
                used: 0
            }
            .bytes_over(85, 80),
            0
        );
    }

    #[test]
    fn removes_unused_old_images_least_recently_used_first() {
        let base = Instant::now();
        let images = [
            tracked(base, "a", 100, 0, 50),
            tracked(base, "c", 200, 0, 10),
            tracked(base, "b", 300, 0, 10),
            tracked(base, "used", 900, 0, 0),
            tracked(base, "young", 900, 590, 590),
        ];
        let now = base + Duration::from_secs(600);
        let in_use: HashSet<String> = ["used".to_string()].into();
        let age = Duration::from_secs(60);
        let cases: [(u64, &[&str]); 5] = [
            (0, &[]),
            (1, &["b"]),
            (300, &["b"]),
            (301, &["b", "c"]),
            (10_000, &["b", "c", "a"]),
        ];
        for (to_free, want) in cases {
            assert_eq!(plan(&images, &in_use, to_free, age, now), want, "{to_free}");
        }
    }
}
