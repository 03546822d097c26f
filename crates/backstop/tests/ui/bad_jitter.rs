#[backstop::retry(jitter = "proportional:1.5")]
fn fetch() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
