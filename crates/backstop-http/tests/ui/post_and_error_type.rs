use backstop_http::{HttpError, api_retry, check};

/// A POST retried as a whole would be sent again after the server acted on it.
#[api_retry]
async fn place_order(client: &reqwest::Client, url: &str) -> Result<String, HttpError> {
    let response = check(client.post(url).body("{}").send().await?)?;
    Ok(response.text().await?)
}

/// `error_for_status()` gives a `reqwest::Error`, which loses `Retry-After`.
#[api_retry]
async fn fetch(client: &reqwest::Client, url: &str) -> Result<String, reqwest::Error> {
    client.get(url).send().await?.error_for_status()?.text().await
}

fn main() {}
