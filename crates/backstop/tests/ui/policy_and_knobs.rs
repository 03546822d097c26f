#[backstop::retry(policy = backstop::RetryPolicy::default(), max_attempts = 3)]
fn fetch() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
