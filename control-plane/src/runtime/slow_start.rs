//! Slow-start batches (Kubernetes' `slowStartBatch`): do `count` like calls in batches of 1, 2,
//! 4, ... and stop at the first batch with an error, so a call that always fails costs one
//! request, not `count`.

use std::future::Future;

use futures::future::join_all;

/// Most pods a controller creates or deletes in one reconcile (Kubernetes' `BurstReplicas`).
pub const BURST: usize = 500;

/// The sizes of the batches that do `count` calls: doubling from 1, the last one the remainder.
pub fn batch_sizes(count: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    let (mut done, mut next) = (0, 1);
    while done < count {
        let size = next.min(count - done);
        sizes.push(size);
        done += size;
        next = size * 2;
    }
    sizes
}

/// What a slow start did: the successes, in order, and the first error, if any.
pub struct Outcome<T, E> {
    pub done: Vec<T>,
    pub error: Option<E>,
}

/// Runs `call(i)` for `i in 0..count` in slow-start batches (each batch concurrently), stopping
/// after the first batch in which a call failed.
pub async fn run<T, E, F, Fut>(count: usize, call: F) -> Outcome<T, E>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut outcome = Outcome {
        done: Vec::new(),
        error: None,
    };
    let mut start = 0;
    for size in batch_sizes(count) {
        for result in join_all((start..start + size).map(&call)).await {
            match result {
                Ok(value) => outcome.done.push(value),
                Err(err) => {
                    outcome.error.get_or_insert(err);
                }
            }
        }
        if outcome.error.is_some() {
            break;
        }
        start += size;
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn batches_double_from_one_and_end_with_the_remainder() {
        for (count, sizes) in [
            (0, vec![]),
            (1, vec![1]),
            (2, vec![1, 1]),
            (3, vec![1, 2]),
            (7, vec![1, 2, 4]),
            (10, vec![1, 2, 4, 3]),
            (500, vec![1, 2, 4, 8, 16, 32, 64, 128, 245]),
        ] {
            assert_eq!(batch_sizes(count), sizes, "count {count}");
        }
    }

    /// Runs a slow start of `count` calls where call `fail` fails; returns calls made and outcome.
    async fn run_failing_at(count: usize, fail: Option<usize>) -> (usize, usize, bool) {
        let calls = Mutex::new(0);
        let outcome = run(count, |i| {
            *calls.lock().expect("calls") += 1;
            async move {
                if Some(i) == fail {
                    Err("refused")
                } else {
                    Ok(i)
                }
            }
        })
        .await;
        let calls = *calls.lock().expect("calls");
        (calls, outcome.done.len(), outcome.error.is_some())
    }

    #[tokio::test]
    async fn an_error_in_a_batch_stops_the_batches_after_it() {
        // (count, failing call) -> (calls made, successes, failed): batches of 100 are
        // [0], [1,2], [3..7), [7..15), [15..31), [31..63), [63..100).
        for (count, fail, expected) in [
            (100, None, (100, 100, false)),
            (100, Some(0), (1, 0, true)),
            (100, Some(2), (3, 2, true)),
            (100, Some(10), (15, 14, true)),
            (100, Some(99), (100, 99, true)),
            (1000, Some(0), (1, 0, true)),
        ] {
            assert_eq!(
                run_failing_at(count, fail).await,
                expected,
                "count {count}, failing {fail:?}"
            );
        }
    }
}
