//! Everything the routes share: the service, HTTP options and metrics, and the server's phase.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use lazycache_service::{Service, TieredCache};
use prometheus::Registry;

use crate::metrics::HttpMetrics;
use crate::options::HttpOptions;

/// Where the server is in its life; only `Serving` is ready.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Starting,
    Serving,
    /// Told to stop: not ready, but still answering everything (`--shutdown-delay`).
    Leaving,
    /// Listener closed: running requests finish; those still waiting for a decode slot get 503.
    Draining,
}

/// Shared state of the HTTP front door. Cloning is cheap.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub service: Service,
    pub registry: Registry,
    pub metrics: HttpMetrics,
    pub options: HttpOptions,
    phase: AtomicU8,
    /// Says when the phase changes, for requests waiting out the start.
    phase_changed: tokio::sync::watch::Sender<()>,
}

impl AppState {
    /// Registers the HTTP metrics in `registry` (where the service's and the cache's are). Until
    /// [`Self::start_serving`] hands over the open cache, `/v1` requests wait for it (at most
    /// [`crate::STARTUP_WAIT`], then 503 "starting"; health, `/`, `/info` and `/metrics` already
    /// answer, `/readyz` says 503), so the port can be bound before the slow start-up work.
    pub fn new(
        service: Service,
        registry: Registry,
        options: HttpOptions,
    ) -> Result<Self, prometheus::Error> {
        let metrics = HttpMetrics::register(&registry)?;
        Ok(Self {
            inner: Arc::new(Inner {
                service,
                registry,
                metrics,
                options,
                phase: AtomicU8::new(Phase::Starting as u8),
                phase_changed: tokio::sync::watch::channel(()).0,
            }),
        })
    }

    pub fn service(&self) -> &Service {
        &self.inner.service
    }

    /// Hands the opened cache to the service; from now on `/v1` is served and `/readyz` is 200.
    pub fn start_serving(&self, cache: TieredCache) {
        self.inner.service.start_serving(cache);
        self.set_phase(Phase::Serving);
    }

    /// From now on `/readyz` answers 503 "shutting down"; requests are still answered.
    pub fn begin_shutdown(&self) {
        self.set_phase(Phase::Leaving);
    }

    /// From now on requests waiting for a decode slot, and any that still arrives needing one,
    /// get 503 "shutting down" rather than start new work; running decodes finish. The drain is
    /// then bounded by the decodes under way, not by the queue.
    pub fn begin_drain(&self) {
        self.set_phase(Phase::Draining);
        self.inner.service.stop_decoding();
    }

    pub fn is_ready(&self) -> bool {
        self.phase() == Phase::Serving
    }

    pub fn is_shutting_down(&self) -> bool {
        matches!(self.phase(), Phase::Leaving | Phase::Draining)
    }

    pub fn is_starting(&self) -> bool {
        self.phase() == Phase::Starting
    }

    /// Waits while the server is starting (the tiers opening), at most `limit`; whether it
    /// started. Clients such as pycamhd-lazycache do not retry a 503, so a request that arrives
    /// in the first seconds waits rather than fails.
    pub async fn wait_until_started(&self, limit: std::time::Duration) -> bool {
        let mut changed = self.inner.phase_changed.subscribe();
        let wait = async {
            // Subscribed before checking: a change between the check and the wait is not lost.
            while self.is_starting() {
                if changed.changed().await.is_err() {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(limit, wait).await;
        !self.is_starting()
    }

    /// The cache once open, e.g. to flush its write-behind queues at shutdown.
    pub fn cache(&self) -> Option<&TieredCache> {
        self.inner.service.cache()
    }

    fn set_phase(&self, phase: Phase) {
        self.inner.phase.store(phase as u8, Ordering::SeqCst);
        self.inner.phase_changed.send_replace(());
    }

    fn phase(&self) -> Phase {
        match self.inner.phase.load(Ordering::SeqCst) {
            0 => Phase::Starting,
            1 => Phase::Serving,
            2 => Phase::Leaving,
            _ => Phase::Draining,
        }
    }
}
