#[backstop::retry(max_attempts = 0)]
fn fetch() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
