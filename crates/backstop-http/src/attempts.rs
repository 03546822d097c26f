//! How many attempts a response took: [`Attempts`], put in the extensions of
//! every response that [`RetryMiddleware`](crate::RetryMiddleware) and
//! [`RetryLayer`](crate::RetryLayer) return.

/// The attempts a response took, the one that answered included (1: no
/// retry was needed). Read it from the response's extensions:
///
/// ```no_run
/// # async fn demo(client: reqwest_middleware::ClientWithMiddleware) -> Result<(), reqwest_middleware::Error> {
/// use backstop_http::Attempts;
///
/// let resp = client.get("http://api.weather.test/forecast").send().await?;
/// if let Some(Attempts(n)) = resp.extensions().get::<Attempts>() {
///     println!("answered on attempt {n}");
/// }
/// # Ok(()) }
/// ```
///
/// A call through [`send`](crate::send) or [`fetch`](crate::fetch) asks for
/// the count with `.with_attempts()` instead, as any run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Attempts(pub u32);
