//! Runs a pipeline's steps as a DAG: independent branches in parallel (bounded), retries with
//! exponential back-off, and a failed step skips everything that depends on it while the
//! other branches finish.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::{Debug, Display};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

/// What names a step: ordered (results come back in a stable order), shown in messages.
pub trait Key: Ord + Clone + Display + Debug + Send + Sync + 'static {}
impl<K: Ord + Clone + Display + Debug + Send + Sync + 'static> Key for K {}

/// A step as the executor sees it.
#[derive(Debug, Clone)]
pub struct DagStep<K> {
    pub name: K,
    pub depends_on: Vec<K>,
    pub retries: u32,
    /// First retry waits this long; each further retry doubles it.
    pub backoff: Duration,
}

#[derive(Debug)]
pub enum StepStatus<K, T> {
    Succeeded {
        output: T,
    },
    Failed {
        error: StepError,
    },
    /// Not run because a step it depends on failed or was skipped.
    Skipped {
        because: Blocked<K>,
    },
}

/// The dependency that kept a step from running.
#[derive(Debug, Clone, PartialEq)]
pub struct Blocked<K> {
    pub dependency: K,
    /// The dependency was itself skipped (rather than failed).
    pub skipped: bool,
}

impl<K: Display> Display for Blocked<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.skipped { "was skipped" } else { "failed" };
        write!(f, "`{}` {what}", self.dependency)
    }
}

#[derive(Debug)]
pub struct StepResult<K, T> {
    pub name: K,
    pub attempts: u32,
    pub seconds: f64,
    pub status: StepStatus<K, T>,
}

impl<K, T> StepResult<K, T> {
    pub fn succeeded(&self) -> bool {
        matches!(self.status, StepStatus::Succeeded { .. })
    }
}

pub type StepFuture<T> = Pin<Box<dyn Future<Output = Result<T, StepError>> + Send>>;

/// Why an attempt failed, and whether another attempt can help.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{error}")]
pub struct StepError {
    #[source]
    pub error: Arc<dyn std::error::Error + Send + Sync>,
    /// Only transient failures (IO, throttling, a lost commit race) are retried; a planning
    /// error, a failed check or a bad row fails the same way every time.
    pub transient: bool,
}

impl StepError {
    pub fn transient(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            error: Arc::from(error.into()),
            transient: true,
        }
    }

    pub fn permanent(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            error: Arc::from(error.into()),
            transient: false,
        }
    }
}

/// What runs one attempt of a step.
pub trait StepRunner<K, T>: Send + Sync + 'static {
    fn run(&self, step: &K, attempt: u32) -> StepFuture<T>;
    /// Called when a step starts, is retried, or finishes (for progress bars and logs).
    fn event(&self, _step: &K, _event: StepEvent<'_>) {}
}

#[derive(Debug, Clone, Copy)]
pub enum StepEvent<'a> {
    Started {
        attempt: u32,
    },
    Retrying {
        attempt: u32,
        error: &'a StepError,
        wait: Duration,
    },
    Finished {
        ok: bool,
    },
    Skipped,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DagError<K: Display> {
    #[error("step `{step}` depends on `{missing}`, which is not a step of this pipeline")]
    UnknownDependency { step: K, missing: K },
    #[error("the steps form a cycle through `{0}`")]
    Cycle(K),
}

/// Runs every step once its dependencies succeeded, at most `max_concurrency` at a time.
/// Results come back in the order the steps were given.
pub async fn execute<K: Key, T: Send + 'static>(
    steps: &[DagStep<K>],
    max_concurrency: usize,
    runner: Arc<dyn StepRunner<K, T>>,
) -> Result<Vec<StepResult<K, T>>, DagError<K>> {
    let names: BTreeSet<&K> = steps.iter().map(|s| &s.name).collect();
    for s in steps {
        if let Some(missing) = s.depends_on.iter().find(|d| !names.contains(d)) {
            return Err(DagError::UnknownDependency {
                step: s.name.clone(),
                missing: missing.clone(),
            });
        }
    }
    let max = max_concurrency.max(1);
    let mut results: BTreeMap<K, StepResult<K, T>> = BTreeMap::new();
    // The running steps by task, so a panicking task is recorded against its own step.
    let mut running: HashMap<tokio::task::Id, K> = HashMap::new();
    let mut set: JoinSet<StepResult<K, T>> = JoinSet::new();
    let is_running = |running: &HashMap<tokio::task::Id, K>, k: &K| running.values().any(|r| r == k);

    loop {
        // Skip what can never run, then start what is ready, in declaration order.
        let mut changed = true;
        while changed {
            changed = false;
            for s in steps {
                if results.contains_key(&s.name) || is_running(&running, &s.name) {
                    continue;
                }
                let blocked = s
                    .depends_on
                    .iter()
                    .find(|d| results.get(*d).is_some_and(|r| !r.succeeded()));
                if let Some(dep) = blocked {
                    runner.event(&s.name, StepEvent::Skipped);
                    let because = Blocked {
                        dependency: dep.clone(),
                        skipped: matches!(results[dep].status, StepStatus::Skipped { .. }),
                    };
                    results.insert(
                        s.name.clone(),
                        StepResult {
                            name: s.name.clone(),
                            attempts: 0,
                            seconds: 0.0,
                            status: StepStatus::Skipped { because },
                        },
                    );
                    changed = true;
                }
            }
        }
        for s in steps {
            if running.len() >= max {
                break;
            }
            let ready = !results.contains_key(&s.name)
                && !is_running(&running, &s.name)
                && s.depends_on
                    .iter()
                    .all(|d| results.get(d).is_some_and(|r| r.succeeded()));
            if ready {
                let handle = set.spawn(run_with_retries(s.clone(), runner.clone()));
                running.insert(handle.id(), s.name.clone());
            }
        }
        if running.is_empty() {
            break;
        }
        match set.join_next_with_id().await {
            Some(Ok((id, result))) => {
                running.remove(&id);
                results.insert(result.name.clone(), result);
            }
            Some(Err(join_error)) => {
                // A panicking step must not take the pipeline down silently: record it as failed.
                let name = running.remove(&join_error.id()).expect("a task of this set");
                results.insert(
                    name.clone(),
                    StepResult {
                        name,
                        attempts: 1,
                        seconds: 0.0,
                        status: StepStatus::Failed {
                            error: StepError::permanent(Panicked(join_error)),
                        },
                    },
                );
            }
            None => break,
        }
    }
    if let Some(stuck) = steps.iter().find(|s| !results.contains_key(&s.name)) {
        return Err(DagError::Cycle(stuck.name.clone()));
    }
    Ok(steps
        .iter()
        .map(|s| results.remove(&s.name).expect("every step has a result"))
        .collect())
}

#[derive(Debug, thiserror::Error)]
#[error("the step panicked: {0}")]
struct Panicked(#[source] tokio::task::JoinError);

async fn run_with_retries<K: Key, T: Send + 'static>(
    step: DagStep<K>,
    runner: Arc<dyn StepRunner<K, T>>,
) -> StepResult<K, T> {
    let start = Instant::now();
    let mut attempt = 1;
    loop {
        runner.event(&step.name, StepEvent::Started { attempt });
        match runner.run(&step.name, attempt).await {
            Ok(output) => {
                runner.event(&step.name, StepEvent::Finished { ok: true });
                return StepResult {
                    name: step.name,
                    attempts: attempt,
                    seconds: start.elapsed().as_secs_f64(),
                    status: StepStatus::Succeeded { output },
                };
            }
            Err(error) if error.transient && attempt <= step.retries => {
                let wait = step.backoff.saturating_mul(1 << (attempt - 1).min(16));
                runner.event(
                    &step.name,
                    StepEvent::Retrying {
                        attempt,
                        error: &error,
                        wait,
                    },
                );
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            Err(error) => {
                runner.event(&step.name, StepEvent::Finished { ok: false });
                return StepResult {
                    name: step.name,
                    attempts: attempt,
                    seconds: start.elapsed().as_secs_f64(),
                    status: StepStatus::Failed { error },
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Fails the named steps a given number of times; records the order steps started in and
    /// the peak number running at once.
    struct Script {
        failures: Mutex<BTreeMap<String, u32>>,
        started: Mutex<Vec<String>>,
        /// (running now, peak)
        running: Arc<Mutex<(usize, usize)>>,
    }

    impl StepRunner<String, u32> for Script {
        fn run(&self, step: &String, attempt: u32) -> StepFuture<u32> {
            self.started.lock().unwrap().push(step.to_string());
            let fail = {
                let mut f = self.failures.lock().unwrap();
                match f.get_mut(step.as_str()) {
                    Some(n) if *n > 0 => {
                        *n -= 1;
                        true
                    }
                    _ => false,
                }
            };
            {
                let mut r = self.running.lock().unwrap();
                r.0 += 1;
                r.1 = r.1.max(r.0);
            }
            let running = self.running.clone();
            Box::pin(async move {
                tokio::task::yield_now().await;
                running.lock().unwrap().0 -= 1;
                if fail {
                    Err(StepError::transient(format!("boom on attempt {attempt}")))
                } else {
                    Ok(attempt)
                }
            })
        }
    }

    fn step(name: &str, deps: &[&str], retries: u32) -> DagStep<String> {
        DagStep {
            name: name.into(),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            retries,
            backoff: Duration::from_millis(100),
        }
    }

    fn script(failures: &[(&str, u32)]) -> Arc<Script> {
        Arc::new(Script {
            failures: Mutex::new(failures.iter().map(|(s, n)| (s.to_string(), *n)).collect()),
            started: Mutex::new(Vec::new()),
            running: Arc::new(Mutex::new((0, 0))),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn failure_skips_dependents_but_not_other_branches() {
        // a → b → c, and an independent d; b always fails.
        let steps = [
            step("a", &[], 0),
            step("b", &["a"], 1),
            step("c", &["b"], 0),
            step("d", &[], 0),
        ];
        let s = script(&[("b", 10)]);
        let results = execute(&steps, 2, s.clone()).await.unwrap();
        let by: BTreeMap<_, _> = results.iter().map(|r| (r.name.as_str(), r)).collect();
        assert!(by["a"].succeeded());
        assert!(matches!(by["b"].status, StepStatus::Failed { .. }));
        assert_eq!(by["b"].attempts, 2, "one retry");
        match &by["c"].status {
            StepStatus::Skipped { because } => assert_eq!(because.to_string(), "`b` failed"),
            other => panic!("{other:?}"),
        }
        assert!(by["d"].succeeded());
        assert!(!s.started.lock().unwrap().contains(&"c".to_string()));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_success_and_respects_order() {
        let steps = [step("load", &[], 3), step("agg", &["load"], 0)];
        let s = script(&[("load", 2)]);
        let results = execute(&steps, 4, s.clone()).await.unwrap();
        assert!(matches!(results[0].status, StepStatus::Succeeded { output: 3 }));
        assert!(results[1].succeeded());
        assert_eq!(*s.started.lock().unwrap(), ["load", "load", "load", "agg"]);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_is_bounded() {
        let steps: Vec<DagStep<String>> = (0..6).map(|i| step(&format!("s{i}"), &[], 0)).collect();
        let s = script(&[]);
        execute(&steps, 2, s.clone()).await.unwrap();
        let peak = s.running.lock().unwrap().1;
        assert!(peak <= 2, "peak {peak}");
        assert_eq!(s.started.lock().unwrap().len(), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_not_retried() {
        struct Permanent;
        impl StepRunner<String, u32> for Permanent {
            fn run(&self, _step: &String, _attempt: u32) -> StepFuture<u32> {
                Box::pin(async { Err(StepError::permanent("no column `qty`")) })
            }
        }
        let results = execute(&[step("a", &[], 3)], 1, Arc::new(Permanent)).await.unwrap();
        assert_eq!(results[0].attempts, 1);
        match &results[0].status {
            StepStatus::Failed { error } => assert_eq!(error.to_string(), "no column `qty`"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn unknown_dependency_is_an_error() {
        let err = execute(&[step("a", &["nope"], 0)], 1, script(&[])).await.unwrap_err();
        assert_eq!(
            err,
            DagError::UnknownDependency {
                step: "a".into(),
                missing: "nope".into()
            }
        );
    }
}
