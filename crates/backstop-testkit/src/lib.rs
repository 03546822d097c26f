//! Test support for backstop: [`FaultServer`], a real HTTP/1.1 server (hyper)
//! on `127.0.0.1:0` that answers each request from a script of [`Reply`]s:
//! a status, a `Retry-After` in either form, a reset connection, a stall, or
//! half a body. It records every request it receives, so a test can check
//! what the client really sent (methods, headers such as `Idempotency-Key`,
//! bodies).
//!
//! The server runs on its own runtime in a background thread, so it serves
//! sync tests, async tests and separate processes alike, and stops when
//! dropped.
//!
//! ```
//! use backstop_testkit::{FaultServer, Reply};
//!
//! let server = FaultServer::start();
//! server.script([Reply::status(503), Reply::ok("sunny")]);
//! // ... point a client at server.url("/forecast") ...
//! # drop(server);
//! ```

pub mod errors;

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "s3")]
pub mod s3;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// What the server does with one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Answer with this status, headers and body.
    Respond {
        /// The status.
        status: StatusCode,
        /// Extra headers.
        headers: Vec<(String, String)>,
        /// The body.
        body: Bytes,
    },
    /// Close the connection without answering.
    Reset,
    /// Wait this long, then answer 200 (a client with a shorter timeout gives up first).
    Stall(Duration),
    /// Wait this long, then pass the request to the backend (a slow server
    /// that answers right).
    Delay(Duration),
    /// Declare the whole body's length, send its first half, then drop the connection.
    HalfBody(Bytes),
    /// Pass the request to the backend (see [`FaultServer::with_backend`]).
    Forward,
    /// Pass the request to the backend, then send only the first half of
    /// its answer's body and drop the connection.
    ForwardHalfBody,
}

/// A server behind the faults: gets the request (body collected), gives a
/// response. `s3s`'s service, adapted, is one.
pub type Backend = Arc<dyn Fn(Request<Bytes>) -> BoxFuture<Response<Bytes>> + Send + Sync>;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// A fault for the requests that match a predicate, a number of times.
struct Rule {
    matches: Box<dyn Fn(&Recorded) -> bool + Send>,
    remaining: usize,
    reply: Reply,
}

impl Reply {
    /// `200 OK` with this body.
    pub fn ok(body: impl Into<Bytes>) -> Self {
        Self::Respond { status: StatusCode::OK, headers: vec![], body: body.into() }
    }

    /// This status with an empty body.
    pub fn status(code: u16) -> Self {
        Self::Respond {
            status: StatusCode::from_u16(code).expect("a valid status code"),
            headers: vec![],
            body: Bytes::new(),
        }
    }

    /// This status and a `Retry-After` header with this raw value.
    pub fn retry_after(code: u16, value: &str) -> Self {
        Self::status(code).header("retry-after", value)
    }

    /// This status and a `Retry-After` HTTP-date `wait` after the server's
    /// `Date` header, which is set to `server_now` (so the hint does not
    /// depend on the client's clock).
    pub fn retry_after_date(code: u16, server_now: SystemTime, wait: Duration) -> Self {
        Self::status(code)
            .header("date", &httpdate::fmt_http_date(server_now))
            .header("retry-after", &httpdate::fmt_http_date(server_now + wait))
    }

    /// Adds a header to a `Respond` reply.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if let Self::Respond { headers, .. } = &mut self {
            headers.push((name.to_owned(), value.to_owned()));
        }
        self
    }

    /// Closes the connection without answering.
    pub fn reset() -> Self {
        Self::Reset
    }

    /// Waits `d`, then answers 200.
    pub fn stall(d: Duration) -> Self {
        Self::Stall(d)
    }

    /// Waits `d`, then passes the request to the backend.
    pub fn delay(d: Duration) -> Self {
        Self::Delay(d)
    }

    /// Sends half of `body`, having declared all of it.
    pub fn half_body(body: impl Into<Bytes>) -> Self {
        Self::HalfBody(body.into())
    }

    /// An S3-style error: this status with an XML body naming `code`
    /// (`SlowDown`, `InternalError`, `AccessDenied`, ...).
    pub fn s3_error(status: u16, code: &str) -> Self {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>injected {code}</Message><RequestId>testkit</RequestId></Error>"
        );
        match Self::status(status).header("content-type", "application/xml") {
            Self::Respond { status, headers, .. } => Self::Respond { status, headers, body: body.into() },
            other => other,
        }
    }
}

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The method.
    pub method: Method,
    /// The path and query.
    pub path: String,
    /// The headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl Recorded {
    /// A header's value as text, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Default)]
struct State {
    script: VecDeque<Reply>,
    rules: Vec<Rule>,
    fallback: Option<Reply>,
    backend: Option<Backend>,
    received: Vec<Recorded>,
}

/// A scripted HTTP server on loopback; see the [crate docs](crate).
pub struct FaultServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FaultServer {
    /// Starts a server on `127.0.0.1:0`. When its script runs out it answers
    /// `200 OK` with body `ok` (see [`otherwise`](Self::otherwise)).
    pub fn start() -> Self {
        Self::start_with(State::default())
    }

    /// Starts a server in front of `backend`: requests go to the backend
    /// unless the script or a rule says otherwise (a fault proxy).
    pub fn with_backend(backend: Backend) -> Self {
        Self::start_with(State { backend: Some(backend), ..State::default() })
    }

    fn start_with(state: State) -> Self {
        let state = Arc::new(Mutex::new(state));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let shared = Arc::clone(&state);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a tokio runtime for the fault server");
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
                addr_tx.send(listener.local_addr().expect("local addr")).expect("report address");
                tokio::select! {
                    _ = stop_rx => {}
                    _ = accept_loop(listener, shared) => {}
                }
            });
        });
        let addr = addr_rx.recv().expect("the fault server started");
        Self { addr, state, stop: Some(stop_tx), thread: Some(thread) }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Queues replies, one per request, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.state).script.extend(replies);
    }

    /// Answers `reply` to the next `times` requests for which `matches` is
    /// true (checked before the script): "fail part 2 twice".
    pub fn fail_matching(&self, times: usize, matches: impl Fn(&Recorded) -> bool + Send + 'static, reply: Reply) {
        lock(&self.state).rules.push(Rule { matches: Box::new(matches), remaining: times, reply });
    }

    /// What to answer once the script is used up (default: `200 ok`, or
    /// [`Reply::Forward`] with a backend).
    pub fn otherwise(&self, reply: Reply) {
        lock(&self.state).fallback = Some(reply);
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state).received.clone()
    }

    /// How many requests were received.
    pub fn hits(&self) -> usize {
        lock(&self.state).received.len()
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<Mutex<State>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(Arc::clone(&state), req));
            // Errors here are the faults we inject (resets, half bodies).
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// The error a handler returns to make hyper drop the connection.
#[derive(Debug)]
struct Injected;

impl std::fmt::Display for Injected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("injected fault")
    }
}

impl std::error::Error for Injected {}

async fn handle(state: Arc<Mutex<State>>, req: Request<Incoming>) -> Result<Response<Scripted>, Injected> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let recorded = Recorded {
        method: parts.method.clone(),
        path: parts.uri.path_and_query().map_or_else(|| "/".into(), |p| p.to_string()),
        headers: parts.headers.clone(),
        body: body.clone(),
    };
    let (reply, backend) = {
        let mut s = lock(&state);
        let ruled = s.rules.iter_mut().find(|r| r.remaining > 0 && (r.matches)(&recorded)).map(|r| {
            r.remaining -= 1;
            r.reply.clone()
        });
        s.received.push(recorded);
        let fallback = s.fallback.clone().unwrap_or_else(|| match s.backend {
            Some(_) => Reply::Forward,
            None => Reply::ok("ok"),
        });
        let reply = ruled.or_else(|| s.script.pop_front()).unwrap_or(fallback);
        (reply, s.backend.clone())
    };
    let forward = |backend: Option<Backend>| async move {
        let backend = backend.ok_or(Injected)?;
        Ok::<_, Injected>(backend(Request::from_parts(parts, body)).await)
    };
    match reply {
        Reply::Forward => {
            let (head, body) = forward(backend).await?.into_parts();
            Ok(Response::from_parts(head, Scripted::full(body)))
        }
        Reply::ForwardHalfBody => {
            let (mut head, all) = forward(backend).await?.into_parts();
            head.headers.insert("content-length", all.len().into());
            let half = all.slice(..all.len() / 2);
            Ok(Response::from_parts(head, Scripted::cut(half)))
        }
        Reply::Respond { status, headers, body } => {
            let mut resp = Response::builder().status(status);
            for (k, v) in headers {
                resp = resp.header(k, v);
            }
            Ok(resp.body(Scripted::full(body)).expect("a valid scripted response"))
        }
        Reply::Delay(d) => {
            tokio::time::sleep(d).await;
            let (head, body) = forward(backend).await?.into_parts();
            Ok(Response::from_parts(head, Scripted::full(body)))
        }
        Reply::Reset => Err(Injected),
        Reply::Stall(d) => {
            tokio::time::sleep(d).await;
            Ok(Response::new(Scripted::full(Bytes::from_static(b"late"))))
        }
        Reply::HalfBody(all) => {
            let half = all.slice(..all.len() / 2);
            let resp = Response::builder()
                .header("content-length", all.len())
                .body(Scripted::cut(half))
                .expect("a valid half-body response");
            Ok(resp)
        }
    }
}

/// A response body: all of it, or a part then an error (hyper then drops
/// the connection mid-body). Before failing it waits a moment, so the head
/// and the part really reach the client first.
struct Scripted {
    data: Option<Bytes>,
    then_fail: bool,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Scripted {
    fn full(data: Bytes) -> Self {
        Self { data: Some(data), then_fail: false, pause: None }
    }

    fn cut(part: Bytes) -> Self {
        Self { data: Some(part), then_fail: true, pause: Some(Box::pin(tokio::time::sleep(Duration::from_millis(20)))) }
    }
}

impl Body for Scripted {
    type Data = Bytes;
    type Error = Injected;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Injected>>> {
        if let Some(data) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if let Some(pause) = self.pause.as_mut() {
            std::task::ready!(pause.as_mut().poll(cx));
            self.pause = None;
        }
        if std::mem::take(&mut self.then_fail) {
            return Poll::Ready(Some(Err(Injected)));
        }
        Poll::Ready(None)
    }
}
