//! The one line under a study's table that says what to conclude from it,
//! computed from the rows (a strategy left out with `--strategies` leaves
//! its comparison out).

use super::Row;

/// The mean of `metric` in the row named `name`.
fn mean(rows: &[Row], name: &str, metric: &str) -> Option<f64> {
    let row = rows.iter().find(|r| r.name == name)?;
    row.metrics.iter().find(|(m, _)| m == metric).map(|(_, s)| s.mean)
}

/// `a / b`, when both are there and `b` is not zero.
fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    let (a, b) = (a?, b?);
    (b > 0.0).then(|| a / b)
}

/// occ: which strategy to use, and why the others look as they do.
pub fn occ(rows: &[Row]) -> Option<String> {
    let calls = |name: &str| mean(rows, name, "calls");
    let time = |name: &str| mean(rows, name, "completion_ms");
    // The jittered strategy with the fewest calls.
    let best = ["full", "equal", "decorrelated"]
        .into_iter()
        .filter_map(|name| Some((name, calls(name)?)))
        .min_by(|a, b| a.1.total_cmp(&b.1))?
        .0;
    let mut parts = vec![format!("use jitter: `{best}` finishes with the fewest calls")];
    if let Some(more) = ratio(calls("none"), calls(best)) {
        parts.push(format!(
            "`none` looks fastest only because it never waits: it sends {more:.1}× the calls, and that load is its cost"
        ));
    }
    if let Some(slower) = ratio(time("exponential"), time(best)) {
        parts.push(format!("plain `exponential` keeps clients in lockstep and takes {slower:.0}× as long"));
    }
    Some(format!("conclusion: {}.", parts.join("; ")))
}

/// outage: how much of the outage's load each guard takes away.
pub fn outage(rows: &[Row]) -> Option<String> {
    let attempts = |name: &str| mean(rows, name, "attempts_in_outage");
    let plain = attempts("retries")?;
    let mut parts = Vec::new();
    for name in ["retries+budget", "retries+breaker", "retries+budget+breaker"] {
        if let Some(fewer) = ratio(Some(plain), attempts(name)) {
            parts.push(format!("{name} sends {fewer:.1}× fewer"));
        }
    }
    (!parts.is_empty())
        .then(|| format!("conclusion: against plain retries' {plain:.0} attempts in the outage, {}.", parts.join(", ")))
}

/// throttle: what honouring the server's hint buys.
pub fn throttle(rows: &[Row]) -> Option<String> {
    let calls = ratio(mean(rows, "backoff, no hint", "calls"), mean(rows, "Retry-After: 1", "calls"))?;
    let drain = ratio(mean(rows, "backoff, no hint", "drain_s"), mean(rows, "Retry-After: 1", "drain_s"))?;
    Some(format!(
        "conclusion: honouring Retry-After sends {calls:.1}× fewer calls than backoff alone, and drains in {:.2}× the time.",
        1.0 / drain
    ))
}

/// fleet: what sharing the guards through Redis changes.
pub fn fleet(rows: &[Row]) -> Option<String> {
    let (local, shared) = ("local guards", "shared guards (redis)");
    let probes = |name: &str| mean(rows, name, "probes_per_open_period");
    let retries = |name: &str| mean(rows, name, "retries_in_outage");
    Some(format!(
        "conclusion: shared guards probe the dead service {:.0} time(s) per open period instead of {:.0}, and retry {:.0} times in the outage instead of {:.0}.",
        probes(shared)?,
        probes(local)?,
        retries(shared)?,
        retries(local)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::Stat;

    fn row(name: &str, metrics: &[(&str, f64)]) -> Row {
        Row {
            name: name.into(),
            clients: 100,
            metrics: metrics.iter().map(|(m, v)| ((*m).into(), Stat::of(&[*v]))).collect(),
        }
    }

    #[test]
    fn occ_names_the_jitter_with_fewest_calls_and_the_cost_of_none() {
        let rows = [
            row("none", &[("calls", 4579.0), ("completion_ms", 939.0)]),
            row("exponential", &[("calls", 2661.0), ("completion_ms", 92871.0)]),
            row("full", &[("calls", 825.0), ("completion_ms", 3321.0)]),
            row("decorrelated", &[("calls", 905.0), ("completion_ms", 2695.0)]),
        ];
        let line = occ(&rows).unwrap();
        assert!(line.starts_with("conclusion: use jitter: `full` finishes with the fewest calls"), "{line}");
        assert!(line.contains("it sends 5.6× the calls"), "{line}");
        assert!(line.contains("takes 28× as long"), "{line}");
        // Without the jittered strategies there is nothing to conclude.
        assert_eq!(occ(&rows[..2]), None);
    }
}
