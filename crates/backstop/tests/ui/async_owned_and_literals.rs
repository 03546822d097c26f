#[backstop::retry(when = |_e| if key.is_empty() { backstop::Verdict::Fail } else { backstop::Verdict::Retry })]
async fn fetch(key: String) -> Result<String, std::io::Error> {
    Ok(key)
}

#[backstop::retry(max_attempts = 4294967296)]
fn overflow() -> Result<(), std::io::Error> {
    Ok(())
}

#[backstop::retry(jitter = "additive:")]
fn no_value() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
