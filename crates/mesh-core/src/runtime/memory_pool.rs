//! The process's memory pool: `memory_limit` bytes shared by every query, lent to whichever
//! operator needs them, with half a fair share always kept within reach of every spilling
//! operator.
//!
//! DataFusion's `FairSpillPool` caps each spilling operator at `limit / n`, where `n` counts
//! every registered spilling operator of every running query, busy or idle. A plan has several
//! per partition (the two aggregations of a `COUNT(DISTINCT …)`, a sort, …), and three jobs
//! run at once, so at 10M events the one aggregation that held the data was capped at a tenth
//! of the pool and spilled (sorting ten million strings to disk: the job took 5.0 s instead of
//! 2.8 s) while nine tenths stayed unused. `GreedyMemoryPool` lends everything but lets the
//! first sort take the whole pool and starve the next one, which then cannot make progress.
//!
//! This pool lends what nobody holds, like the greedy one, while the pool is at most half used;
//! past that each spilling operator is held to its fair share, as in the fair pool. Lending
//! stops at half because a sort that finishes turns what it holds into a merge buffer that
//! cannot spill: with two sorts in a 32 MiB pool, one that had borrowed left the other's merge
//! no room and the query failed. An operator holding less than half its fair share is always
//! granted up to that half, even when borrowers hold the rest. An operator that cannot spill (a sort's
//! merge buffer, a hash join's build side) may likewise claim what spilling operators hold
//! beyond half of the spillable pool. Such grants take the pool over its limit for a while:
//! until the borrowers' next reservation, which is refused (the pool is full and they hold
//! more than half a share), so they spill and give the memory back. Operators reserve before
//! every batch they keep, so that is one batch later.

use datafusion::common::{resources_datafusion_err, Result};
use datafusion::execution::memory_pool::{
    human_readable_size, MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};
use std::sync::Mutex;

#[derive(Debug)]
pub struct LendingPool {
    limit: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Registered operators that can spill.
    spillers: usize,
    /// Bytes held by operators that can spill.
    spillable: usize,
    /// Bytes held by operators that cannot.
    unspillable: usize,
}

impl LendingPool {
    pub fn new(limit: usize) -> LendingPool {
        LendingPool {
            limit,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is three counters updated under the lock in one statement each: a panic
        // elsewhere cannot leave them half-written.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl MemoryPool for LendingPool {
    fn register(&self, consumer: &MemoryConsumer) {
        if consumer.can_spill() {
            self.state().spillers += 1;
        }
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        if consumer.can_spill() {
            let mut s = self.state();
            s.spillers = s.spillers.saturating_sub(1);
        }
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        let mut s = self.state();
        if reservation.consumer().can_spill() {
            s.spillable += additional;
        } else {
            s.unspillable += additional;
        }
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        let mut s = self.state();
        if reservation.consumer().can_spill() {
            s.spillable = s.spillable.saturating_sub(shrink);
        } else {
            s.unspillable = s.unspillable.saturating_sub(shrink);
        }
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        let mut s = self.state();
        let free = self.limit.saturating_sub(s.spillable + s.unspillable);
        if reservation.consumer().can_spill() {
            let share = self.limit.saturating_sub(s.unspillable) / s.spillers.max(1);
            let wanted = reservation.size() + additional;
            let within_share = wanted <= share && additional <= free;
            let guaranteed = wanted <= share / 2;
            let lent = s.spillable + s.unspillable + additional <= self.limit / 2;
            if !(within_share || guaranteed || lent) {
                return Err(refused(
                    reservation,
                    additional,
                    free.min(share.saturating_sub(reservation.size())),
                ));
            }
            s.spillable += additional;
        } else {
            // What spilling operators hold beyond half of their part of the pool is on loan
            // and comes back when they spill.
            let for_spilling = self.limit.saturating_sub(s.unspillable);
            let available = for_spilling - s.spillable.min(for_spilling / 2);
            if additional > available {
                return Err(refused(reservation, additional, available));
            }
            s.unspillable += additional;
        }
        Ok(())
    }

    fn reserved(&self) -> usize {
        let s = self.state();
        s.spillable + s.unspillable
    }

    fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit::Finite(self.limit)
    }
}

/// DataFusion's resources-exhausted error, which spilling operators recognise.
fn refused(reservation: &MemoryReservation, additional: usize, available: usize) -> datafusion::error::DataFusionError {
    resources_datafusion_err!(
        "Failed to allocate additional {} for {} with {} already allocated for this reservation - {} remain available for the total pool",
        human_readable_size(additional),
        reservation.consumer().name(),
        human_readable_size(reservation.size()),
        human_readable_size(available)
    )
}

/// Hands the heap's free memory back to the system, after a job. glibc keeps what a job freed
/// in its arenas (a 100M-event merge frees gigabytes), so the next job of a run would grow the
/// process from that high-water mark; allocators that return memory themselves need nothing.
pub fn return_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only gives back free pages of glibc's own heaps; no pointer changes.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn spiller(pool: &Arc<dyn MemoryPool>, name: &str) -> MemoryReservation {
        MemoryConsumer::new(name).with_can_spill(true).register(pool)
    }

    #[test]
    fn one_busy_operator_borrows_what_idle_ones_do_not_hold_up_to_half_the_pool() {
        let pool: Arc<dyn MemoryPool> = Arc::new(LendingPool::new(1000));
        let busy = spiller(&pool, "busy");
        let _idle: Vec<_> = (0..9).map(|i| spiller(&pool, &format!("idle{i}"))).collect();
        // A fair pool would stop it at 100 bytes (a tenth).
        busy.try_grow(400).unwrap();
        busy.try_grow(100).unwrap();
        assert!(busy.try_grow(1).is_err(), "past half the pool it is held to its share");
        assert_eq!(pool.reserved(), 500);
    }

    #[test]
    fn half_a_share_stays_within_reach_and_the_borrower_is_then_refused() {
        let pool: Arc<dyn MemoryPool> = Arc::new(LendingPool::new(1000));
        let [a, b, c, d] = ["a", "b", "c", "d"].map(|n| spiller(&pool, n));
        a.try_grow(500).unwrap(); // borrowed: its share is 250
        c.try_grow(250).unwrap();
        d.try_grow(250).unwrap();
        assert_eq!(pool.reserved(), 1000, "full");
        // b gets half its share (125) although the pool is full...
        b.try_grow(100).unwrap();
        b.try_grow(25).unwrap();
        assert!(b.try_grow(1).is_err(), "past half its share while the pool is full");
        // ...and a, over its share in a full pool, must spill before it grows again.
        assert!(a.try_grow(1).is_err());
        a.shrink(500);
        a.try_grow(250).unwrap();
    }

    #[test]
    fn operators_that_cannot_spill_reclaim_what_spilling_ones_borrowed() {
        let pool: Arc<dyn MemoryPool> = Arc::new(LendingPool::new(1000));
        let sort = spiller(&pool, "sort");
        let merge = MemoryConsumer::new("sort merge").register(&pool);
        sort.try_grow(900).unwrap();
        // The sort borrowed beyond half the pool: the merge buffer may claim that part...
        merge.try_grow(300).unwrap();
        assert_eq!(pool.reserved(), 1200, "over the limit until the sort spills");
        // ...and the sort, over half its share in a full pool, must spill before it grows.
        assert!(sort.try_grow(1).is_err());
        sort.shrink(900);
        sort.try_grow(700).unwrap();
        // Half of what is left for spilling (350) stays the sort's: 350 of 700 can be claimed.
        let err = merge.try_grow(351).unwrap_err().to_string();
        assert!(
            err.contains("Resources exhausted") && err.contains("sort merge"),
            "{err}"
        );
        merge.try_grow(350).unwrap();
    }
}
