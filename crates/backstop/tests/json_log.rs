//! The fields of every run line, as a JSON log pipeline receives them:
//! captured from tracing-subscriber's JSON formatter, so that a line can be
//! filtered by `name` and read by field, as `docs::observability` lists.
#![cfg(feature = "tracing")]

use std::time::Duration;

use backstop::{Backoff, ManualClock, RetryPolicy, Verdict};
use serde_json::{Value, json};

mod support;

use support::logged_json;

fn policy(attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(attempts)
        .backoff(Backoff::exponential(Duration::from_secs(1)).max_delay(Duration::from_secs(30)))
        .build()
        .unwrap()
}

/// The event's fields, without the message.
fn fields(line: &Value) -> Value {
    let mut fields = line["fields"].clone();
    fields.as_object_mut().unwrap().remove("message");
    fields
}

#[test]
fn a_retry_and_the_success_after_it_carry_the_documented_fields() {
    let clock = ManualClock::new();
    let mut left = 2;
    let lines = logged_json(|| {
        policy(5)
            .retry(|| {
                if left == 0 {
                    return Ok(());
                }
                left -= 1;
                Err(format!("SlowDown #{}", left + 1))
            })
            .name("upload_to_s3")
            .clock(&clock)
            .call()
            .unwrap();
    });
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert_eq!(lines[0]["level"], "INFO");
    assert_eq!(lines[0]["fields"]["message"], "Retrying upload_to_s3 in 1.0 seconds (attempt 1/5): SlowDown #2");
    assert_eq!(
        fields(&lines[0]),
        json!({
            "name": "upload_to_s3", "attempt": 1, "max_attempts": 5, "delay_ms": 1000,
            "elapsed_ms": 0, "server_hint": false, "error": "SlowDown #2"
        })
    );
    assert_eq!(fields(&lines[1])["elapsed_ms"], 1000);
    assert_eq!(lines[2]["fields"]["message"], "upload_to_s3 succeeded on attempt 3");
    assert_eq!(fields(&lines[2]), json!({"name": "upload_to_s3", "attempt": 3, "max_attempts": 5, "elapsed_ms": 3000}));
}

#[test]
fn giving_up_carries_the_reason_and_the_last_error() {
    let clock = ManualClock::new();
    let lines = logged_json(|| {
        let _ = policy(2).retry(|| Err::<(), _>("SlowDown")).name("upload_to_s3").clock(&clock).call();
        let _ = policy(5)
            .retry(|| Err::<(), _>("AccessDenied"))
            .when(|_: &&str| Verdict::Fail)
            .name("upload_to_s3")
            .clock(&clock)
            .call();
    });
    let warns: Vec<&Value> = lines.iter().filter(|l| l["level"] == "WARN").collect();
    assert_eq!(warns.len(), 2, "{lines:#?}");
    assert_eq!(warns[0]["fields"]["message"], "upload_to_s3 failed after 2 attempts in 1.0 seconds: SlowDown");
    assert_eq!(
        fields(warns[0]),
        json!({
            "name": "upload_to_s3", "attempt": 2, "max_attempts": 2, "elapsed_ms": 1000,
            "reason": "attempts", "error": "SlowDown"
        })
    );
    assert_eq!(
        fields(warns[1]),
        json!({
            "name": "upload_to_s3", "attempt": 1, "max_attempts": 5, "elapsed_ms": 0,
            "reason": "rejected", "error": "AccessDenied"
        })
    );
}

#[test]
fn every_line_of_a_run_can_be_told_apart_by_name() {
    let clock = ManualClock::new();
    let lines = logged_json(|| {
        for name in ["load_a", "load_b"] {
            let _ = policy(2).retry(|| Err::<(), _>("down")).name(name).clock(&clock).call();
        }
    });
    assert_eq!(lines.len(), 4, "{lines:#?}");
    let names: Vec<&str> = lines.iter().map(|l| l["fields"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["load_a", "load_a", "load_b", "load_b"]);
}
