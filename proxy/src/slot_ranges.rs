//! Ranges of the slots array (`wg_slots_v1`) for the services' backend slots.
//!
//! A frontend's backends are consecutive slots, so each frontend holds one range.
//! Ranges come in power-of-two sizes (at least [`MIN_RANGE`]): a frontend whose
//! backends grow within its range rewrites only the slots that change, and one that
//! outgrows it moves to a range twice as large or more. Freed ranges of a size are
//! kept on that size's free list (a larger one is split when a size has none); the
//! array is otherwise used from the bottom up.
//!
//! A freed range is not handed out again until the sync that freed it has been
//! written ([`SlotRanges::recycle`]): until its frontend's entry points elsewhere, a
//! program may still read it, so it must not hold another frontend's backends.

use thiserror::Error;

/// Smallest range: most services have a handful of endpoints.
pub const MIN_RANGE: u32 = 4;

/// The slots array has no free range of the size asked for.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("the slots array ({capacity} slots) has no free range of {size} slots")]
pub struct SlotsExhausted {
    pub capacity: u32,
    pub size: u32,
}

/// One range: `size` slots from `base`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SlotRange {
    pub base: u32,
    pub size: u32,
}

impl SlotRange {
    /// The slot index of position `i` (0-based) of the range.
    pub fn index(&self, i: usize) -> u32 {
        debug_assert!(i < self.size as usize);
        self.base + i as u32
    }
}

/// The size of range that holds `count` backends.
pub fn range_size(count: usize) -> u32 {
    u32::try_from(count)
        .unwrap_or(u32::MAX)
        .max(MIN_RANGE)
        .checked_next_power_of_two()
        .unwrap_or(u32::MAX)
}

/// The allocator of the slots array.
#[derive(Debug)]
pub struct SlotRanges {
    /// Slots in the array; index 0 is never handed out.
    capacity: u32,
    /// The lowest slot never handed out.
    next: u32,
    /// Free ranges by size (`free[log2(size)]`).
    free: Vec<Vec<u32>>,
    /// Ranges freed since the last [`SlotRanges::recycle`].
    quarantined: Vec<SlotRange>,
}

impl SlotRanges {
    pub fn new(capacity: u32) -> Self {
        Self {
            capacity,
            next: 1,
            free: vec![Vec::new(); 32],
            quarantined: Vec::new(),
        }
    }

    /// A range for `count` backends.
    pub fn allocate(&mut self, count: usize) -> Result<SlotRange, SlotsExhausted> {
        let size = range_size(count);
        let class = size.trailing_zeros() as usize;
        if let Some(base) = self.free[class].pop() {
            return Ok(SlotRange { base, size });
        }
        // Split the smallest larger free range: its first `size` slots are handed out,
        // the rest becomes one free range of each size from `size` up.
        if let Some(larger) = (class + 1..self.free.len()).find(|c| !self.free[*c].is_empty()) {
            let base = self.free[larger].pop().expect("found non-empty");
            let mut rest = base + size;
            for c in class..larger {
                self.free[c].push(rest);
                rest += 1 << c;
            }
            return Ok(SlotRange { base, size });
        }
        match self.next.checked_add(size) {
            Some(end) if end <= self.capacity => {
                let base = self.next;
                self.next = end;
                Ok(SlotRange { base, size })
            }
            _ => Err(SlotsExhausted {
                capacity: self.capacity,
                size,
            }),
        }
    }

    /// Gives `range` back; it is handed out again after the next [`Self::recycle`].
    pub fn free(&mut self, range: SlotRange) {
        self.quarantined.push(range);
    }

    /// The maps no longer refer to the ranges freed so far: make them allocatable.
    pub fn recycle(&mut self) {
        for range in self.quarantined.drain(..) {
            self.free[range.size.trailing_zeros() as usize].push(range.base);
        }
    }

    /// Rebuilds the allocator around `used`, the ranges a previous proxy left in the
    /// maps (a restart): they stay where they are, and the gaps between them become
    /// free ranges. Overlapping ranges are refused (the first one wins); returns the
    /// ones kept.
    pub fn seed(&mut self, mut used: Vec<SlotRange>) -> Vec<SlotRange> {
        used.sort_unstable();
        let mut kept: Vec<SlotRange> = Vec::with_capacity(used.len());
        let mut end = 1;
        for range in used {
            let fits = range.base >= end
                && range.size.is_power_of_two()
                && range
                    .base
                    .checked_add(range.size)
                    .is_some_and(|e| e <= self.capacity);
            if !fits {
                continue;
            }
            self.free_gap(end, range.base);
            end = range.base + range.size;
            kept.push(range);
        }
        self.next = end;
        kept
    }

    /// Puts the slots `from..to` on the free lists, as the largest power-of-two
    /// ranges that fit (ranges need no alignment; a tail under [`MIN_RANGE`] is lost).
    fn free_gap(&mut self, mut from: u32, to: u32) {
        while to - from >= MIN_RANGE {
            let size: u32 = 1 << (to - from).ilog2();
            self.free[size.trailing_zeros() as usize].push(from);
            from += size;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_powers_of_two_of_at_least_four() {
        assert_eq!(range_size(0), 4);
        assert_eq!(range_size(4), 4);
        assert_eq!(range_size(5), 8);
        assert_eq!(range_size(1000), 1024);
        assert_eq!(range_size(65_535), 65_536);
    }

    #[test]
    fn freed_ranges_come_back_only_after_recycle() {
        let mut slots = SlotRanges::new(64);
        let a = slots.allocate(3).unwrap();
        assert_eq!(a, SlotRange { base: 1, size: 4 });
        let b = slots.allocate(5).unwrap();
        assert_eq!(b, SlotRange { base: 5, size: 8 });
        slots.free(a);
        let c = slots.allocate(2).unwrap();
        assert_eq!(
            c.base, 13,
            "a quarantined range is not reused in the same sync"
        );
        slots.recycle();
        assert_eq!(slots.allocate(4).unwrap(), a);
        // A freed 8 is split for two 4s before the array grows.
        slots.free(b);
        slots.recycle();
        assert_eq!(slots.allocate(1).unwrap(), SlotRange { base: 5, size: 4 });
        assert_eq!(slots.allocate(1).unwrap(), SlotRange { base: 9, size: 4 });
        assert_eq!(slots.allocate(1).unwrap(), SlotRange { base: 17, size: 4 });
    }

    #[test]
    fn exhaustion_is_an_error_naming_the_size() {
        let mut slots = SlotRanges::new(16);
        slots.allocate(8).unwrap();
        let error = slots.allocate(8).unwrap_err();
        assert_eq!(
            error,
            SlotsExhausted {
                capacity: 16,
                size: 8
            }
        );
        assert!(slots.allocate(4).is_ok(), "smaller ranges still fit");
    }

    #[test]
    fn seeding_keeps_ranges_and_frees_the_gaps() {
        let mut slots = SlotRanges::new(1 << 10);
        let kept = slots.seed(vec![
            SlotRange { base: 64, size: 8 },
            SlotRange { base: 1, size: 4 },
            // Overlaps the first: refused.
            SlotRange { base: 66, size: 4 },
        ]);
        assert_eq!(
            kept,
            [
                SlotRange { base: 1, size: 4 },
                SlotRange { base: 64, size: 8 }
            ]
        );
        // The gap 5..64 is free: every range handed out lies in a gap or above 72.
        let mut handed = Vec::new();
        while let Ok(range) = slots.allocate(4) {
            handed.push(range);
        }
        for range in &handed {
            for k in &kept {
                let overlap = range.base < k.base + k.size && k.base < range.base + range.size;
                assert!(!overlap, "{range:?} overlaps the kept {k:?}");
            }
        }
        assert!(handed.iter().any(|r| r.base < 64), "the gap is reused");
    }
}
