//! The breaker's state, packed in one word so that a closed-state check is a
//! single atomic load and a half-open probe slot is taken by one CAS.
//!
//! Layout of the `u64`: bits 0-1 the state, bits 2-21 the probes in flight
//! (half-open only), bits 22-63 the generation, which grows by one at every
//! transition so a permit knows whether the state it was issued in still holds.

use std::fmt;

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CircuitState {
    /// Calls flow; outcomes are counted against the trip rules.
    Closed,
    /// Calls are rejected until the open period ends.
    Open,
    /// A limited number of probe calls test the downstream; the rest are rejected.
    HalfOpen,
    /// Held open by [`isolate`](super::CircuitBreaker::isolate) until
    /// [`reset`](super::CircuitBreaker::reset).
    Isolated,
}

impl CircuitState {
    /// `closed`, `open`, `half_open`, `isolated`: for logs and metric labels.
    pub fn as_str(&self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
            CircuitState::Isolated => "isolated",
        }
    }

    /// 0 closed, 1 open, 2 half-open, 3 isolated: the metrics gauge's value.
    pub fn as_number(&self) -> u8 {
        *self as u8
    }

    fn from_bits(bits: u64) -> Self {
        match bits & STATE_MASK {
            0 => CircuitState::Closed,
            1 => CircuitState::Open,
            2 => CircuitState::HalfOpen,
            _ => CircuitState::Isolated,
        }
    }
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CircuitState::HalfOpen => "half-open",
            other => other.as_str(),
        })
    }
}

const STATE_MASK: u64 = 0b11;
const PROBE_SHIFT: u32 = 2;
const PROBE_BITS: u32 = 20;
const PROBE_MASK: u64 = ((1 << PROBE_BITS) - 1) << PROBE_SHIFT;
const GEN_SHIFT: u32 = PROBE_SHIFT + PROBE_BITS;

/// One probe, as added to a word.
pub(crate) const ONE_PROBE: u64 = 1 << PROBE_SHIFT;

/// A decoded state word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Word(pub(crate) u64);

impl Word {
    pub(crate) fn new(generation: u64, state: CircuitState) -> Self {
        Word((generation << GEN_SHIFT) | state as u64)
    }

    pub(crate) fn state(self) -> CircuitState {
        CircuitState::from_bits(self.0)
    }

    pub(crate) fn generation(self) -> u64 {
        self.0 >> GEN_SHIFT
    }

    pub(crate) fn probes(self) -> u32 {
        ((self.0 & PROBE_MASK) >> PROBE_SHIFT) as u32
    }

    /// The word of the next state, one generation on, no probes.
    pub(crate) fn next(self, state: CircuitState) -> Self {
        Word::new(self.generation().wrapping_add(1) & (u64::MAX >> GEN_SHIFT), state)
    }

    /// Whether this is the same state and generation (probes aside).
    pub(crate) fn same_epoch(self, other: Word) -> bool {
        (self.0 & !PROBE_MASK) == (other.0 & !PROBE_MASK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        let w = Word::new(12345, CircuitState::HalfOpen);
        assert_eq!(w.state(), CircuitState::HalfOpen);
        assert_eq!(w.generation(), 12345);
        let w2 = Word(w.0 + 3 * ONE_PROBE);
        assert_eq!(w2.probes(), 3);
        assert!(w2.same_epoch(w));
        assert_eq!(w.next(CircuitState::Closed).generation(), 12346);
        assert!(!w.next(CircuitState::HalfOpen).same_epoch(w));
        let last = Word::new(u64::MAX >> GEN_SHIFT, CircuitState::Open);
        assert_eq!(last.next(CircuitState::HalfOpen).generation(), 0);
    }
}
