//! Which slot goes when: a [`Pacer`](super::Pacer)'s queue of numbered
//! slots.
//!
//! A caller takes the next number. A local pacer times it by arithmetic:
//! slot `anchor` goes at `anchor_at`, the ones after it one `interval`
//! apart. A shared pacer following its fleet times slots by the fleet's
//! *grants* instead: runs of slots the store reserved on the fleet's one
//! time line, each starting at a given time. A slot past the last grant is
//! *pending*: its caller waits for the next grant.

use std::collections::VecDeque;

/// The due time of a slot no grant covers yet (a following pacer's).
pub(super) const PENDING: u64 = u64::MAX;

/// A run of `count` slots from slot `first`, the first at `at` (ns on the
/// pacer's time line), the others `interval` apart, each usable until
/// `late` ns after its time.
#[derive(Debug, Clone, Copy)]
struct Grant {
    first: u64,
    count: u64,
    at: u64,
    interval: u64,
    late: u64,
}

impl Grant {
    fn end(&self) -> u64 {
        self.first + self.count
    }

    fn due(&self, slot: u64) -> Option<u64> {
        (self.first..self.end()).contains(&slot).then(|| self.at.saturating_add((slot - self.first) * self.interval))
    }
}

/// Which slot goes when, while pacing.
pub(super) struct Schedule {
    /// Nanoseconds between slots (0: not pacing).
    pub(super) interval: u64,
    /// Slots given back by callers that gave up before their turn, for the
    /// next callers to take (the queue stays at its rate, not behind them).
    pub(super) released: Vec<u64>,
    /// The next slot number to hand out.
    pub(super) next: u64,
    /// Slot `anchor` goes at time `anchor_at` (ns since origin); the ones
    /// after it one interval apart.
    pub(super) anchor: u64,
    pub(super) anchor_at: u64,
    /// The fleet's grants not yet all handed out and gone (shared pacers).
    grants: VecDeque<Grant>,
    /// Following the fleet: slots from `granted_end` on are pending.
    following: bool,
    /// The first slot number no grant covers.
    granted_end: u64,
    /// The last grant's size, and whether its running low was signalled.
    last_count: u64,
    low_told: bool,
    /// The earliest time the next grant's run may start: one slot after the
    /// last grant's (or, on starting to follow, after the last local
    /// slot's). A grant is clamped to this pacer's own `max_rate`, so it may
    /// last longer than the span the fleet reserved for it; the next one
    /// then waits for it, and the pacer never sends faster than its own
    /// settings allow.
    free_at: u64,
}

impl Schedule {
    pub(super) fn new(interval: u64, anchor_at: u64) -> Self {
        Schedule {
            interval,
            released: Vec::new(),
            next: 0,
            anchor: 0,
            anchor_at,
            grants: VecDeque::new(),
            following: false,
            granted_end: 0,
            last_count: 0,
            low_told: false,
            free_at: 0,
        }
    }

    /// When `slot` goes, or [`PENDING`].
    pub(super) fn due(&self, slot: u64) -> u64 {
        if self.following || !self.grants.is_empty() {
            if let Some(due) = self.grants.iter().find_map(|g| g.due(slot)) {
                return due;
            }
            if self.following && slot >= self.granted_end {
                return PENDING;
            }
        }
        let ahead = slot.saturating_sub(self.anchor);
        self.anchor_at.saturating_add(ahead.saturating_mul(self.interval))
    }

    /// Whether `slot` is still to come at `now` (a released slot worth
    /// handing out again).
    pub(super) fn to_come(&self, slot: u64, now: u64) -> bool {
        let timed_by_grant = self.following || self.grants.iter().any(|g| g.due(slot).is_some());
        (timed_by_grant || slot >= self.anchor) && self.due(slot) >= now
    }

    /// Whether slots are timed locally (not by the fleet's grants): the
    /// local burst rule applies.
    pub(super) fn is_local(&self) -> bool {
        !self.following
    }

    pub(super) fn is_following(&self) -> bool {
        self.following
    }

    /// Re-anchors at the first slot not yet due, keeping its time: the
    /// slots after it follow at the new `interval`. (Moving that slot to
    /// "now" would pull the queue a fraction of a slot earlier at every
    /// change, and frequent small changes would send it in a bunch.)
    pub(super) fn respace(&mut self, now: u64, interval: u64) {
        if self.interval != 0 && self.anchor_at < now {
            let gone = (now - self.anchor_at).div_ceil(self.interval).min(self.next.saturating_sub(self.anchor));
            self.anchor += gone;
            self.anchor_at = self.anchor_at.saturating_add(gone.saturating_mul(self.interval));
        } else if self.interval == 0 {
            self.anchor = self.next;
            self.anchor_at = now;
        }
        self.interval = interval;
    }

    /// Starts following the fleet: the slots handed out so far keep their
    /// local times; every later one waits for a grant.
    pub(super) fn follow(&mut self, now: u64, interval: u64) {
        if !self.following {
            if self.interval != 0 {
                let ahead = self.next.saturating_sub(self.anchor);
                self.free_at = self.anchor_at.saturating_add(ahead.saturating_mul(self.interval));
            }
            self.respace(now, interval);
            self.following = true;
            self.granted_end = self.granted_end.max(self.next);
        }
        self.interval = interval;
    }

    /// Stops following: pending slots are timed locally from `now` (or from
    /// the end of the last grant) at `interval` (0: they go at once).
    /// (A schedule not following is re-spaced to `interval`.)
    pub(super) fn unfollow(&mut self, now: u64, interval: u64) {
        if !self.following {
            if self.interval != interval {
                self.respace(now, interval);
            }
            return;
        }
        self.following = false;
        let last = self.grants.back().map_or(now, |g| g.at.saturating_add(g.count * g.interval));
        self.anchor = self.granted_end;
        self.anchor_at = if interval == 0 { now } else { last.max(now) };
        self.interval = interval;
    }

    /// Adds the fleet's grant of `count` slots, the first at `at` (or, if
    /// later, one slot after the previous grant's last, less `tolerance`:
    /// the pacer's burst), the others `interval` apart, each usable until
    /// `late` after its time: it covers the oldest pending slots.
    pub(super) fn grant(&mut self, at: u64, count: u64, interval: u64, late: u64, tolerance: u64) {
        // Only the start may come early, by the burst: the next run is timed
        // from where this one would end without it, so the burst is not
        // taken again at every grant.
        let start = at.max(self.free_at.saturating_sub(tolerance));
        self.free_at = at.max(self.free_at).saturating_add(count.saturating_mul(interval));
        let at = start;
        let first = self.granted_end;
        self.granted_end += count;
        self.grants.push_back(Grant { first, count, at, interval, late });
        (self.last_count, self.low_told) = (count, false);
    }

    /// Whether the granted slots have just run low (half of the last grant
    /// or less left to hand out): true once per grant, for the store to ask
    /// for more before callers have to wait.
    pub(super) fn running_low(&mut self) -> bool {
        if !self.following || self.low_told || self.unused() * 2 > self.last_count {
            return false;
        }
        self.low_told = true;
        true
    }

    /// Slots taken but not covered by a grant, less those their callers
    /// gave back (nobody waits for them: asking the fleet for them would
    /// take slots from the other processes).
    pub(super) fn pending(&self) -> u64 {
        if !self.following {
            return 0;
        }
        let given_back = self.released.iter().filter(|&&slot| slot >= self.granted_end).count() as u64;
        self.next.saturating_sub(self.granted_end).saturating_sub(given_back)
    }

    /// When a pending slot may come, at the earliest: after the last grant
    /// (or now), its place among the pending slots at the current interval.
    /// An estimate, for callers that wait once and go.
    pub(super) fn pending_estimate(&self, slot: u64, now: u64) -> u64 {
        let last = self.grants.back().map_or(now, |g| g.at.saturating_add(g.count * g.interval)).max(now);
        let ahead = slot.saturating_sub(self.granted_end).saturating_add(1);
        last.saturating_add(ahead.saturating_mul(self.interval))
    }

    /// How long a caller whose slot is pending waits before looking again:
    /// its place behind the other pending slots at the current interval,
    /// within 1 ms ..= 50 ms.
    pub(super) fn pending_wait(&self, slot: u64) -> u64 {
        let ahead = slot.saturating_sub(self.granted_end).saturating_add(1);
        ahead.saturating_mul(self.interval).clamp(1_000_000, 50_000_000)
    }

    /// Granted slots not handed out yet.
    pub(super) fn unused(&self) -> u64 {
        self.granted_end.saturating_sub(self.next)
    }

    /// Skips granted slots whose time passed more than `grace` (or their
    /// grant's own `late`, if longer) ago without a caller (the fleet's time
    /// line has moved on: sending them now would add to what others send),
    /// and forgets grants that are over.
    pub(super) fn expire(&mut self, now: u64, grace: u64) {
        while let Some(g) = self.grants.front().copied() {
            let grace = grace.max(g.late);
            let late = now.saturating_sub(grace);
            if self.next < g.end() && g.at < late {
                // Slot j of the grant is gone when at + j·interval < late.
                let gone = (late - g.at).div_ceil(g.interval.max(1)).min(g.count);
                self.next = self.next.max(g.first + gone);
            }
            let over = g.at.saturating_add(g.count * g.interval).saturating_add(grace) < now;
            if self.next >= g.end() && over {
                self.grants.pop_front();
            } else {
                break;
            }
        }
    }
}

#[cfg(all(test, not(backstop_loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_following_schedule_times_slots_by_grants_and_the_rest_wait() {
        let mut s = Schedule::new(0, 1_000);
        s.next = 2; // two slots went out before
        s.follow(1_000, 100);
        assert_eq!(s.due(2), PENDING);
        s.grant(5_000, 2, 100, 0, 0);
        assert_eq!((s.due(2), s.due(3), s.due(4)), (5_000, 5_100, PENDING));
        s.next = 5;
        assert_eq!((s.pending(), s.unused()), (1, 0));
        s.unfollow(6_000, 0);
        assert_eq!(s.due(4), 6_000);
        assert_eq!(s.due(2), 5_000, "granted slots keep the fleet's time");
    }

    #[test]
    fn granted_slots_nobody_took_in_time_are_skipped() {
        let mut s = Schedule::new(0, 0);
        s.follow(0, 100);
        s.grant(1_000, 10, 100, 0, 0);
        s.expire(1_450, 200); // slots due before 1 250 are gone: 0, 1, 2
        assert_eq!(s.next, 3);
        s.next = 10;
        s.expire(10_000, 200);
        assert_eq!(s.grants.len(), 0);
    }

    #[test]
    fn a_grant_waits_for_the_one_before_less_the_burst() {
        // A grant's slots are spaced at this pacer's own (slower) rate, so
        // the fleet's next grant may come before the last one ends.
        let mut s = Schedule::new(0, 0);
        s.follow(0, 100);
        s.grant(1_000, 3, 100, 0, 0);
        s.grant(1_150, 2, 100, 0, 0);
        assert_eq!((s.due(2), s.due(3), s.due(4)), (1_200, 1_300, 1_400));
        s.grant(1_000, 1, 100, 0, 100);
        assert_eq!(s.due(5), 1_400, "a burst of two lets it come one slot early");
        // ...once: the next grant is timed from where that one would end.
        s.grant(1_000, 1, 100, 0, 100);
        assert_eq!(s.due(6), 1_500, "the burst is not taken again");
        for slot in 7..17 {
            s.grant(1_000, 1, 100, 0, 100);
            assert_eq!(s.due(slot), 1_400 + (slot - 5) * 100, "grant {slot}");
        }
    }

    #[test]
    fn the_first_grant_waits_for_the_last_local_slot() {
        let mut s = Schedule::new(100, 0);
        s.next = 3; // local slots at 0, 100, 200
        s.follow(50, 100);
        s.grant(60, 1, 100, 0, 0);
        assert_eq!(s.due(3), 300);
    }
}
