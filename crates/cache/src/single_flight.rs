//! Single flight: concurrent loads of one key share one run. The run is a spawned task, so it
//! finishes for the others even when the caller that started it goes away.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};

use crate::key::CacheKey;
use crate::value::Lookup;

/// Why a shared run produced no value; cloned to every waiter.
#[derive(Clone)]
pub(crate) enum Failure {
    /// The computation's own error (type-erased) and its message.
    Computed {
        error: Arc<dyn Any + Send + Sync>,
        message: String,
    },
    TimedOut(Duration),
    Panicked,
}

pub(crate) type Outcome = Result<Lookup, Failure>;
pub(crate) type SharedOutcome = Shared<BoxFuture<'static, Outcome>>;

/// The runs in progress, by key.
#[derive(Default)]
pub(crate) struct Flights {
    running: Mutex<HashMap<CacheKey, Flight>>,
}

struct Flight {
    id: u64,
    outcome: SharedOutcome,
}

/// Owned by a run's task: when dropped — as the run finishes, and also when its task panics or is
/// cancelled — removes the run's entry from `Flights`, unless a newer run already holds the key.
struct RemoveFlightOnDrop {
    flights: Arc<Flights>,
    key: CacheKey,
    id: u64,
}

impl Drop for RemoveFlightOnDrop {
    fn drop(&mut self) {
        let mut running = self.flights.lock();
        if running
            .get(&self.key)
            .is_some_and(|flight| flight.id == self.id)
        {
            running.remove(&self.key);
        }
    }
}

impl Flights {
    /// The outcome of the run for `key`: the one in progress (`true`: joined), or a new one made
    /// from `run` and spawned on the current tokio runtime (`false`).
    pub(crate) fn join_or_start(
        self: &Arc<Self>,
        key: &CacheKey,
        run: impl FnOnce() -> BoxFuture<'static, Outcome>,
    ) -> (SharedOutcome, bool) {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let mut running = self.lock();
        if let Some(flight) = running.get(key) {
            return (flight.outcome.clone(), true);
        }
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let remove_on_drop = RemoveFlightOnDrop {
            flights: Arc::clone(self),
            key: key.clone(),
            id,
        };
        let work = run();
        let task = tokio::spawn(async move {
            let outcome = work.await;
            // Leave the map before waiters see the outcome: a caller arriving later finds the
            // value in memory, or (after a failure) starts afresh.
            drop(remove_on_drop);
            outcome
        });
        let outcome = async move { task.await.unwrap_or(Err(Failure::Panicked)) }
            .boxed()
            .shared();
        running.insert(
            key.clone(),
            Flight {
                id,
                outcome: outcome.clone(),
            },
        );
        (outcome, false)
    }

    /// Number of runs in progress.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, Flight>> {
        // Entries are inserted and removed whole; a poisoned map is still consistent.
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
