//! The services of a running handler, built once and lazily (the Functions host polls `GET /`
//! until it answers, so nothing may wait for credentials before that), and the limits its
//! requests are held to.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::OnceCell;

use crate::app::build::BuildError;
use crate::app::runner::{Runner, Services};

/// Builds the services on first need (configuration, credentials, clients).
pub type ServicesFactory = Arc<dyn Fn() -> BoxFuture<'static, Result<Services, BuildError>> + Send + Sync>;

/// Shared server state: the services, built once, lazily.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    factory: ServicesFactory,
    runner: OnceCell<Result<Arc<Runner>, BuildError>>,
    limits: Limits,
}

impl AppState {
    pub fn new(factory: ServicesFactory) -> AppState {
        AppState::with_limits(factory, Limits::default())
    }

    /// A state whose requests are held to `limits` (tests shorten the body read timeout).
    pub fn with_limits(factory: ServicesFactory, limits: Limits) -> AppState {
        AppState {
            inner: Arc::new(Inner {
                factory,
                runner: OnceCell::new(),
                limits,
            }),
        }
    }

    pub(crate) fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// The runner, building the services on first call; every caller shares one build.
    pub(crate) async fn runner(&self) -> Result<Arc<Runner>, BuildError> {
        self.inner
            .runner
            .get_or_init(|| async {
                match (self.inner.factory)().await {
                    Ok(services) => Ok(Arc::new(Runner::new(services))),
                    Err(e) => {
                        tracing::error!(error = %e, "seedwatch cannot start its services");
                        Err(e)
                    }
                }
            })
            .await
            .clone()
    }

    /// Starts building the services in the background, so the first invocation finds them ready.
    pub(crate) fn warm_up(&self) {
        let state = self.clone();
        tokio::spawn(async move {
            let _ = state.runner().await;
        });
    }
}

/// Limits on invocation requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest body accepted (answered 413 beyond).
    pub max_body: usize,
    /// How long a body may take to arrive in full (answered 408 beyond).
    pub body_read_timeout: Duration,
}

/// An Event Grid delivery is at most 1 MB
/// (https://learn.microsoft.com/azure/event-grid/event-schema); the host forwards it
/// JSON-encoded inside a string and copies `data` into `Metadata`, which can double it twice.
/// 8 MiB holds the largest delivery with room and refuses anything far beyond.
pub const MAX_BODY: usize = 8 * 1024 * 1024;

/// The host writes a whole body at once over loopback; ten seconds is generous for it and
/// short for a sender that dribbles bytes to hold the connection.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_body: MAX_BODY,
            body_read_timeout: BODY_READ_TIMEOUT,
        }
    }
}
