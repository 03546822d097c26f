#[backstop::retry(preset = api_call, base = "20s")]
fn fetch() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
