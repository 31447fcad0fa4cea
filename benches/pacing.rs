//! Outbound pacing benchmark (see `BENCHMARKS.md`).
//!
//! For each configured rate (80 and 1,000 messages/s by default), in one process and one run:
//! starts the fake Graph API (`wabridge::whatsapp::fake`, which refuses with 130429 any message
//! that would put more than `mps` accepted messages for a number within one second) on its own
//! runtime, then sends `BENCH_WINDOWS` seconds' worth of texts to distinct recipients through
//! the real `Sender` and `RateLimiter`, all queued at once. Reports:
//!
//! - the achieved rate at Meta's end over the steady state (the slope of arrivals between the
//!   10th and the 90th percentile of accepted messages), and its ratio to the configured rate
//!   (the baseline);
//! - 130429 answers (must be 0);
//! - CPU: the sender's (process minus the fake's threads) and the fake's, in % of one core and
//!   µs per message.
//!
//! A control row sends the same load through a limiter configured at 1,000/s to a fake
//! enforcing the lower rate: it shows the fake does refuse what goes too fast.
//!
//! Environment: `BENCH_RATES` (`80,1000`), `BENCH_WINDOWS` (10).

#[path = "common/cpu.rs"]
mod cpu;

use std::sync::Arc;
use std::time::{Duration, Instant};

use wabridge::whatsapp::fake::FakeGraph;
use wabridge::whatsapp::ratelimit::{RateLimitConfig, RateLimiter};
use wabridge::whatsapp::sender::{OutboundMessage, Recipient, SendError, SendRequest, Sender};
use wabridge_connectors::Secret;

const NUMBER: &str = "106540352242922";
/// Thread name prefix of the fake Graph API's runtime.
const FAKE_THREAD: &str = "fake-graph";

struct Row {
    label: String,
    configured: usize,
    sent: usize,
    accepted: u64,
    throttled: u64,
    steady_rate: f64,
    sender_cpu: f64,
    fake_cpu: f64,
    wall: f64,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Sends `n` texts to distinct recipients, all queued at once; returns how many failed.
async fn blast(sender: Arc<Sender>, n: usize) -> usize {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let sender = Arc::clone(&sender);
            tokio::spawn(async move {
                let request = SendRequest {
                    phone_number_id: NUMBER.to_owned(),
                    to: Recipient::Phone(format!("9689{i:07}")),
                    message: OutboundMessage::Text {
                        body: "Your order 55012 has shipped.".to_owned(),
                        preview_url: false,
                    },
                    reply_to: None,
                    callback_data: None,
                };
                sender.send(&request).await
            })
        })
        .collect();
    let mut failed = 0;
    for task in tasks {
        match task.await {
            Ok(Ok(_)) => {}
            Ok(Err(SendError::Retry { .. })) | Ok(Err(_)) | Err(_) => failed += 1,
        }
    }
    failed
}

fn run(label: &str, fake_mps: usize, limiter_mps: u32, windows: usize) -> Row {
    let fake_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(FAKE_THREAD)
        .enable_all()
        .build()
        .expect("fake runtime");
    let fake = fake_rt
        .block_on(FakeGraph::start(fake_mps))
        .expect("fake starts");
    let sender_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("sender")
        .enable_all()
        .build()
        .expect("sender runtime");
    let limiter = Arc::new(RateLimiter::new(RateLimitConfig {
        messages_per_second: limiter_mps,
        // The control row is refused often: keep its cool-downs short.
        slow_down_secs: 1,
        ..RateLimitConfig::default()
    }));
    let sender = Arc::new(
        Sender::from_parts(
            fake.base_url(),
            Secret::new("bench-token"),
            limiter,
            Duration::from_secs(2),
            Duration::from_secs(10),
        )
        .expect("sender"),
    );
    let n = fake_mps * windows;
    let before = cpu::sample(FAKE_THREAD);
    let start = Instant::now();
    sender_rt.block_on(blast(sender, n));
    let wall = start.elapsed().as_secs_f64();
    let after = cpu::sample(FAKE_THREAD);
    let counts = fake.counts();
    // The slope of arrivals between the 10th and the 90th percentile: neither the start
    // (a small burst) nor the end (the last stragglers) weighs on it.
    let at = &counts.accepted_at;
    let steady_rate = if at.len() >= 20 {
        let (from, to) = (at.len() / 10, at.len() * 9 / 10);
        (to - from) as f64 / at[to].duration_since(at[from]).as_secs_f64()
    } else {
        0.0
    };
    let (sender_cpu, fake_cpu) = match (before, after) {
        (Some(b), Some(a)) => ((a.total - b.total) - (a.named - b.named), a.named - b.named),
        _ => (f64::NAN, f64::NAN),
    };
    Row {
        label: label.to_owned(),
        configured: fake_mps,
        sent: n,
        accepted: counts.accepted,
        throttled: counts.throttled,
        steady_rate,
        sender_cpu,
        fake_cpu,
        wall,
    }
}

fn main() {
    let rates: Vec<usize> = std::env::var("BENCH_RATES")
        .unwrap_or_else(|_| "80,1000".to_owned())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let windows: usize = env_or("BENCH_WINDOWS", 10);
    let mut rows = Vec::new();
    for &rate in &rates {
        let mps = u32::try_from(rate).unwrap_or(1000);
        rows.push(run("wabridge", rate, mps, windows));
        if rate < 1000 {
            rows.push(run("control (limiter at 1000/s)", rate, 1000, windows));
        }
    }
    println!(
        "| run | configured msg/s | sent | accepted | 130429 | achieved msg/s (steady) | achieved / configured | wall s | sender CPU (% core, µs/msg) | fake CPU (% core) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        // A refused run has no steady state to speak of.
        let (rate, ratio) = if row.throttled == 0 {
            (
                format!("{:.1}", row.steady_rate),
                format!("{:.3}", row.steady_rate / row.configured as f64),
            )
        } else {
            ("–".to_owned(), "–".to_owned())
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.2} | {:.1} %, {:.0} µs | {:.1} % |",
            row.label,
            row.configured,
            row.sent,
            row.accepted,
            row.throttled,
            rate,
            ratio,
            row.wall,
            100.0 * row.sender_cpu / row.wall,
            1e6 * row.sender_cpu / row.sent as f64,
            100.0 * row.fake_cpu / row.wall,
        );
    }
}
