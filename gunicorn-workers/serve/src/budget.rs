//! gunicorn's `max_requests`: a worker serves this many requests (plus a random jitter), then
//! restarts gracefully, logging `Autorestarting worker after current request.`
//! ([`log_autorestart`]) when it decides to. Every worker class counts through one
//! [`RequestBudget`].

use std::sync::atomic::{AtomicU64, Ordering};

use gunicorn_core::{log_info, Config};

/// Where a request falls in the worker's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// The worker keeps serving after this request.
    Within,
    /// This request reaches the budget: answer it with `Connection: close`, then stop
    /// gracefully (and say so with [`log_autorestart`]).
    Last,
    /// Past the budget: requests still served while the worker stops (concurrent classes).
    Past,
}

impl Count {
    /// The worker stops after this request (`Last` or `Past`).
    pub fn is_final(self) -> bool {
        self != Count::Within
    }
}

/// The requests a worker may serve before it restarts, and how many it served.
#[derive(Debug)]
pub struct RequestBudget {
    max: Option<u64>,
    handled: AtomicU64,
}

impl RequestBudget {
    /// gunicorn's base worker: `max_requests + randint(0, max_requests_jitter)`, unlimited when
    /// `max_requests` is 0. Drawn once per worker (call it in the worker's build).
    pub fn from_config(cfg: &Config) -> RequestBudget {
        RequestBudget::new(gunicorn_core::worker::max_requests(cfg))
    }

    /// A budget of `max` requests; `None` is unlimited.
    pub fn new(max: Option<u64>) -> RequestBudget {
        RequestBudget {
            max,
            handled: AtomicU64::new(0),
        }
    }

    /// The limit drawn for this worker.
    pub fn max(&self) -> Option<u64> {
        self.max
    }

    /// Counts one request.
    pub fn count(&self) -> Count {
        let n = self.handled.fetch_add(1, Ordering::Relaxed) + 1;
        match self.max {
            Some(max) if n == max => Count::Last,
            Some(max) if n > max => Count::Past,
            _ => Count::Within,
        }
    }
}

/// gunicorn's line when a worker stops for `max_requests` (logged by each class where gunicorn's
/// logs it: gthread only while not already stopping).
pub fn log_autorestart() {
    log_info!("Autorestarting worker after current request.");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_up_to_the_budget() {
        let b = RequestBudget::new(Some(3));
        let seen: Vec<Count> = (0..5).map(|_| b.count()).collect();
        assert_eq!(
            seen,
            [
                Count::Within,
                Count::Within,
                Count::Last,
                Count::Past,
                Count::Past
            ]
        );
        let unlimited = RequestBudget::new(None);
        assert!((0..1000).all(|_| unlimited.count() == Count::Within));
        let one = RequestBudget::new(Some(1));
        assert_eq!(one.count(), Count::Last);
        assert!(one.count().is_final());
    }
}
