#[backstop::retry(preset = s3_uplaod)]
fn upload() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
