//! A bounded pool of reusable items (filter instances), independent of
//! what the items are.
//!
//! At most `max` items are leased at once; an item is created only when
//! none is idle, so at most `max` are alive. A caller that finds every item
//! leased waits up to the pool's bound, then gets [`AcquireError::Busy`].
//! A returned item goes back to the idle list only if it says it is
//! reusable ([`Poolable::reusable`]); otherwise it is dropped.

use std::future::Future;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use crate::workers;

/// An item a [`Pool`] can hand out and take back.
pub(crate) trait Poolable: Send + 'static {
    /// Whether the item may serve another caller.
    fn reusable(&self) -> bool;
}

/// Why no item could be leased.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AcquireError<E> {
    /// Every item stayed leased for the whole wait.
    Busy,
    /// Creating a new item failed.
    Create(E),
}

/// The pool's books, under one lock: a lease costs one lock and a return
/// another (no semaphore round trip on the per-call path).
struct Books<T> {
    idle: IdleLists<T>,
    /// Items on loan plus slots reserved for items being created.
    leased: u32,
    /// Callers waiting for a return; a return wakes one only if any wait.
    waiting: u32,
}

/// Idle items, one list per worker runtime ([`crate::workers`]): a worker
/// takes back the items it returned, whose memory is still in its core's
/// caches, and takes another worker's only when its own list is empty.
/// Boxed, so that leasing and returning move a pointer, not the item.
struct IdleLists<T>(Vec<Vec<Box<T>>>);

impl<T> IdleLists<T> {
    fn new(items: Vec<T>) -> Self {
        let mut lists: Vec<Vec<Box<T>>> = (0..workers::count()).map(|_| Vec::new()).collect();
        lists[0] = items.into_iter().map(Box::new).collect();
        IdleLists(lists)
    }

    fn own(&self) -> usize {
        workers::current() % self.0.len()
    }

    fn pop(&mut self) -> Option<Box<T>> {
        let own = self.own();
        if let Some(item) = self.0[own].pop() {
            return Some(item);
        }
        self.0.iter_mut().find_map(Vec::pop)
    }

    fn push(&mut self, item: Box<T>) {
        let own = self.own();
        self.0[own].push(item);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.iter().map(Vec::len).sum()
    }
}

/// Idle items and the lease limit.
pub(crate) struct Pool<T> {
    books: Mutex<Books<T>>,
    max: u32,
    returned: Notify,
    wait: Duration,
}

/// What a look at the books gave.
enum Taken<T> {
    Idle(Box<T>),
    /// A slot is reserved: create an item for it.
    Reserved,
    Full,
}

impl<T: Poolable> Pool<T> {
    /// A pool leasing at most `max` items, waiting up to `wait` for one,
    /// starting with `idle` items.
    pub(crate) fn new(max: u32, wait: Duration, idle: Vec<T>) -> Arc<Self> {
        Arc::new(Pool {
            books: Mutex::new(Books {
                idle: IdleLists::new(idle),
                leased: 0,
                waiting: 0,
            }),
            max: max.max(1),
            returned: Notify::new(),
            wait,
        })
    }

    fn books(&self) -> MutexGuard<'_, Books<T>> {
        // The books hold no invariant a panic elsewhere could break half-way.
        self.books.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take(&self, books: &mut Books<T>) -> Taken<T> {
        if books.leased >= self.max {
            return Taken::Full;
        }
        books.leased += 1;
        match books.idle.pop() {
            Some(item) => Taken::Idle(item),
            None => Taken::Reserved,
        }
    }

    /// Lease an idle item if one is idle and the limit allows: the per-call
    /// path, with no future to build or move. `None` means: call
    /// [`Pool::acquire`], which creates an item or waits.
    /// The lease borrows the pool: no reference count to touch.
    pub(crate) fn try_acquire(&self) -> Option<Lease<T, &Self>> {
        let mut books = self.books();
        if books.leased >= self.max {
            return None;
        }
        let item = books.idle.pop()?;
        books.leased += 1;
        drop(books);
        Some(Lease {
            pool: self,
            item: Some(item),
        })
    }

    /// Lease an idle item, or one made by `create` when none is idle.
    pub(crate) async fn acquire<F, Fut, E>(
        self: &Arc<Self>,
        create: F,
    ) -> Result<Lease<T>, AcquireError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let taken = {
            let mut books = self.books();
            self.take(&mut books)
        };
        let taken = match taken {
            Taken::Full => self.wait_for_return().await?,
            taken => taken,
        };
        let item = match taken {
            Taken::Idle(item) => item,
            Taken::Reserved => match create().await {
                Ok(item) => Box::new(item),
                Err(err) => {
                    self.release(None);
                    return Err(AcquireError::Create(err));
                }
            },
            Taken::Full => unreachable!("waiting ends with an item or a slot"),
        };
        Ok(Lease {
            pool: self.clone(),
            item: Some(item),
        })
    }

    /// Wait up to the pool's bound for an item or a free slot.
    async fn wait_for_return<E>(&self) -> Result<Taken<T>, AcquireError<E>> {
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            let returned = self.returned.notified();
            tokio::pin!(returned);
            // Registered before the look, so a return after it is not missed.
            returned.as_mut().enable();
            {
                let mut books = self.books();
                match self.take(&mut books) {
                    Taken::Full => books.waiting += 1,
                    taken => return Ok(taken),
                }
            }
            let woken = tokio::time::timeout_at(deadline, returned).await.is_ok();
            self.books().waiting -= 1;
            if !woken {
                return Err(AcquireError::Busy);
            }
        }
    }

    /// A lease ended (with its item, unless creating it failed).
    fn release(&self, item: Option<Box<T>>) {
        let mut discarded = None;
        let wake = {
            let mut books = self.books();
            books.leased -= 1;
            match item {
                Some(item) if item.reusable() => books.idle.push(item),
                other => discarded = other,
            }
            books.waiting > 0
        };
        // Dropped outside the lock: dropping an item (a store) is not cheap.
        drop(discarded);
        if wake {
            self.returned.notify_one();
        }
    }

    /// Items waiting idle.
    #[cfg(test)]
    pub(crate) fn idle_count(&self) -> usize {
        self.books().idle.len()
    }
}

/// An item on loan; goes back to its pool (or is dropped) when the lease is.
/// `P` is how the lease reaches its pool: shared ownership for a lease that
/// outlives the caller's borrow (`per_request` isolation keeps one for an
/// exchange), a plain borrow on the per-call path.
pub(crate) struct Lease<T: Poolable, P: Deref<Target = Pool<T>> = Arc<Pool<T>>> {
    pool: P,
    item: Option<Box<T>>,
}

impl<T: Poolable, P: Deref<Target = Pool<T>>> Lease<T, P> {
    /// The leased item.
    pub(crate) fn get(&mut self) -> &mut T {
        self.item
            .as_mut()
            .expect("a lease holds its item until dropped")
    }
}

impl<T: Poolable, P: Deref<Target = Pool<T>>> Drop for Lease<T, P> {
    fn drop(&mut self) {
        self.pool.release(self.item.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A numbered item; `broken` ones are not reusable.
    #[derive(Debug)]
    struct Item {
        id: u32,
        broken: bool,
    }

    impl Poolable for Item {
        fn reusable(&self) -> bool {
            !self.broken
        }
    }

    struct Factory(AtomicU32);

    impl Factory {
        fn new() -> Arc<Self> {
            Arc::new(Factory(AtomicU32::new(0)))
        }
        async fn make(self: Arc<Self>) -> Result<Item, String> {
            Ok(Item {
                id: self.0.fetch_add(1, Ordering::SeqCst),
                broken: false,
            })
        }
        fn made(&self) -> u32 {
            self.0.load(Ordering::SeqCst)
        }
    }

    const WAIT: Duration = Duration::from_millis(50);

    #[tokio::test]
    async fn idle_items_are_reused() {
        let pool = Pool::new(
            4,
            WAIT,
            vec![Item {
                id: 100,
                broken: false,
            }],
        );
        let factory = Factory::new();
        let mut lease = pool.acquire(|| factory.clone().make()).await.unwrap();
        assert_eq!(lease.get().id, 100, "the initial idle item is used first");
        drop(lease);
        assert_eq!(pool.idle_count(), 1);
        let mut again = pool.acquire(|| factory.clone().make()).await.unwrap();
        assert_eq!(again.get().id, 100);
        assert_eq!(factory.made(), 0);
    }

    #[tokio::test]
    async fn try_acquire_leases_only_idle_items_within_the_limit() {
        let item = |id| Item { id, broken: false };
        let pool = Pool::new(1, WAIT, vec![item(1), item(2)]);
        let mut first = pool.try_acquire().expect("an idle item");
        assert!(
            pool.try_acquire().is_none(),
            "the limit holds with items idle"
        );
        let id = first.get().id;
        drop(first);
        let mut again = pool.try_acquire().expect("the returned item");
        assert_eq!(again.get().id, id, "the last returned item is reused");
        drop(again);

        let empty: Arc<Pool<Item>> = Pool::new(4, WAIT, vec![]);
        assert!(empty.try_acquire().is_none(), "nothing idle: no lease");
        let factory = Factory::new();
        let created = empty.acquire(|| factory.clone().make()).await.unwrap();
        drop(created);
        assert!(empty.try_acquire().is_some(), "a created item is reused");
    }

    #[tokio::test]
    async fn items_are_created_when_none_is_idle() {
        let pool = Pool::new(4, WAIT, vec![]);
        let factory = Factory::new();
        let a = pool.acquire(|| factory.clone().make()).await.unwrap();
        let b = pool.acquire(|| factory.clone().make()).await.unwrap();
        assert_eq!(factory.made(), 2);
        drop((a, b));
        assert_eq!(pool.idle_count(), 2);
    }

    #[tokio::test]
    async fn unreusable_items_are_dropped() {
        let pool = Pool::new(4, WAIT, vec![]);
        let factory = Factory::new();
        let mut lease = pool.acquire(|| factory.clone().make()).await.unwrap();
        lease.get().broken = true;
        drop(lease);
        assert_eq!(pool.idle_count(), 0);
        let mut next = pool.acquire(|| factory.clone().make()).await.unwrap();
        assert_eq!(next.get().id, 1, "a fresh item replaces the broken one");
    }

    #[tokio::test]
    async fn the_lease_limit_holds_and_waiting_is_bounded() {
        let pool = Pool::new(2, WAIT, vec![]);
        let factory = Factory::new();
        let a = pool.acquire(|| factory.clone().make()).await.unwrap();
        let _b = pool.acquire(|| factory.clone().make()).await.unwrap();
        let third = pool.acquire(|| factory.clone().make()).await;
        assert!(matches!(third, Err(AcquireError::Busy)));
        assert_eq!(factory.made(), 2, "no item beyond the limit");
        drop(a);
        assert!(pool.acquire(|| factory.clone().make()).await.is_ok());
        assert_eq!(
            factory.made(),
            2,
            "the returned item served the next caller"
        );
    }

    #[tokio::test]
    async fn a_waiter_gets_the_item_returned_by_another() {
        let pool = Pool::new(1, Duration::from_secs(30), vec![]);
        let factory = Factory::new();
        let held = pool.acquire(|| factory.clone().make()).await.unwrap();
        let waiter = {
            let pool = pool.clone();
            let factory = factory.clone();
            tokio::spawn(async move {
                pool.acquire(|| factory.clone().make())
                    .await
                    .map(|mut l| l.get().id)
            })
        };
        drop(held);
        assert_eq!(waiter.await.unwrap(), Ok(0));
        assert_eq!(factory.made(), 1);
    }

    #[tokio::test]
    async fn a_failed_creation_frees_its_slot() {
        let pool: Arc<Pool<Item>> = Pool::new(1, WAIT, vec![]);
        let failed = pool
            .acquire(|| async { Err::<Item, _>("no memory".to_string()) })
            .await;
        assert!(matches!(failed, Err(AcquireError::Create(why)) if why == "no memory"));
        let factory = Factory::new();
        assert!(
            pool.acquire(|| factory.clone().make()).await.is_ok(),
            "the permit was released"
        );
    }
}
