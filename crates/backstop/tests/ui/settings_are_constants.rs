struct Client;

impl Client {
    const ATTEMPTS: u32 = 3;

    #[backstop::retry(max_attempts = Self::ATTEMPTS)]
    fn get(&self) -> Result<(), std::io::Error> {
        Ok(())
    }
}

#[backstop::retry(max_attempts = 2)]
#[backstop::retry(max_attempts = 3)]
fn twice() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
