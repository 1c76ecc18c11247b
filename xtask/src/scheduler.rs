//! Runs jobs over a graph: each starts as soon as everything it depends on has succeeded, up
//! to `jobs` at a time; a failure marks its descendants skipped while independent branches go
//! on (or stops everything with `fail_fast`); an interrupt stops scheduling and cancels what
//! runs (dropping a job's future is how a build is cancelled on the engine).
//!
//! Generic over the work, so its rules are tested without an engine.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;

/// What happened to one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<T, E> {
    Done(T),
    Failed(E),
    /// Not run: this dependency failed or was skipped first.
    Skipped {
        because: String,
    },
    /// Running when the run was interrupted or stopped by `fail_fast`; cancelled.
    Cancelled,
    /// Never started: the run was interrupted or stopped first.
    NotStarted,
}

/// A job's outcome with its timing.
#[derive(Debug, Clone)]
pub struct Finished<T, E> {
    pub outcome: Outcome<T, E>,
    pub started: Option<Instant>,
    pub duration: Duration,
}

/// A job: its name and the names of the jobs it needs (those outside the run are ignored).
#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub needs: Vec<String>,
}

/// Runs `jobs` (given in a topological order) with `work`, which receives the job's name and
/// the results of the jobs it needs. `interrupt` turning true cancels the run.
pub async fn run<T, E, F, Fut>(
    jobs: &[Job],
    concurrency: usize,
    fail_fast: bool,
    mut interrupt: watch::Receiver<bool>,
    work: F,
) -> BTreeMap<String, Finished<T, E>>
where
    T: Clone + Send + 'static,
    E: Send + 'static,
    F: Fn(String, HashMap<String, T>) -> Fut,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
{
    let names: BTreeSet<&str> = jobs.iter().map(|job| job.name.as_str()).collect();
    let mut results: BTreeMap<String, Finished<T, E>> = BTreeMap::new();
    let mut running: HashMap<tokio::task::Id, (String, Instant)> = HashMap::new();
    let mut set: JoinSet<Result<T, E>> = JoinSet::new();
    let mut stopping = *interrupt.borrow();
    loop {
        if !stopping {
            // Start every job whose needs are done, in the given order, while there is room.
            for job in jobs {
                if set.len() >= concurrency.max(1) {
                    break;
                }
                if results.contains_key(&job.name) || running.values().any(|(name, _)| name == &job.name) {
                    continue;
                }
                let needs: Vec<&String> = job.needs.iter().filter(|need| names.contains(need.as_str())).collect();
                if let Some(blocked) = needs.iter().find(|need| {
                    results.get(need.as_str()).is_some_and(|finished| !matches!(finished.outcome, Outcome::Done(_)))
                }) {
                    let because = match &results[blocked.as_str()].outcome {
                        Outcome::Skipped { because } => because.clone(),
                        _ => blocked.to_string(),
                    };
                    results.insert(
                        job.name.clone(),
                        Finished { outcome: Outcome::Skipped { because }, started: None, duration: Duration::ZERO },
                    );
                    continue;
                }
                let mut inputs = HashMap::new();
                let mut ready = true;
                for need in &needs {
                    match results.get(need.as_str()) {
                        Some(Finished { outcome: Outcome::Done(value), .. }) => {
                            inputs.insert(need.to_string(), value.clone());
                        }
                        _ => ready = false,
                    }
                }
                if ready {
                    let handle = set.spawn(work(job.name.clone(), inputs));
                    running.insert(handle.id(), (job.name.clone(), Instant::now()));
                }
            }
        }
        if set.is_empty() {
            break;
        }
        tokio::select! {
            joined = set.join_next_with_id() => {
                let Some(joined) = joined else { break };
                let (id, outcome) = match joined {
                    Ok((id, Ok(value))) => (id, Outcome::Done(value)),
                    Ok((id, Err(error))) => (id, Outcome::Failed(error)),
                    Err(error) => (error.id(), if error.is_cancelled() { Outcome::Cancelled } else { std::panic::resume_unwind(error.into_panic()) }),
                };
                let (name, started) = running.remove(&id).expect("every task is recorded when spawned");
                let failed = matches!(outcome, Outcome::Failed(_));
                results.insert(name, Finished { outcome, started: Some(started), duration: started.elapsed() });
                if failed && fail_fast && !stopping {
                    stopping = true;
                    set.abort_all();
                }
            }
            changed = interrupt.changed(), if !stopping => {
                if changed.is_err() || *interrupt.borrow() {
                    stopping = true;
                    set.abort_all();
                }
            }
        }
    }
    for job in jobs {
        results.entry(job.name.clone()).or_insert(Finished {
            outcome: Outcome::NotStarted,
            started: None,
            duration: Duration::ZERO,
        });
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn job(name: &str, needs: &[&str]) -> Job {
        Job { name: name.into(), needs: needs.iter().map(|n| n.to_string()).collect() }
    }

    /// a -> b -> d, c (independent), e needs b and c.
    fn diamond() -> Vec<Job> {
        vec![job("a", &[]), job("c", &[]), job("b", &["a"]), job("d", &["b"]), job("e", &["b", "c"])]
    }

    type Log = Arc<Mutex<Vec<String>>>;

    async fn sleepy(
        log: Log,
        name: String,
        inputs: HashMap<String, String>,
        fail: &'static [&'static str],
    ) -> Result<String, String> {
        log.lock().unwrap().push(format!("start {name}"));
        tokio::time::sleep(Duration::from_millis(if name == "c" { 80 } else { 20 })).await;
        log.lock().unwrap().push(format!("end {name}"));
        if fail.contains(&name.as_str()) {
            return Err(format!("{name} broke"));
        }
        let mut seen: Vec<_> = inputs.keys().cloned().collect();
        seen.sort();
        Ok(format!("{name}({})", seen.join(",")))
    }

    fn outcome(results: &BTreeMap<String, Finished<String, String>>, name: &str) -> Outcome<String, String> {
        results[name].outcome.clone()
    }

    #[tokio::test]
    async fn respects_dependencies_and_passes_results() {
        let log: Log = Arc::default();
        let (_tx, rx) = watch::channel(false);
        let l = log.clone();
        let results = run(&diamond(), 4, false, rx, move |name, inputs| sleepy(l.clone(), name, inputs, &[])).await;
        assert_eq!(outcome(&results, "e"), Outcome::Done("e(b,c)".into()));
        let log = log.lock().unwrap().clone();
        let at = |entry: &str| log.iter().position(|e| e == entry).unwrap();
        assert!(at("end a") < at("start b") && at("end b") < at("start d") && at("end c") < at("start e"));
        // c and a ran at the same time.
        assert!(at("start c") < at("end a"), "{log:?}");
    }

    #[tokio::test]
    async fn a_failure_skips_descendants_and_the_rest_goes_on() {
        let (_tx, rx) = watch::channel(false);
        let results = run(&diamond(), 2, false, rx, |name, inputs| sleepy(Arc::default(), name, inputs, &["a"])).await;
        assert_eq!(outcome(&results, "a"), Outcome::Failed("a broke".into()));
        assert_eq!(outcome(&results, "b"), Outcome::Skipped { because: "a".into() });
        assert_eq!(outcome(&results, "d"), Outcome::Skipped { because: "a".into() });
        assert_eq!(outcome(&results, "e"), Outcome::Skipped { because: "a".into() });
        assert_eq!(outcome(&results, "c"), Outcome::Done("c()".into()));
    }

    #[tokio::test]
    async fn fail_fast_cancels_what_runs() {
        let (_tx, rx) = watch::channel(false);
        let results = run(&diamond(), 2, true, rx, |name, inputs| sleepy(Arc::default(), name, inputs, &["a"])).await;
        assert_eq!(outcome(&results, "a"), Outcome::Failed("a broke".into()));
        assert_eq!(outcome(&results, "c"), Outcome::Cancelled);
        assert_eq!(outcome(&results, "b"), Outcome::NotStarted);
    }

    #[tokio::test]
    async fn an_interrupt_cancels_running_jobs_and_starts_nothing_more() {
        let (tx, rx) = watch::channel(false);
        let started = Arc::new(tokio::sync::Notify::new());
        let b_started = started.clone();
        // `b` runs until it is cancelled; the others finish at once. No timing involved.
        let run = tokio::spawn(async move {
            run(&diamond(), 1, false, rx, move |name, _| {
                let b_started = b_started.clone();
                async move {
                    if name == "b" {
                        b_started.notify_one();
                        std::future::pending::<()>().await;
                    }
                    Ok::<_, String>(name)
                }
            })
            .await
        });
        started.notified().await;
        tx.send(true).unwrap();
        let results = run.await.unwrap();
        assert_eq!(outcome(&results, "a"), Outcome::Done("a".into()));
        assert_eq!(outcome(&results, "b"), Outcome::Cancelled);
        assert_eq!(outcome(&results, "d"), Outcome::NotStarted);
        assert_eq!(outcome(&results, "e"), Outcome::NotStarted);
        assert!(matches!(outcome(&results, "c"), Outcome::Done(_) | Outcome::NotStarted), "{results:?}");
    }

    #[tokio::test]
    async fn concurrency_is_bounded() {
        let active = Arc::new(Mutex::new((0usize, 0usize)));
        let (_tx, rx) = watch::channel(false);
        let jobs: Vec<Job> = (0..6).map(|i| job(&format!("j{i}"), &[])).collect();
        let a = active.clone();
        run(&jobs, 2, false, rx, move |_, _| {
            let a = a.clone();
            async move {
                {
                    let mut state = a.lock().unwrap();
                    state.0 += 1;
                    state.1 = state.1.max(state.0);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
                a.lock().unwrap().0 -= 1;
                Ok::<_, String>(())
            }
        })
        .await;
        assert_eq!(active.lock().unwrap().1, 2);
    }
}
