#[backstop::retry]
fn count() -> u32 {
    3
}

#[backstop::retry]
fn nothing() {}

fn main() {}
