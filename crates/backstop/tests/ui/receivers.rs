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


struct Shared;

impl Shared {
    #[backstop::retry]
    fn by_arc(self: std::sync::Arc<Self>) -> Result<(), std::io::Error> {
        Ok(())
    }
}
fn main() {}
