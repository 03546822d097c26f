static HEDGE: std::sync::LazyLock<backstop::hedge::Hedge> =
    std::sync::LazyLock::new(|| backstop::hedge::Hedge::builder("fetch").build().unwrap());

#[backstop::retry(max_attempts = 2, hedge = HEDGE)]
fn fetch() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
