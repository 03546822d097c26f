#[backstop::retry(base = "500 millis")]
fn fetch() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
