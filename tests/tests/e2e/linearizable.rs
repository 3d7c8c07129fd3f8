//! A Jepsen-style check: concurrent clients read, write and compare-and-swap registers
//! (ConfigMaps) through the public API of a three-server control plane, each server in its own
//! network namespace, while a nemesis kills servers with -9, cuts the leader off and freezes it
//! with SIGSTOP. The recorded history must be linearizable. Needs root (CI is).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use skiff_e2e::{check_measured, save_history, wait_until, Cluster, Op, OpKind, Outcome, Verdict};

const KEYS: usize = 3;
const CLIENTS: usize = 4;
const RUN: Duration = Duration::from_secs(20);
/// Steps the checker may take per key before it gives up (a failure, not a pass).
const BUDGET: usize = 5_000_000;

/// One client's view of the API: every member's URL and an HTTP client with a deadline.
struct Api {
    urls: Vec<String>,
    http: reqwest::blocking::Client,
}

/// What a request came back with: a definite answer, or nothing known.
enum Reply {
    Ok(Value),
    /// A definite failure: nothing was changed (422 failed test, 409 conflict, 404).
    Refused(u16),
    /// The request may or may not have taken effect (timeout, 5xx, a dropped connection).
    Unknown,
}

impl Api {
    fn url(&self, member: usize, key: usize) -> String {
        format!(
            "{}/api/v1/namespaces/default/configmaps/reg-{key}",
            self.urls[member % self.urls.len()]
        )
    }

    fn send(&self, request: reqwest::blocking::RequestBuilder) -> Reply {
        match request.send() {
            Ok(r) if r.status().is_success() => match r.json() {
                Ok(body) => Reply::Ok(body),
                Err(_) => Reply::Unknown,
            },
            Ok(r) if matches!(r.status().as_u16(), 404 | 409 | 422) => {
                Reply::Refused(r.status().as_u16())
            }
            _ => Reply::Unknown,
        }
    }

    fn read(&self, member: usize, key: usize) -> Reply {
        self.send(self.http.get(self.url(member, key)))
    }

    fn write(&self, member: usize, key: usize, value: &str) -> Reply {
        self.send(
            self.http
                .patch(self.url(member, key))
                .header("Content-Type", "application/merge-patch+json")
                .body(json!({"data": {"v": value}}).to_string()),
        )
    }

    fn cas(&self, member: usize, key: usize, expected: &str, new: &str) -> Reply {
        self.send(
            self.http
                .patch(self.url(member, key))
                .header("Content-Type", "application/json-patch+json")
                .body(
                    json!([{"op": "test", "path": "/data/v", "value": expected},
                           {"op": "replace", "path": "/data/v", "value": new}])
                    .to_string(),
                ),
        )
    }
}

/// A tiny deterministic generator (xorshift), so a failing run can be replayed by seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn value_of(object: &Value) -> Option<String> {
    object["data"]["v"].as_str().map(str::to_string)
}

/// Runs one client until `stop`, recording every operation with a definite or unknown outcome.
fn client(
    id: usize,
    api: Api,
    start: Instant,
    stop: Arc<AtomicBool>,
    history: Arc<Mutex<Vec<Op>>>,
) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (id as u64 + 1));
    let mut n = 0;
    // The value this client last saw or wrote per key: what its CAS expects.
    let mut last: Vec<String> = vec!["init".to_string(); KEYS];
    let now = || start.elapsed().as_nanos() as u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let key = rng.below(KEYS);
        let member = rng.below(api.urls.len());
        let value = format!("c{id}-{n}");
        let invoked = now();
        let (kind, reply) = match rng.below(10) {
            0..=3 => {
                let reply = api.read(member, key);
                let seen = match &reply {
                    Reply::Ok(object) => value_of(object),
                    _ => None,
                };
                (OpKind::Read(seen), reply)
            }
            4..=6 => (OpKind::Write(value.clone()), api.write(member, key, &value)),
            _ => {
                let expected = last[key].clone();
                let reply = api.cas(member, key, &expected, &value);
                let succeeded = matches!(reply, Reply::Ok(_));
                (
                    OpKind::Cas {
                        expected: Some(expected),
                        new: value.clone(),
                        succeeded,
                    },
                    reply,
                )
            }
        };
        let completed = now();
        match (&kind, &reply) {
            (OpKind::Read(Some(seen)), _) => last[key] = seen.clone(),
            (OpKind::Write(v) | OpKind::Cas { new: v, .. }, Reply::Ok(_)) => last[key] = v.clone(),
            _ => {}
        }
        let outcome = match (&kind, &reply) {
            (_, Reply::Ok(_)) => Outcome::Ok,
            // A failed test operation is a definite "CAS did not apply".
            (OpKind::Cas { .. }, Reply::Refused(422)) => Outcome::Ok,
            // Other refusals changed nothing: not part of the history.
            (_, Reply::Refused(_)) => continue,
            // A read without an answer tells nothing.
            (OpKind::Read(_), Reply::Unknown) => continue,
            (_, Reply::Unknown) => Outcome::Unknown,
        };
        history.lock().expect("history").push(Op {
            client: id,
            key: format!("reg-{key}"),
            kind,
            invoked,
            completed,
            outcome,
        });
    }
}

#[test]
fn concurrent_reads_writes_and_cas_stay_linearizable_under_faults() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut cluster = Cluster::start_partitionable(tmp.path(), 3, &[])?;
    let start = Instant::now();
    let history: Arc<Mutex<Vec<Op>>> = Arc::default();
    for key in 0..KEYS {
        let invoked = start.elapsed().as_nanos() as u64;
        let body = json!({"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": format!("reg-{key}")}, "data": {"v": "init"}});
        let urls: Vec<String> = cluster.members.iter().map(|m| m.url()).collect();
        skiff_e2e::https_client(&urls.join(","))?
            .post(format!("{}/api/v1/namespaces/default/configmaps", urls[0]))
            .json(&body)
            .send()?
            .error_for_status()?;
        history.lock().expect("history").push(Op {
            client: CLIENTS,
            key: format!("reg-{key}"),
            kind: OpKind::Write("init".into()),
            invoked,
            completed: start.elapsed().as_nanos() as u64,
            outcome: Outcome::Ok,
        });
    }

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| {
            let api = Api {
                urls: cluster.members.iter().map(|m| m.url()).collect(),
                http: skiff_e2e::https_client_builder(&cluster.servers())
                    .expect("http client")
                    .timeout(Duration::from_secs(3))
                    .build()
                    .expect("http client"),
            };
            let (stop, history) = (stop.clone(), history.clone());
            std::thread::spawn(move || client(id, api, start, stop, history))
        })
        .collect();

    // The nemesis, in turn: kill -9 a member (restarted 2 s later), cut the leader off (healed
    // 3 s later), freeze the leader with SIGSTOP (resumed 3 s later), until the run is over.
    let mut round = 0;
    while start.elapsed() < RUN {
        std::thread::sleep(Duration::from_secs(1));
        match round % 3 {
            0 => {
                let victim = round / 3 % 3;
                cluster.kill9(victim)?;
                std::thread::sleep(Duration::from_secs(2));
                cluster.members[victim].process.restart()?;
            }
            1 => {
                let leader = cluster.leader()?;
                cluster.isolate(leader)?;
                std::thread::sleep(Duration::from_secs(3));
                cluster.heal(leader)?;
            }
            _ => {
                let leader = cluster.leader()?;
                cluster.members[leader].process.pause()?;
                std::thread::sleep(Duration::from_secs(3));
                cluster.members[leader].process.resume()?;
            }
        }
        round += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("client thread");
    }
    for i in 0..3 {
        cluster.wait_ready(i)?;
    }

    let history = history.lock().expect("history").clone();
    let definite = history
        .iter()
        .filter(|op| matches!(op.outcome, Outcome::Ok))
        .count();
    let unknown = history.len() - definite;
    let swapped = history
        .iter()
        .filter(|op| {
            matches!(
                op.kind,
                OpKind::Cas {
                    succeeded: true,
                    ..
                }
            )
        })
        .count();
    println!(
        "history: {} operations ({definite} acknowledged, {unknown} of unknown outcome, \
         {swapped} successful compare-and-swaps), {round} nemesis rounds",
        history.len()
    );
    anyhow::ensure!(
        definite > 100,
        "too few acknowledged operations to judge: {definite} of {}",
        history.len()
    );
    let checking = Instant::now();
    let (verdict, efforts) = check_measured(&history, BUDGET);
    for e in &efforts {
        println!(
            "checked {}: {} operations ({} of unknown outcome) in {} search steps",
            e.key, e.ops, e.unknown, e.steps
        );
    }
    println!("checking took {:?}", checking.elapsed());
    // A failing run's whole history, kept for study (`load_history`, then `check_measured`).
    let saved = || -> anyhow::Result<std::path::PathBuf> {
        let path = std::env::temp_dir().join(format!(
            "skiff-linearizable-history-{}.jsonl",
            std::process::id()
        ));
        save_history(&path, &history)?;
        Ok(path)
    };
    match verdict {
        Verdict::Linearizable => {}
        Verdict::Undecided { key } => {
            anyhow::bail!(
                "the checker ran out of budget on {key}: cannot judge the history (saved in {})",
                saved()?.display()
            )
        }
        Verdict::Violation { key, ops } => {
            // The key's whole sub-history, kept for reading after the test.
            let path = std::env::temp_dir().join(format!("skiff-violation-{key}.txt"));
            let lines: Vec<String> = ops.iter().map(|op| format!("{op:?}")).collect();
            std::fs::write(&path, lines.join("\n"))?;
            anyhow::bail!(
                "not linearizable: no order of the {} operations on {key} explains what the \
                 clients saw (they are in {}; the whole history is in {})",
                ops.len(),
                path.display(),
                saved()?.display()
            )
        }
    }
    // Every member agrees on the final values.
    wait_until("all members to agree", Duration::from_secs(30), || {
        let values: Vec<Vec<Option<String>>> = (0..3)
            .map(|i| {
                (0..KEYS)
                    .map(|k| {
                        let url = format!(
                            "{}/api/v1/namespaces/default/configmaps/reg-{k}",
                            cluster.members[i].url()
                        );
                        skiff_e2e::https_client(&url)
                            .ok()
                            .and_then(|http| http.get(&url).send().ok())
                            .and_then(|r| r.json::<Value>().ok())
                            .and_then(|o| value_of(&o))
                    })
                    .collect()
            })
            .collect();
        Ok((values[0] == values[1]
            && values[1] == values[2]
            && values[0].iter().all(Option::is_some))
        .then_some(()))
    })?;
    Ok(())
}
