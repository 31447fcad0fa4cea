//! Webhook-ingest benchmark (see `BENCHMARKS.md`).
//!
//! In one process and one run: pre-signs distinct ~700-byte WhatsApp text-message webhooks,
//! serves a bare axum `200` handler (baseline) and the real ingress router over a real sled
//! store (group commit), drives both alternately with the same keep-alive HTTP/1.1 load
//! generator, and prints requests/s, ack latency p50/p99 and the ratio wabridge/baseline.
//! Breakdown scenarios (signature check only, sled insert without flush, flush per request)
//! show where the time goes.
//!
//! Environment: `BENCH_SECS` (10), `BENCH_WARMUP_SECS` (2), `BENCH_CONNECTIONS` (64),
//! `BENCH_ROUNDS` (2; 0 runs only the breakdown), `BENCH_BODIES` (20000), `BENCH_FLUSH_SECS`
//! (3, the flush-per-request scenario; 0 skips it), `BENCH_FLUSH_CONNECTIONS` (0: same as
//! `BENCH_CONNECTIONS`), `BENCH_FLUSH_ASYNC` (0; 1 flushes with sled's `flush_async()`, which
//! can hang), `BENCH_EXTRAS` (1; 0 skips the other breakdown scenarios),
//! `BENCH_SERVER_THREADS` (number of CPUs), `BENCH_CLIENT_THREADS` (2).

#[path = "common/cpu.rs"]
mod cpu;

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wabridge::ingress::{router, IngressState, Metrics};
use wabridge::store::{Inbox, Store, StoreError};
use wabridge::whatsapp::signature;
use wabridge_connectors::Secret;

const SECRET: &str = "bench-secret";
const PATH: &str = "/webhooks/whatsapp";
/// Target size of one webhook body, in bytes.
const BODY_BYTES: usize = 700;
/// Name prefix of the load generator's threads (to tell its CPU time from the server's).
const CLIENT_THREAD: &str = "bench-loadgen";

struct Config {
    secs: u64,
    warmup_secs: u64,
    connections: usize,
    rounds: usize,
    bodies: usize,
    flush_secs: u64,
    flush_connections: usize,
    flush_async: bool,
    extras: bool,
    server_threads: usize,
    client_threads: usize,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(value) => value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value}: not a valid value")),
        Err(_) => default,
    }
}

impl Config {
    fn from_env() -> Config {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Config {
            secs: env_or("BENCH_SECS", 10),
            warmup_secs: env_or("BENCH_WARMUP_SECS", 2),
            connections: env_or("BENCH_CONNECTIONS", 64).max(1),
            rounds: env_or("BENCH_ROUNDS", 2),
            bodies: env_or("BENCH_BODIES", 20_000).max(1),
            flush_secs: env_or("BENCH_FLUSH_SECS", 3),
            flush_connections: env_or("BENCH_FLUSH_CONNECTIONS", 0),
            flush_async: env_or("BENCH_FLUSH_ASYNC", 0u8) != 0,
            extras: env_or("BENCH_EXTRAS", 1u8) != 0,
            server_threads: env_or("BENCH_SERVER_THREADS", cpus).max(1),
            client_threads: env_or("BENCH_CLIENT_THREADS", 2).max(1),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bodies

/// A compact webhook in the shape of Meta's `text-message.json`, padded to about
/// [`BODY_BYTES`] with a distinct wamid.
fn webhook_body(i: usize) -> Vec<u8> {
    let build = |text: &str| {
        serde_json::json!({
            "object": "whatsapp_business_account",
            "entry": [{
                "id": "419561257915477",
                "changes": [{
                    "value": {
                        "messaging_product": "whatsapp",
                        "metadata": {
                            "display_phone_number": "15550783881",
                            "phone_number_id": "106540352242922"
                        },
                        "contacts": [{
                            "profile": { "name": "Sheena Nelson" },
                            "wa_id": "16505551234"
                        }],
                        "messages": [{
                            "from": "16505551234",
                            "id": format!("wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQ{i:020}BENCH="),
                            "timestamp": (1_749_416_383 + i as u64).to_string(),
                            "type": "text",
                            "text": { "body": text }
                        }]
                    },
                    "field": "messages"
                }]
            }]
        })
        .to_string()
    };
    let base = format!("Does it come in another color? (benchmark message {i})");
    let short = build(&base);
    let pad = BODY_BYTES.saturating_sub(short.len());
    let text = format!(
        "{base}{}",
        " Thanks, this is for a gift.".repeat(pad / 28 + 1)
    );
    let text = &text[..base.len() + pad];
    build(text).into_bytes()
}

/// Pre-serialised HTTP/1.1 requests, each a distinct signed body.
fn signed_requests(n: usize, secret: &Secret) -> (Vec<Vec<u8>>, usize) {
    let mut requests = Vec::with_capacity(n);
    let mut body_bytes = 0;
    for i in 0..n {
        let body = webhook_body(i);
        body_bytes += body.len();
        let sig = signature::sign(secret, &body);
        let mut req = format!(
            "POST {PATH} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
             {}: {sig}\r\ncontent-length: {}\r\n\r\n",
            signature::HEADER,
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(&body);
        requests.push(req);
    }
    (requests, body_bytes / n)
}

// ---------------------------------------------------------------------------------------------
// Inboxes defined by the bench (breakdown scenarios)

/// Accepts without storing: HTTP + signature check + handler only.
struct NullInbox;

#[async_trait::async_trait]
impl Inbox for NullInbox {
    async fn accept(&self, _raw: &[u8]) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Inserts into sled like `Store::accept` but never waits for a flush (NOT durable).
struct NoFlushInbox {
    db: sled::Db,
    tree: sled::Tree,
}

#[async_trait::async_trait]
impl Inbox for NoFlushInbox {
    async fn accept(&self, raw: &[u8]) -> Result<(), StoreError> {
        let id = self.db.generate_id()?;
        self.tree.insert(id.to_be_bytes(), raw)?;
        Ok(())
    }
}

/// Inserts, then flushes sled itself: one flush per request, no group commit.
///
/// By default the flush is `db.flush()` on tokio's blocking pool, as the group-commit flusher
/// does it. With `async_flush`, it is sled's own `flush_async()`, which in sled 0.34 can lose
/// its wake-up when many are in flight at once (spacejam/sled#1308, #1241): requests then
/// never get an answer.
struct FlushPerRequestInbox {
    db: sled::Db,
    tree: sled::Tree,
    async_flush: bool,
}

#[async_trait::async_trait]
impl Inbox for FlushPerRequestInbox {
    async fn accept(&self, raw: &[u8]) -> Result<(), StoreError> {
        let id = self.db.generate_id()?;
        self.tree.insert(id.to_be_bytes(), raw)?;
        if self.async_flush {
            self.tree.flush_async().await?;
        } else {
            let db = self.db.clone();
            tokio::task::spawn_blocking(move || db.flush())
                .await
                .map_err(|err| StoreError::Flush(err.to_string()))??;
        }
        Ok(())
    }
}

fn open_sled(path: &Path) -> (sled::Db, sled::Tree) {
    let db = sled::Config::new().path(path).open().expect("open sled");
    let tree = db.open_tree("inbox").expect("open tree");
    (db, tree)
}

// ---------------------------------------------------------------------------------------------
// Servers

struct Server {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// Serves `app` on a fresh loopback port, as the daemon does (`axum::serve`).
fn serve(rt: &Runtime, app: Router) -> Server {
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
                .expect("serve");
        });
        Server { addr, stop, task }
    })
}

/// Stops a server; returns false if its connections were still busy after `wait` and it
/// had to be aborted (their requests then never got an answer).
fn shutdown(rt: &Runtime, server: Server, wait: Duration) -> bool {
    let _ = server.stop.send(());
    rt.block_on(async {
        let mut task = server.task;
        match tokio::time::timeout(wait, &mut task).await {
            Ok(joined) => {
                joined.expect("server task");
                true
            }
            Err(_) => {
                task.abort();
                let _ = task.await;
                false
            }
        }
    })
}

fn ingress(inbox: Arc<dyn Inbox>) -> (Router, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::default());
    let app = router(IngressState {
        secrets: Arc::new(vec![Secret::new(SECRET)]),
        verify_token: Secret::new("bench-verify-token"),
        inbox,
        metrics: metrics.clone(),
        sources: Default::default(),
        events: None,
        connectors: None,
    });
    (app, metrics)
}

fn baseline_router() -> Router {
    Router::new().route(PATH, post(|| async { StatusCode::OK }))
}

// ---------------------------------------------------------------------------------------------
// Load generator: one keep-alive HTTP/1.1 connection per worker, pre-serialised requests.

#[derive(Default)]
struct WorkerResult {
    /// Latencies (ns) of requests sent and answered inside the measured window.
    latencies: Vec<u64>,
    /// Answers other than 200, and transport errors, inside the measured window.
    errors: u64,
    /// Every 200 received, warm-up included (to check against the store).
    ok_total: u64,
    /// Every non-200 or transport error, warm-up included.
    errors_total: u64,
    /// Requests still unanswered [`GRACE`] after the end (abandoned).
    unfinished: u64,
}

/// How long after the end of a run in-flight requests may still take.
const GRACE: Duration = Duration::from_secs(10);

struct Conn {
    stream: TcpStream,
    buf: Box<[u8; 8192]>,
}

impl Conn {
    async fn connect(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Box::new([0; 8192]),
        })
    }

    /// Sends one request and reads one `Content-Length` response; returns its status.
    async fn roundtrip(&mut self, request: &[u8]) -> io::Result<u16> {
        self.stream.write_all(request).await?;
        let mut filled = 0;
        loop {
            let n = self.stream.read(&mut self.buf[filled..]).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            filled += n;
            if let Some(head_end) = find(&self.buf[..filled], b"\r\n\r\n") {
                let head = &self.buf[..head_end];
                let status = parse_status(head)?;
                let total = head_end + 4 + content_length(head);
                if total > self.buf.len() {
                    return Err(io::Error::other("response larger than the read buffer"));
                }
                while filled < total {
                    let n = self.stream.read(&mut self.buf[filled..]).await?;
                    if n == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    filled += n;
                }
                return Ok(status);
            }
            if filled == self.buf.len() {
                return Err(io::Error::other(
                    "response head larger than the read buffer",
                ));
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_status(head: &[u8]) -> io::Result<u16> {
    head.get(9..12)
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other("malformed status line"))
}

fn content_length(head: &[u8]) -> usize {
    head.split(|&b| b == b'\n')
        .filter_map(|line| {
            let line = std::str::from_utf8(line).ok()?;
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .next()
        .unwrap_or(0)
}

async fn worker(
    addr: SocketAddr,
    requests: Arc<Vec<Vec<u8>>>,
    index: usize,
    step: usize,
    start: Instant,
    measure_from: Instant,
    end: Instant,
) -> WorkerResult {
    let mut result = WorkerResult {
        latencies: Vec::with_capacity(1 << 16),
        ..WorkerResult::default()
    };
    let mut conn = Conn::connect(addr).await.expect("connect");
    tokio::time::sleep_until(start.into()).await;
    let mut next = index;
    loop {
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        let request = &requests[next % requests.len()];
        next += step;
        let Ok(outcome) =
            tokio::time::timeout_at((end + GRACE).into(), conn.roundtrip(request)).await
        else {
            result.unfinished += 1;
            break;
        };
        let done = Instant::now();
        let measured = sent >= measure_from && done <= end;
        match outcome {
            Ok(200) => {
                result.ok_total += 1;
                if measured {
                    result.latencies.push((done - sent).as_nanos() as u64);
                }
            }
            Ok(_) => {
                result.errors_total += 1;
                if measured {
                    result.errors += 1;
                }
            }
            Err(_) => {
                result.errors_total += 1;
                if measured {
                    result.errors += 1;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
                match Conn::connect(addr).await {
                    Ok(fresh) => conn = fresh,
                    Err(_) => continue,
                }
            }
        }
    }
    result
}

struct Outcome {
    scenario: String,
    rps: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
    errors: u64,
    ok_total: u64,
    errors_total: u64,
    unfinished: u64,
    /// Server-side CPU (everything but the load generator's threads), in cores.
    server_cores: Option<f64>,
    /// Load generator CPU, in cores.
    client_cores: Option<f64>,
}

fn percentile(sorted: &[u64], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Duration::from_nanos(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Drives `addr` for `warmup` then `secs`, with `connections` workers on `client`.
fn drive(
    client: &Runtime,
    scenario: &str,
    addr: SocketAddr,
    requests: &Arc<Vec<Vec<u8>>>,
    connections: usize,
    warmup: Duration,
    secs: Duration,
) -> Outcome {
    let start = Instant::now() + Duration::from_millis(300);
    let measure_from = start + warmup;
    let end = measure_from + secs;
    let sampler = std::thread::spawn(move || {
        sleep_until(measure_from);
        let before = cpu::sample(CLIENT_THREAD);
        sleep_until(end);
        let after = cpu::sample(CLIENT_THREAD);
        before.zip(after)
    });
    let results = client.block_on(async {
        let tasks: Vec<_> = (0..connections)
            .map(|i| {
                tokio::spawn(worker(
                    addr,
                    requests.clone(),
                    i,
                    connections,
                    start,
                    measure_from,
                    end,
                ))
            })
            .collect();
        let mut results = Vec::with_capacity(tasks.len());
        for task in tasks {
            results.push(task.await.expect("worker"));
        }
        results
    });
    let cpu = sampler.join().expect("cpu sampler");
    let mut latencies = Vec::new();
    let (mut errors, mut ok_total, mut errors_total, mut unfinished) = (0, 0, 0, 0);
    for r in results {
        latencies.extend(r.latencies);
        errors += r.errors;
        ok_total += r.ok_total;
        errors_total += r.errors_total;
        unfinished += r.unfinished;
    }
    latencies.sort_unstable();
    let wall = secs.as_secs_f64();
    let (server_cores, client_cores) = match cpu {
        Some((before, after)) => {
            let total = (after.total - before.total) / wall;
            let client = (after.named - before.named) / wall;
            (Some(total - client), Some(client))
        }
        None => (None, None),
    };
    Outcome {
        scenario: scenario.to_owned(),
        rps: latencies.len() as f64 / wall,
        p50: percentile(&latencies, 50.0),
        p99: percentile(&latencies, 99.0),
        max: latencies
            .last()
            .map_or(Duration::ZERO, |&n| Duration::from_nanos(n)),
        errors,
        ok_total,
        errors_total,
        unfinished,
        server_cores,
        client_cores,
    }
}

fn sleep_until(at: Instant) {
    let now = Instant::now();
    if at > now {
        std::thread::sleep(at - now);
    }
}

// ---------------------------------------------------------------------------------------------
// Micro-measurements (single thread)

fn time_per_op(iterations: usize, mut op: impl FnMut(usize)) -> Duration {
    let started = Instant::now();
    for i in 0..iterations {
        op(i);
    }
    started.elapsed() / iterations as u32
}

fn fmt_ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn fmt_cores(c: Option<f64>) -> String {
    c.map_or_else(|| "n/a".to_owned(), |c| format!("{c:.2}"))
}

fn print_table(title: &str, outcomes: &[&Outcome]) {
    println!("\n### {title}\n");
    println!(
        "| scenario | requests/s | p50 | p99 | max | errors | unanswered at end+{}s | \
         server CPU (cores) | load-gen CPU (cores) | server CPU µs/request |",
        GRACE.as_secs()
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for o in outcomes {
        let per_request = o
            .server_cores
            .filter(|_| o.rps > 0.0)
            .map_or_else(|| "n/a".to_owned(), |c| format!("{:.1}", c / o.rps * 1e6));
        println!(
            "| {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} |",
            o.scenario,
            o.rps,
            fmt_ms(o.p50),
            fmt_ms(o.p99),
            fmt_ms(o.max),
            o.errors,
            o.unfinished,
            fmt_cores(o.server_cores),
            fmt_cores(o.client_cores),
            per_request,
        );
    }
}

fn main() {
    let config = Config::from_env();
    let secret = Secret::new(SECRET);
    let warmup = Duration::from_secs(config.warmup_secs);
    let secs = Duration::from_secs(config.secs);

    let built = Instant::now();
    let (requests, mean_body) = signed_requests(config.bodies, &secret);
    let requests = Arc::new(requests);
    println!(
        "# wabridge webhook-ingest benchmark\n\n\
         - CPUs: {}; server runtime threads: {}; load-generator threads: {}\n\
         - connections: {}; warm-up: {} s; measured: {} s per scenario; rounds: {}\n\
         - {} distinct signed bodies, mean body {} bytes (built and signed in {:.1} s), cycled\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        config.server_threads,
        config.client_threads,
        config.connections,
        config.warmup_secs,
        config.secs,
        config.rounds,
        config.bodies,
        mean_body,
        built.elapsed().as_secs_f64(),
    );

    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.server_threads)
        .thread_name("bench-server")
        .enable_all()
        .build()
        .expect("server runtime");
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.client_threads)
        .thread_name(CLIENT_THREAD)
        .enable_all()
        .build()
        .expect("client runtime");

    let run_with = |name: &str, app: Router, secs: Duration, connections: usize| {
        let server = serve(&server_rt, app);
        let outcome = drive(
            &client_rt,
            name,
            server.addr,
            &requests,
            connections,
            warmup,
            secs,
        );
        if !shutdown(&server_rt, server, Duration::from_secs(30)) {
            eprintln!("{name}: requests still in flight 30 s after the end; server aborted");
        }
        outcome
    };
    let run =
        |name: &str, app: Router, secs: Duration| run_with(name, app, secs, config.connections);

    // Alternating rounds: baseline, wabridge, baseline, wabridge, ...
    let mut rounds = Vec::new();
    let mut store_checks = Vec::new();
    for round in 1..=config.rounds {
        let baseline = run(
            &format!("baseline (bare axum 200), round {round}"),
            baseline_router(),
            secs,
        );
        eprintln!("round {round}: baseline {:.0} req/s", baseline.rps);

        let dir = tempfile::tempdir().expect("tempdir");
        let store = {
            let _guard = server_rt.enter();
            Store::open(dir.path()).expect("open store")
        };
        let (app, metrics) = ingress(Arc::new(store.clone()));
        let flushes_before = store.flush_count();
        let mut wabridge = run(&format!("wabridge ingress, round {round}"), app, secs);
        let flushes = store.flush_count() - flushes_before;
        wabridge.scenario = format!(
            "{} ({} group commits, mean {:.1} bodies each)",
            wabridge.scenario,
            flushes,
            wabridge.ok_total as f64 / flushes.max(1) as f64
        );
        eprintln!("round {round}: wabridge {:.0} req/s", wabridge.rps);
        let stored = store.inbox_len();
        let accepted = metrics.accepted.load(std::sync::atomic::Ordering::Relaxed);
        store_checks.push((round, wabridge.ok_total, accepted, stored));
        drop(store);
        rounds.push((baseline, wabridge));
    }

    // Breakdown scenarios, once each.
    let mut extras = Vec::new();
    if config.extras {
        let (app, _) = ingress(Arc::new(NullInbox));
        extras.push(run(
            "ingress, signature check only (inbox does nothing)",
            app,
            secs,
        ));
        eprintln!("signature only: {:.0} req/s", extras[extras.len() - 1].rps);

        let dir = tempfile::tempdir().expect("tempdir");
        let (db, tree) = open_sled(dir.path());
        let (app, _) = ingress(Arc::new(NoFlushInbox { db, tree }));
        extras.push(run(
            "ingress + sled insert, no flush (not durable)",
            app,
            secs,
        ));
        eprintln!("no flush: {:.0} req/s", extras[extras.len() - 1].rps);
        drop(dir);
    }
    if config.flush_secs > 0 {
        let dir = tempfile::tempdir().expect("tempdir");
        let (db, tree) = open_sled(dir.path());
        let (app, _) = ingress(Arc::new(FlushPerRequestInbox {
            db,
            tree,
            async_flush: config.flush_async,
        }));
        let connections = match config.flush_connections {
            0 => config.connections,
            n => n,
        };
        let outcome = run_with(
            &format!(
                "ingress + sled insert + {} per request (no group commit), \
                 {connections} connections, {} s",
                if config.flush_async {
                    "`flush_async()`"
                } else {
                    "`db.flush()`"
                },
                config.flush_secs
            ),
            app,
            Duration::from_secs(config.flush_secs),
            connections,
        );
        eprintln!("flush per request: {:.0} req/s", outcome.rps);
        extras.push(outcome);
        drop(dir);
    }

    // Micro-measurements, single thread, after the load runs.
    let body = webhook_body(0);
    let header = signature::sign(&secret, &body);
    let secrets = [secret.clone()];
    let verify = time_per_op(200_000, |_| {
        assert!(signature::verify(&secrets, Some(header.as_bytes()), &body).is_ok());
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, tree) = open_sled(dir.path());
    let insert = time_per_op(200_000, |_| {
        let id = db.generate_id().expect("id");
        tree.insert(id.to_be_bytes(), &body[..]).expect("insert");
    });
    let flush = time_per_op(200, |_| {
        let id = db.generate_id().expect("id");
        tree.insert(id.to_be_bytes(), &body[..]).expect("insert");
        db.flush().expect("flush");
    });
    drop((tree, db, dir));

    // Report.
    let all: Vec<&Outcome> = rounds.iter().flat_map(|(b, w)| [b, w]).collect();
    if !rounds.is_empty() {
        print_table("Rounds (alternating, same run, same machine)", &all);

        println!("\n### Ratio wabridge / baseline\n");
        println!(
            "| round | baseline req/s | wabridge req/s | ratio | wabridge p50 | wabridge p99 |"
        );
        println!("|---|---:|---:|---:|---:|---:|");
        let (mut base_sum, mut wab_sum) = (0.0, 0.0);
        for (i, (b, w)) in rounds.iter().enumerate() {
            base_sum += b.rps;
            wab_sum += w.rps;
            println!(
                "| {} | {:.0} | {:.0} | {:.2} | {} | {} |",
                i + 1,
                b.rps,
                w.rps,
                w.rps / b.rps,
                fmt_ms(w.p50),
                fmt_ms(w.p99)
            );
        }
        let worst_p99 = rounds.iter().map(|(_, w)| w.p99).max().unwrap_or_default();
        let ratio = wab_sum / base_sum;
        println!(
            "| mean | {:.0} | {:.0} | **{:.2}** | | worst {} |",
            base_sum / rounds.len() as f64,
            wab_sum / rounds.len() as f64,
            ratio,
            fmt_ms(worst_p99)
        );
        println!(
            "\nTargets: ratio ≥ 0.50 → {} ({:.2}); p99 < 10 ms → {} (worst round {}).",
            if ratio >= 0.5 { "met" } else { "MISSED" },
            ratio,
            if worst_p99 < Duration::from_millis(10) {
                "met"
            } else {
                "MISSED"
            },
            fmt_ms(worst_p99),
        );
    }

    if !extras.is_empty() {
        print_table(
            "Breakdown (once each, same run)",
            &extras.iter().collect::<Vec<_>>(),
        );
    }
    println!("\n### Single-thread micro-measurements (same body)\n");
    println!(
        "- `signature::verify` (HMAC-SHA256, {} bytes): {:.2} µs",
        body.len(),
        verify.as_secs_f64() * 1e6
    );
    println!(
        "- sled `generate_id` + `insert` (no flush): {:.2} µs",
        insert.as_secs_f64() * 1e6
    );
    println!(
        "- sled `insert` + `db.flush()` (one body per flush): {:.3} ms",
        flush.as_secs_f64() * 1e3
    );

    println!("\n### Store check (wabridge scenario; the dispatcher is not running, the inbox only grows)\n");
    println!("| round | 200s received | metrics.accepted | store.inbox_len() | match |");
    println!("|---|---:|---:|---:|---|");
    let mut all_match = true;
    for (round, acked, accepted, stored) in &store_checks {
        let ok = *acked == *accepted && *accepted as usize == *stored;
        all_match &= ok;
        println!(
            "| {round} | {acked} | {accepted} | {stored} | {} |",
            if ok { "yes" } else { "NO" }
        );
    }
    let errors: u64 = rounds
        .iter()
        .flat_map(|(b, w)| [b.errors_total, w.errors_total])
        .sum::<u64>()
        + extras.iter().map(|o| o.errors_total).sum::<u64>();
    println!("\nNon-200 answers or transport errors, warm-up included: {errors}");
    assert!(
        all_match,
        "the store does not hold exactly the acknowledged bodies"
    );
    assert_eq!(errors, 0, "some requests were not answered 200");
}
