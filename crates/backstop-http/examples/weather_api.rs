//! Fetching weather data from an API that answers 503,
//! then 429 with `Retry-After: 1`, then the forecast. The API is the bundled
//! fault server on 127.0.0.1; the client is a real reqwest client with
//! backstop's middleware. Takes about 2 s of real waiting.
//!
//! Run it with: `cargo run --example weather_api -p backstop-http`

use backstop::{CircuitBreaker, presets};
use backstop_http::RetryMiddleware;
use backstop_testkit::{FaultServer, Reply};
use reqwest_middleware::ClientBuilder;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_target(false).init();

    let api = FaultServer::start();
    api.script([
        Reply::status(503),
        Reply::retry_after(429, "1"),
        Reply::ok(r#"{"city": "Utrecht", "temp_c": 11.5, "sky": "drizzle"}"#)
            .header("content-type", "application/json"),
    ]);

    // The API preset: 3 attempts, 0.5 s doubling to 10 s, +U[0, 0.5 s].
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(RetryMiddleware::new(presets::API_CALL).breaker(&CircuitBreaker::new("weather_api", Default::default())))
        .build();

    let url = api.url("/v1/forecast?city=Utrecht&key=not-in-the-logs");
    let response = client.get(&url).send().await?.error_for_status()?;
    println!("forecast: {}", response.text().await?);
    println!("the API was called {} times", api.hits());
    Ok(())
}
