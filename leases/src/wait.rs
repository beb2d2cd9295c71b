//! Wait handles given to a requester that must wait for a break or a blocked lock.
//!
//! A handle completes exactly once (the first completion wins); it can be waited on by a
//! blocking thread or `.await`ed from any async runtime. Dropping a handle that has not
//! completed withdraws the request from the manager.

use parking_lot::{Condvar, Mutex};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// What ended a break wait (DESIGN.md: each waiter is woken by exactly one of these).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WakeReason {
    /// The holder acknowledged down to what the requester needs.
    Acked,
    /// The holder closed its last open of the lease.
    Released,
    /// The holder's connection went away.
    Disconnected,
    /// The break deadline passed and the lease was set to None (MS-SMB2 3.3.6.5).
    Revoked,
    /// The wait was withdrawn (the requester dropped or cancelled it).
    Cancelled,
}

pub(crate) struct Slot<T> {
    inner: Mutex<SlotInner<T>>,
    cond: Condvar,
}

struct SlotInner<T> {
    result: Option<T>,
    waker: Option<Waker>,
    completions: u32,
}

impl<T: Clone> Slot<T> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(SlotInner {
                result: None,
                waker: None,
                completions: 0,
            }),
            cond: Condvar::new(),
        })
    }

    /// Completes the slot; returns false if it had completed already.
    pub(crate) fn complete(&self, value: T) -> bool {
        let waker = {
            let mut g = self.inner.lock();
            g.completions += 1;
            if g.result.is_some() {
                return false;
            }
            g.result = Some(value);
            g.waker.take()
        };
        self.cond.notify_all();
        if let Some(w) = waker {
            w.wake();
        }
        true
    }

    pub(crate) fn result(&self) -> Option<T> {
        self.inner.lock().result.clone()
    }

    pub(crate) fn completions(&self) -> u32 {
        self.inner.lock().completions
    }

    fn wait(&self, timeout: Option<Duration>) -> Option<T> {
        let mut g = self.inner.lock();
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        while g.result.is_none() {
            match deadline {
                None => self.cond.wait(&mut g),
                Some(d) => {
                    if self.cond.wait_until(&mut g, d).timed_out() {
                        break;
                    }
                }
            }
        }
        g.result.clone()
    }

    fn poll(&self, cx: &mut Context<'_>) -> Poll<T> {
        let mut g = self.inner.lock();
        match &g.result {
            Some(r) => Poll::Ready(r.clone()),
            None => {
                g.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Withdraws a wait from the manager when its handle is dropped unfinished.
pub(crate) trait Withdraw: Send + Sync {
    fn withdraw(&self, id: u64);
}

/// A generic wait handle; see [`BreakWait`] and [`LockWait`].
pub struct WaitHandle<T: Clone> {
    pub(crate) slot: Arc<Slot<T>>,
    pub(crate) id: u64,
    pub(crate) owner: Weak<dyn Withdraw>,
}

impl<T: Clone> WaitHandle<T> {
    /// Blocks the calling thread until the wait completes.
    pub fn wait(self) -> T {
        loop {
            if let Some(r) = self.slot.wait(None) {
                return r;
            }
        }
    }

    /// Blocks up to `timeout`; `None` if still waiting.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<T> {
        self.slot.wait(Some(timeout))
    }

    /// The result if the wait has completed.
    pub fn try_result(&self) -> Option<T> {
        self.slot.result()
    }

    /// How many times something tried to complete this wait (diagnostics: a waiter is
    /// woken by exactly one event, so anything above 1 means two events raced for it).
    pub fn wake_attempts(&self) -> u32 {
        self.slot.completions()
    }

    pub fn is_done(&self) -> bool {
        self.slot.result().is_some()
    }

    /// An id unique among the manager's waits, for logs and cancellation by front ends.
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl<T: Clone> Future for WaitHandle<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        self.slot.poll(cx)
    }
}

impl<T: Clone> Drop for WaitHandle<T> {
    fn drop(&mut self) {
        if self.slot.result().is_none() {
            if let Some(owner) = self.owner.upgrade() {
                owner.withdraw(self.id);
            }
        }
    }
}

impl<T: Clone> std::fmt::Debug for WaitHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WaitHandle#{}", self.id)
    }
}

/// Wait for other holders' leases to be broken; then retry the operation.
pub type BreakWait = WaitHandle<WakeReason>;
/// Wait for a blocked byte-range lock; `Ok` once it is granted.
pub type LockWait = WaitHandle<Result<(), crate::error::LockError>>;
