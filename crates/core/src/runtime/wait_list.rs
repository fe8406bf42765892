//! Tasks of one thread waiting for a condition that other tasks of that thread make true: the
//! one waiter list of this crate (store activity, a database being opened, compactions,
//! flushes). Single-threaded, so a `RefCell` of wakers is enough; across threads use the
//! executor's `oneshot` or a `Mutex`-based primitive.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::task::{Poll, Waker};

#[derive(Default)]
pub struct WaitList {
    wakers: RefCell<Vec<Waker>>,
}

impl WaitList {
    /// Resolves once `ready()` holds, checked now and again after every [`WaitList::wake_all`].
    pub fn until<'a>(&'a self, ready: impl Fn() -> bool + 'a) -> impl Future<Output = ()> + 'a {
        poll_fn(move |cx| {
            if ready() {
                Poll::Ready(())
            } else {
                self.wakers.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
    }

    /// Resolves after the next [`WaitList::wake_all`].
    pub async fn next_wake(&self) {
        let mut registered = false;
        poll_fn(|cx| {
            if registered {
                Poll::Ready(())
            } else {
                registered = true;
                self.wakers.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    /// Wakes every waiter (each checks its condition again).
    pub fn wake_all(&self) {
        let wakers = std::mem::take(&mut *self.wakers.borrow_mut());
        for w in wakers {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::executor::{block_on, Executor};
    use std::cell::Cell;
    use std::rc::Rc;

    #[test]
    fn waiters_resolve_once_their_condition_holds() {
        block_on(async {
            let list = Rc::new(WaitList::default());
            let n = Rc::new(Cell::new(0));
            let done = Rc::new(Cell::new(false));
            let (l, m, d) = (list.clone(), n.clone(), done.clone());
            Executor::current().unwrap().spawn(async move {
                l.until(|| m.get() >= 2).await;
                d.set(true);
            });
            n.set(1);
            list.wake_all();
            Executor::current().unwrap().drain();
            assert!(!done.get(), "1 < 2: still waiting");
            n.set(2);
            list.wake_all();
            Executor::current().unwrap().drain();
            assert!(done.get());
        });
    }
}
