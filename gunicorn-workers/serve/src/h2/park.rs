//! How the code that runs the app waits for a stream: a pool thread blocks (the default), but
//! a greenlet must not, because its OS thread is the hub's and every other connection of the
//! worker would stop with it. A worker class whose requests run as greenlets gives each stream
//! a [`Park`]: the stream's body and reply then poll their channels with the park's waker and,
//! when a channel is not ready, call [`Park::park`], which switches to the hub until the waker
//! fires (the gevent and eventlet workers, `gunicorn-workers/greenlet/src/h2.rs`).

use std::future::Future;
use std::io;
use std::task::{Context, Poll, Waker};

/// A cooperative wait: what a greenlet does instead of blocking its thread.
pub trait Park: Send + Sync {
    /// The waker that ends a wait in [`Park::park`]. The HTTP/2 thread may wake it at any
    /// time, also when no wait is under way (the next wait may then return at once).
    fn waker(&self) -> Waker;

    /// Waits until the waker fires (a spurious return is allowed: the caller polls again).
    /// Err when the wait was interrupted for good (the greenlet is being killed): the read or
    /// send fails with it.
    fn park(&self) -> io::Result<()>;
}

/// Drives `fut` to its end on the calling thread, waiting with `park` whenever it is pending.
///
/// The future lives on the heap, not on the caller's stack: a parked greenlet's stack is
/// copied away and its addresses reused by the greenlets that run meanwhile, while the HTTP/2
/// thread may still write to what a pending future registered (tokio's semaphore links a
/// waiting `send` into its list by address). Polled there, a large response's sends woke the
/// wrong memory and hung.
pub fn wait_on<F: Future>(fut: F, park: &dyn Park) -> io::Result<F::Output> {
    let mut fut = Box::pin(fut);
    let waker = park.waker();
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return Ok(out);
        }
        park.park()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Condvar, Mutex};
    use std::task::Wake;

    /// A park that blocks on a condition variable, counting its waits.
    #[derive(Default)]
    struct Flag {
        woken: Mutex<bool>,
        cond: Condvar,
        parks: AtomicUsize,
    }

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            *self.woken.lock().unwrap() = true;
            self.cond.notify_all();
        }
    }

    struct FlagPark(Arc<Flag>);

    impl Park for FlagPark {
        fn waker(&self) -> Waker {
            Waker::from(Arc::clone(&self.0))
        }

        fn park(&self) -> io::Result<()> {
            self.0.parks.fetch_add(1, Ordering::Relaxed);
            let mut woken = self.0.woken.lock().unwrap();
            while !*woken {
                woken = self.0.cond.wait(woken).unwrap();
            }
            *woken = false;
            Ok(())
        }
    }

    struct Refusing;

    impl Park for Refusing {
        fn waker(&self) -> Waker {
            Waker::noop().clone()
        }

        fn park(&self) -> io::Result<()> {
            Err(io::Error::other("killed"))
        }
    }

    #[test]
    fn waits_until_woken_and_fails_with_the_park() {
        // Ready at once: no wait.
        let flag = Arc::new(Flag::default());
        let park = FlagPark(Arc::clone(&flag));
        assert_eq!(wait_on(async { 7 }, &park).unwrap(), 7);
        assert_eq!(flag.parks.load(Ordering::Relaxed), 0);
        // A channel filled by another thread later: the park waits for its wake-up.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u8>(1);
        let sender = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            tx.blocking_send(42).unwrap();
        });
        assert_eq!(wait_on(rx.recv(), &park).unwrap(), Some(42));
        assert!(flag.parks.load(Ordering::Relaxed) >= 1);
        sender.join().unwrap();
        // A park that fails ends the wait with its error.
        let (_tx, mut rx) = tokio::sync::mpsc::channel::<u8>(1);
        assert!(wait_on(rx.recv(), &Refusing).is_err());
    }
}
