struct Client;

impl Client {
    #[backstop::retry]
    fn consume(self) -> Result<(), std::io::Error> {
        Ok(())
    }

    #[backstop::retry]
    async fn update(&mut self) -> Result<(), std::io::Error> {
        Ok(())
    }
}



#[backstop::retry]
async fn fill(buf: &mut Vec<u8>) -> Result<(), std::io::Error> {
    buf.push(1);
    Ok(())
}
fn main() {}
