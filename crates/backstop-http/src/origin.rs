//! A request's origin, the key of guards per origin
//! ([`RetryMiddleware::per_origin`](crate::RetryMiddleware::per_origin)):
//! scheme, host and port, the scheme's default port left out
//! (`https://api.example`, `http://127.0.0.1:8080`). Never credentials, path
//! or query: the key names the guards' logs and metrics.

use std::borrow::Cow;

use backstop::Guards;
use backstop::keyed::Keyed;

/// `scheme://host[:port]`, without a port the scheme implies; lowercase,
/// and without a host's trailing dot (`HTTPS://API.Example.:443` and
/// `https://api.example` are one origin).
fn origin(scheme: &str, host: &str, port: Option<u16>) -> String {
    let (scheme, host) = (scheme.to_ascii_lowercase(), host.trim_end_matches('.').to_ascii_lowercase());
    let scheme = scheme.as_str();
    let default = match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    };
    match port.filter(|p| Some(*p) != default) {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    }
}

/// The origin of a reqwest URL.
pub(crate) fn of_url(url: &reqwest::Url) -> String {
    origin(url.scheme(), url.host_str().unwrap_or(""), url.port())
}

/// The origin of a request to a tower service: its URI's, or for a URI
/// without an authority, `http://` and its `Host` header.
pub(crate) fn of_request<B>(req: &http::Request<B>) -> String {
    let uri = req.uri();
    match uri.host() {
        Some(host) => origin(uri.scheme_str().unwrap_or("http"), host, uri.port_u16()),
        None => {
            let host = req.headers().get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
            // A Host header is `host[:port]`, never credentials.
            match host.parse::<http::uri::Authority>() {
                Ok(a) => origin("http", a.host(), a.port_u16()),
                Err(_) => origin("http", "", None),
            }
        }
    }
}

/// The guards for a request: `guards`, with those of its origin's in
/// `per_origin` (where set) taking the place of the same kind.
pub(crate) fn guards_for<'a>(
    guards: &'a Guards,
    per_origin: Option<&Keyed<Guards>>,
    origin: impl FnOnce() -> String,
) -> Cow<'a, Guards> {
    match per_origin {
        None => Cow::Borrowed(guards),
        Some(keyed) => Cow::Owned(guards.to_builder().merge(&keyed.get(&origin())).build()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_is_scheme_host_and_a_port_not_implied() {
        let url = |s: &str| of_url(&reqwest::Url::parse(s).unwrap());
        assert_eq!(url("https://user:secret@api.example/v1/x?token=abc"), "https://api.example");
        assert_eq!(url("https://api.example:443/"), "https://api.example");
        assert_eq!(url("http://127.0.0.1:8080/a"), "http://127.0.0.1:8080");
        assert_eq!(url("http://[::1]:9000/"), "http://[::1]:9000");
        let req = |uri: &str| of_request(&http::Request::get(uri).body(()).unwrap());
        assert_eq!(req("https://user:pw@api.example:443/x?q=1"), "https://api.example");
        assert_eq!(req("http://api.example:8080/x"), "http://api.example:8080");
        let relative = http::Request::get("/x").header("host", "api.example:81").body(()).unwrap();
        assert_eq!(of_request(&relative), "http://api.example:81");
        assert_eq!(req("HTTPS://API.Example.:443/x"), "https://api.example");
        let shouting = http::Request::get("/x").header("host", "API.EXAMPLE").body(()).unwrap();
        assert_eq!(of_request(&shouting), "http://api.example");
        assert_eq!(url("https://API.example./x"), "https://api.example");
    }
}
