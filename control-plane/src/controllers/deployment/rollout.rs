//! The rollout plan: how many replicas the new and each old ReplicaSet should have, for the
//! RollingUpdate (within `maxSurge` / `maxUnavailable`) and Recreate strategies.

use std::sync::Arc;

use skiff_api::intstr;
use skiff_api::k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use skiff_api::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Replica counts a reconcile should set: the new ReplicaSet, then each old one (oldest first).
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// Replicas for the ReplicaSet of the current template.
    pub new_replicas: i32,
    /// Replicas for each old ReplicaSet, oldest first (the order they were passed in).
    pub old_replicas: Vec<i32>,
}

/// Plans one step of `deployment`'s rollout from its new ReplicaSet (if any) and its old ones.
pub fn plan(deployment: &Deployment, new_rs: Option<&ReplicaSet>, old: &[Arc<ReplicaSet>]) -> Plan {
    let spec = deployment.spec.clone().unwrap_or_default();
    let desired = spec.replicas.unwrap_or(1).max(0);
    let spec_replicas = |rs: &ReplicaSet| rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    let available = |rs: &ReplicaSet| {
        rs.status
            .as_ref()
            .and_then(|s| s.available_replicas)
            .unwrap_or(0)
    };
    let new_current = new_rs.map(spec_replicas).unwrap_or(0);
    let old_current: Vec<i32> = old.iter().map(|rs| spec_replicas(rs)).collect();
    let old_total: i32 = old_current.iter().sum();
    let strategy = spec.strategy.unwrap_or_default();
    if strategy.type_.as_deref() == Some("Recreate") {
        let old_running: i32 = old
            .iter()
            .map(|rs| rs.status.as_ref().map(|s| s.replicas).unwrap_or(0))
            .sum();
        let new_replicas = if old_total == 0 && old_running == 0 {
            desired
        } else {
            0
        };
        return Plan {
            new_replicas,
            old_replicas: vec![0; old.len()],
        };
    }
    if old_total == 0 {
        return Plan {
            new_replicas: desired,
            old_replicas: old_current,
        };
    }
    let rolling = strategy.rolling_update.unwrap_or_default();
    let mut max_surge = resolve(rolling.max_surge.as_ref(), desired, true);
    let max_unavailable = resolve(rolling.max_unavailable.as_ref(), desired, false);
    if max_surge == 0 && max_unavailable == 0 {
        max_surge = 1;
    }
    let max_unavailable = if max_surge == 0 {
        max_unavailable.max(1)
    } else {
        max_unavailable
    };
    // Scale the new ReplicaSet up within the surge budget, counting the pods a ReplicaSet still
    // has above its replicas (not deleted yet), so that maxSurge holds for pods, not only specs.
    let total = new_current + old_total;
    let pods =
        |rs: &ReplicaSet| spec_replicas(rs).max(rs.status.as_ref().map_or(0, |s| s.replicas));
    let existing = new_rs.map_or(0, pods) + old.iter().map(|rs| pods(rs)).sum::<i32>();
    let room = (desired + max_surge - existing).max(0);
    let new_replicas = if new_current >= desired {
        desired
    } else {
        new_current + room.min(desired - new_current)
    };
    // Scale old ReplicaSets down while keeping `desired - max_unavailable` pods available. A
    // set's available pods beyond its replicas are about to go, so they do not count.
    let min_available = desired - max_unavailable;
    let available_of = |rs: &ReplicaSet| available(rs).min(spec_replicas(rs));
    let new_available = new_rs.map(available_of).unwrap_or(0);
    let new_unavailable = (new_current - new_available).max(0);
    let mut cleanup = (total - min_available - new_unavailable).max(0);
    let mut old_replicas = old_current;
    // Unavailable old pods go first (oldest set first): removing them costs no availability.
    for (replicas, rs) in old_replicas.iter_mut().zip(old) {
        let cut = (*replicas - available_of(rs)).clamp(0, cleanup);
        *replicas -= cut;
        cleanup -= cut;
    }
    // Then available ones, as long as the available pods stay at the minimum or above.
    let available_now = new_available + old.iter().map(|rs| available_of(rs)).sum::<i32>();
    let mut room = if total - min_available - new_unavailable > 0 {
        (available_now - min_available).max(0)
    } else {
        0
    };
    for replicas in &mut old_replicas {
        let cut = (*replicas).min(room);
        *replicas -= cut;
        room -= cut;
    }
    Plan {
        new_replicas,
        old_replicas,
    }
}

/// The plan of a paused Deployment: no rollout, only scaling. The ReplicaSets with replicas
/// share `desired` in proportion to their size (the rest goes to the newest of them); with
/// none, the new ReplicaSet (or else the newest old one) gets them all, as Kubernetes does.
pub fn scale_only(desired: i32, new_current: Option<i32>, old_current: &[i32]) -> Plan {
    // Newest first: the new ReplicaSet, then the old ones from the newest.
    let mut sizes: Vec<i32> = new_current.into_iter().collect();
    sizes.extend(old_current.iter().rev());
    let total: i32 = sizes.iter().sum();
    if total == 0 {
        if let Some(first) = sizes.first_mut() {
            *first = desired;
        }
    } else if total != desired {
        let mut given = 0;
        for size in &mut sizes {
            *size = (i64::from(*size) * i64::from(desired) / i64::from(total)) as i32;
            given += *size;
        }
        let newest_active = sizes.iter().position(|&s| s > 0).unwrap_or(0);
        if let Some(size) = sizes.get_mut(newest_active) {
            *size += desired - given;
        }
    }
    let mut sizes = sizes.into_iter();
    let new_replicas = if new_current.is_some() {
        sizes.next().unwrap_or(0)
    } else {
        0
    };
    let mut old_replicas: Vec<i32> = sizes.collect();
    old_replicas.reverse();
    Plan {
        new_replicas,
        old_replicas,
    }
}

/// The default `maxSurge` and `maxUnavailable`.
const DEFAULT_BUDGET: &str = "25%";

/// An absolute count from an int-or-percent, rounding up (surge) or down (unavailable).
pub fn resolve(value: Option<&IntOrString>, total: i32, round_up: bool) -> i32 {
    let default = IntOrString::String(DEFAULT_BUDGET.into());
    let scaled = |value| intstr::scaled_value(value, total, round_up);
    scaled(value.unwrap_or(&default))
        .or_else(|_| scaled(&default))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_api::k8s_openapi::api::apps::v1::{DeploymentSpec, ReplicaSetSpec, ReplicaSetStatus};

    fn deployment(replicas: i32) -> Deployment {
        Deployment {
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn rs(spec: i32, available: i32) -> ReplicaSet {
        ReplicaSet {
            spec: Some(ReplicaSetSpec {
                replicas: Some(spec),
                ..Default::default()
            }),
            status: Some(ReplicaSetStatus {
                replicas: spec.max(available),
                available_replicas: Some(available),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn steady_state_and_scaling_set_the_new_replicaset() {
        assert_eq!(
            plan(&deployment(3), None, &[]),
            Plan {
                new_replicas: 3,
                old_replicas: vec![]
            }
        );
        assert_eq!(
            plan(&deployment(5), Some(&rs(3, 3)), &[]),
            Plan {
                new_replicas: 5,
                old_replicas: vec![]
            }
        );
    }

    #[test]
    fn rolling_update_surges_then_scales_old_down_as_new_becomes_available() {
        let old = vec![Arc::new(rs(4, 4))];
        // 25% of 4: surge 1, unavailable 1.
        let first = plan(&deployment(4), Some(&rs(0, 0)), &old);
        assert_eq!(
            first,
            Plan {
                new_replicas: 1,
                old_replicas: vec![3]
            }
        );
        let later = plan(&deployment(4), Some(&rs(2, 2)), &[Arc::new(rs(2, 2))]);
        assert_eq!(
            later,
            Plan {
                new_replicas: 3,
                old_replicas: vec![1]
            }
        );
        let unavailable_new = plan(&deployment(4), Some(&rs(2, 0)), &[Arc::new(rs(2, 2))]);
        assert_eq!(
            unavailable_new.old_replicas,
            vec![2],
            "keeps old pods while new ones are unavailable"
        );
    }

    #[test]
    fn recreate_waits_for_old_pods_to_go() {
        let mut d = deployment(2);
        d.spec.as_mut().expect("spec").strategy =
            Some(skiff_api::k8s_openapi::api::apps::v1::DeploymentStrategy {
                type_: Some("Recreate".into()),
                rolling_update: None,
            });
        let old = vec![Arc::new(rs(2, 2))];
        assert_eq!(
            plan(&d, None, &old),
            Plan {
                new_replicas: 0,
                old_replicas: vec![0]
            }
        );
        let drained = vec![Arc::new(rs(0, 0))];
        assert_eq!(plan(&d, Some(&rs(0, 0)), &drained).new_replicas, 2);
    }

    #[test]
    fn old_sets_lose_unavailable_pods_first_and_available_ones_within_the_budget() {
        let mut d = deployment(10);
        d.spec.as_mut().expect("spec").strategy =
            Some(skiff_api::k8s_openapi::api::apps::v1::DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(
                    skiff_api::k8s_openapi::api::apps::v1::RollingUpdateDeployment {
                        max_surge: Some(IntOrString::Int(2)),
                        max_unavailable: Some(IntOrString::Int(2)),
                    },
                ),
            });
        // A new template while the last rollout was under way: v1 7 of 7 available, v2 3 of 5.
        let old = [Arc::new(rs(7, 7)), Arc::new(rs(5, 3))];
        assert_eq!(
            plan(&d, Some(&rs(0, 0)), &old),
            Plan {
                new_replicas: 0,
                old_replicas: vec![5, 3]
            },
            "v2's 2 unavailable pods go, then 2 of v1's: 8 stay available"
        );
        // A set scaled down to 4 whose status still counts 6 available: only 4 count, so with
        // 6 new available it may lose 2 more, not all 4.
        let stale = [Arc::new(rs(4, 6))];
        assert_eq!(plan(&d, Some(&rs(10, 6)), &stale).old_replicas, vec![2]);
    }

    #[test]
    fn paused_deployments_only_scale() {
        // (case, desired, new, old, want new, want old)
        type Case<'a> = (&'a str, i32, Option<i32>, &'a [i32], i32, &'a [i32]);
        let cases: [Case; 6] = [
            ("no change", 3, Some(3), &[0], 3, &[0]),
            ("one active set takes it all", 5, Some(3), &[0], 5, &[0]),
            ("mid-rollout: in proportion", 8, Some(2), &[2], 4, &[4]),
            (
                "rounding rest to the newest active",
                5,
                Some(2),
                &[2],
                3,
                &[2],
            ),
            ("no new set: old ones scale", 2, None, &[1, 3], 0, &[0, 2]),
            ("all at zero: the new set", 2, Some(0), &[0], 2, &[0]),
        ];
        for (case, desired, new, old, want_new, want_old) in cases {
            assert_eq!(
                scale_only(desired, new, old),
                Plan {
                    new_replicas: want_new,
                    old_replicas: want_old.to_vec()
                },
                "{case}"
            );
        }
        assert_eq!(
            scale_only(2, None, &[0, 0]).old_replicas,
            vec![0, 2],
            "nothing active and no new set: the newest old one"
        );
    }

    #[test]
    fn surge_and_unavailable_arithmetic() {
        let d = |replicas: i32, surge: IntOrString, unavailable: IntOrString| {
            let mut d = deployment(replicas);
            d.spec.as_mut().expect("spec").strategy =
                Some(skiff_api::k8s_openapi::api::apps::v1::DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(
                        skiff_api::k8s_openapi::api::apps::v1::RollingUpdateDeployment {
                            max_surge: Some(surge),
                            max_unavailable: Some(unavailable),
                        },
                    ),
                });
            d
        };
        let int = IntOrString::Int;
        let pct = |s: &str| IntOrString::String(s.into());
        // (case, deployment, new (spec, available), old (spec, available), want new, want old)
        let cases = [
            (
                "surge 1 unavailable 0: one extra pod",
                d(3, int(1), int(0)),
                (0, 0),
                (3, 3),
                1,
                3,
            ),
            (
                "surge 0 unavailable 1: one fewer",
                d(3, int(0), int(1)),
                (0, 0),
                (3, 3),
                0,
                2,
            ),
            (
                "both zero: surge 1",
                d(3, int(0), int(0)),
                (0, 0),
                (3, 3),
                1,
                3,
            ),
            (
                "50% of 4 each way",
                d(4, pct("50%"), pct("50%")),
                (0, 0),
                (4, 4),
                2,
                2,
            ),
            (
                "surge 100%: all new at once",
                d(4, pct("100%"), int(0)),
                (0, 0),
                (4, 4),
                4,
                4,
            ),
            (
                "new ready: old goes",
                d(3, int(1), int(0)),
                (1, 1),
                (3, 3),
                1,
                2,
            ),
            (
                "new unready: old stays",
                d(3, int(1), int(0)),
                (1, 0),
                (3, 3),
                1,
                3,
            ),
            (
                "10% of 10 rounds surge up",
                d(10, pct("10%"), pct("10%")),
                (0, 0),
                (10, 10),
                1,
                9,
            ),
            (
                "15% of 10: surge 2, unavailable 1",
                d(10, pct("15%"), pct("15%")),
                (0, 0),
                (10, 10),
                2,
                9,
            ),
        ];
        for (case, deployment, (new_spec, new_avail), (old_spec, old_avail), want_new, want_old) in
            cases
        {
            let got = plan(
                &deployment,
                Some(&rs(new_spec, new_avail)),
                &[Arc::new(rs(old_spec, old_avail))],
            );
            assert_eq!(
                got,
                Plan {
                    new_replicas: want_new,
                    old_replicas: vec![want_old]
                },
                "{case}"
            );
        }
    }

    #[test]
    fn percentages_round_like_kubernetes() {
        let pct = |s: &str| IntOrString::String(s.into());
        assert_eq!(resolve(Some(&pct("25%")), 3, true), 1);
        assert_eq!(resolve(Some(&pct("25%")), 3, false), 0);
        assert_eq!(resolve(Some(&IntOrString::Int(2)), 3, false), 2);
        assert_eq!(resolve(None, 8, true), 2, "25% when unset");
        assert_eq!(
            resolve(Some(&pct("lots")), 8, true),
            2,
            "25% when unreadable"
        );
    }
}
