#[derive(Debug)]
struct Opaque;

#[backstop::retry]
fn fetch() -> Result<(), Opaque> {
    Err(Opaque)
}

fn main() {}
