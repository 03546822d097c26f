//! The breaker under real threads: the probe limit holds, counters conserve,
//! nothing deadlocks.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use backstop::breaker::{BreakerConfig, Window};
use backstop::{CircuitBreaker, ManualClock, breaker::CircuitState};

#[test]
fn only_one_probe_at_a_time_under_16_threads() {
    let clock = ManualClock::new();
    let b = CircuitBreaker::builder("s3")
        .config(BreakerConfig::builder().consecutive_failures(1).build().unwrap())
        .clock(&clock)
        .build();
    b.try_acquire().unwrap().failure();
    clock.advance(Duration::from_secs(30));
    for _round in 0..20 {
        let start = Arc::new(Barrier::new(16));
        let hold = Arc::new(Barrier::new(16));
        let granted: usize = (0..16)
            .map(|_| {
                let (b, start, hold) = (b.clone(), Arc::clone(&start), Arc::clone(&hold));
                thread::spawn(move || {
                    start.wait();
                    let permit = b.try_acquire().ok();
                    let got = permit.is_some();
                    hold.wait(); // every thread has tried before any permit ends
                    drop(permit); // unrecorded: frees the slot, stays half-open
                    got as usize
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(granted, 1);
        assert_eq!(b.state(), CircuitState::HalfOpen);
    }
}

/// A small deterministic generator per thread.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn eight_threads_times_100k_calls_conserve_every_count() {
    let clock = ManualClock::new();
    let config = BreakerConfig::builder()
        .consecutive_failures(20)
        .failure_rate(0.6)
        .window(Window::Count(50))
        .minimum_calls(20)
        .half_open_max_calls(3)
        .success_threshold(2)
        .build()
        .unwrap();
    let b = CircuitBreaker::builder("stress").config(config).clock(&clock).build();
    let handles: Vec<_> = (0..8u64)
        .map(|t| {
            let (b, clock) = (b.clone(), clock.clone());
            thread::spawn(move || {
                let mut seed = 0x9E37_79B9_7F4A_7C15 ^ (t + 1);
                let (mut ok, mut failed, mut ignored, mut rejected) = (0u64, 0u64, 0u64, 0u64);
                for i in 0..100_000u32 {
                    if t == 0 && i % 500 == 0 {
                        clock.advance(Duration::from_secs(7)); // let open periods end
                    }
                    let r = next(&mut seed) % 100;
                    match b.try_acquire() {
                        Err(_) => rejected += 1,
                        // Phases of bad and good health, so the breaker cycles.
                        Ok(p) if (i / 5000) % 2 == 0 && r < 70 => {
                            p.failure();
                            failed += 1;
                        }
                        Ok(p) if r < 3 => {
                            p.ignore();
                            ignored += 1;
                        }
                        Ok(p) if r < 5 => drop(p), // abandoned: counts nothing
                        Ok(p) => {
                            p.success();
                            ok += 1;
                        }
                    }
                }
                (ok, failed, ignored, rejected)
            })
        })
        .collect();
    let (mut ok, mut failed, mut ignored, mut rejected) = (0, 0, 0, 0);
    for h in handles {
        let (a, f, i, r) = h.join().expect("no panic, no deadlock");
        ok += a;
        failed += f;
        ignored += i;
        rejected += r;
    }
    let stats = b.stats();
    assert_eq!(stats.failures, failed);
    assert_eq!(stats.ignored, ignored);
    assert_eq!(stats.rejected, rejected);
    let abandoned = 800_000 - ok - failed - ignored - rejected;
    assert!(abandoned > 0 && ok > 0);
    assert!(stats.transitions >= 3, "it cycled: {stats:?}");
    // And it still works afterwards.
    b.reset();
    b.try_acquire().unwrap().success();
}
