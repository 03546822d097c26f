//! The AWS SDK for Python's adaptive retry mode, as a baseline for the
//! pacer: botocore's `ClientRateLimiter` (`botocore/retries/adaptive.py`),
//! with its `RateClocker`, `CubicCalculator` (`throttling.py`) and
//! `TokenBucket` (`bucket.py`), rewritten here step for step so the same
//! calls can go through it and through [`backstop::Pacer`] in one process.
//!
//! What it does, as botocore does it:
//!
//! - Every response is *clocked*: the calls answered are counted in 0.5 s
//!   buckets, and when a response falls in a later bucket the measured rate
//!   becomes `0.8 × count / (seconds since the last bucket) + 0.2 × before`
//!   (from 0; the first bucket starts at the whole second the limiter was
//!   made).
//! - A throttling response enables the limiter and sets the CUBIC's `w_max`
//!   to the measured rate (the lower of it and the bucket's rate once
//!   enabled); the new rate is `0.7 × w_max`. Every other response grows the
//!   rate along `0.4 × (t − K)³ + w_max`. Either way the bucket's rate
//!   becomes the lower of that and twice the measured rate, at least 0.5/s.
//!   Every refusal decreases: there is no interval between decreases.
//! - While enabled, a call takes a token from a bucket that fills at the
//!   rate and holds at most one second of it (at least one token).
//!
//! It is checked against botocore itself by `botocore_replay.py` (beside
//! this crate's `Cargo.toml`), which prints the rates botocore's own classes
//! give for the sequence `pacer_rule` replays.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use backstop::Clock;

/// botocore's `RateClocker`.
struct RateClocker {
    measured: f64,
    last_bucket: f64,
    count: f64,
}

impl RateClocker {
    const SMOOTHING: f64 = 0.8;
    const BUCKET: f64 = 0.5;

    fn new(now: f64) -> Self {
        Self { measured: 0.0, last_bucket: now.floor(), count: 0.0 }
    }

    fn record(&mut self, now: f64) -> f64 {
        let bucket = (now / Self::BUCKET).floor() * Self::BUCKET;
        self.count += 1.0;
        if bucket > self.last_bucket {
            let rate = self.count / (bucket - self.last_bucket);
            self.measured = rate * Self::SMOOTHING + self.measured * (1.0 - Self::SMOOTHING);
            self.count = 0.0;
            self.last_bucket = bucket;
        }
        self.measured
    }
}

/// botocore's `CubicCalculator`.
struct Cubic {
    w_max: f64,
    k: f64,
    last_fail: f64,
}

impl Cubic {
    const C: f64 = 0.4;
    const BETA: f64 = 0.7;

    fn zero_point(w_max: f64) -> f64 {
        (w_max * (1.0 - Self::BETA) / Self::C).cbrt()
    }

    fn success(&self, now: f64) -> f64 {
        Self::C * (now - self.last_fail - self.k).powi(3) + self.w_max
    }

    fn error(&mut self, rate: f64, now: f64) -> f64 {
        self.w_max = rate;
        self.k = Self::zero_point(rate);
        self.last_fail = now;
        rate * Self::BETA
    }
}

/// botocore's `TokenBucket`.
struct Bucket {
    fill_rate: f64,
    capacity: f64,
    tokens: f64,
    last: Option<f64>,
}

impl Bucket {
    const MIN_RATE: f64 = 0.5;

    fn refill(&mut self, now: f64) {
        if let Some(last) = self.last {
            self.tokens = (self.tokens + (now - last) * self.fill_rate).min(self.capacity);
        }
        self.last = Some(now);
    }

    fn set_rate(&mut self, rate: f64, now: f64) {
        self.refill(now);
        self.fill_rate = rate.max(Self::MIN_RATE);
        self.capacity = if rate >= 1.0 { rate } else { 1.0 };
        self.tokens = self.tokens.min(self.capacity);
    }
}

struct State {
    clocker: RateClocker,
    cubic: Cubic,
    bucket: Bucket,
    enabled: bool,
}

/// botocore's `ClientRateLimiter`, on any [`Clock`]. `Clone` shares it.
#[derive(Clone)]
pub struct AdaptiveLimiter {
    clock: Arc<dyn Clock>,
    origin: Instant,
    /// Seconds at the origin, as botocore's `time.time()` would read: the
    /// first bucket starts at a whole second, so the phase matters.
    epoch: f64,
    state: Arc<Mutex<State>>,
}

impl AdaptiveLimiter {
    /// A limiter made at `epoch` seconds on `clock`'s time line.
    pub fn new(clock: impl Clock + 'static, epoch: f64) -> Self {
        let origin = clock.now();
        let state = State {
            clocker: RateClocker::new(epoch),
            cubic: Cubic { w_max: 0.0, k: 0.0, last_fail: epoch },
            // `TokenBucket(max_rate=1)`: its setter's refill stamps the time.
            bucket: Bucket { fill_rate: 1.0, capacity: 1.0, tokens: 0.0, last: Some(epoch) },
            enabled: false,
        };
        Self { clock: Arc::new(clock), origin, epoch, state: Arc::new(Mutex::new(state)) }
    }

    fn now(&self) -> f64 {
        self.epoch + self.clock.now().saturating_duration_since(self.origin).as_secs_f64()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a token: zero when taken (or the limiter is not enabled yet),
    /// else how long to wait before asking again (botocore's
    /// `TokenBucket.acquire` waits that long on its condition and asks
    /// again).
    pub fn acquire(&self) -> Duration {
        let now = self.now();
        let mut s = self.state();
        if !s.enabled {
            return Duration::ZERO;
        }
        s.bucket.refill(now);
        if s.bucket.tokens >= 1.0 {
            s.bucket.tokens -= 1.0;
            return Duration::ZERO;
        }
        // At least 1 ns: a token just short of whole must not read as "go".
        Duration::from_secs_f64((1.0 - s.bucket.tokens) / s.bucket.fill_rate).max(Duration::from_nanos(1))
    }

    /// A response arrived: `throttled` if it was a refusal.
    pub fn on_response(&self, throttled: bool) {
        let now = self.now();
        let mut s = self.state();
        let measured = s.clocker.record(now);
        let new_rate = if throttled {
            let rate = if s.enabled { measured.min(s.bucket.fill_rate) } else { measured };
            s.enabled = true;
            s.cubic.error(rate, now)
        } else {
            s.cubic.success(now)
        };
        s.bucket.set_rate(new_rate.min(2.0 * measured), now);
    }

    /// The rate the bucket fills at, while enabled.
    pub fn rate(&self) -> Option<f64> {
        let s = self.state();
        s.enabled.then_some(s.bucket.fill_rate)
    }

    /// The CUBIC's `w_max`: the rate remembered at the last refusal.
    pub fn remembered(&self) -> f64 {
        self.state().cubic.w_max
    }

    /// The measured send rate, as last clocked.
    pub fn measured(&self) -> f64 {
        self.state().clocker.measured
    }
}
