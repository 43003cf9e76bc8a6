//! An open-loop load generator for GraphQL over HTTP (issue 19): requests leave at a fixed
//! arrival rate whether or not earlier ones have been answered, as guides' phones do at
//! store opening, and each latency is counted from the moment its request was due, not
//! from when it was sent. A closed loop (wrk's connections) waits for a slow answer before
//! sending the next request, so it cannot see the queue a slow answer builds: the
//! coordinated omission wrk2 and `oha --latency-correction` correct the same way.
//!
//! Why not oha itself: a step here rotates POST bodies and tokens (a guide's customers),
//! and oha sends one body; PostGraphile 4, the peer, takes no GET queries, so rotating
//! URLs would not reach it.
//!
//!   open_loop --url http://127.0.0.1:18777/graphql --requests portrait.jsonl \
//!             --rates 1000,2000,3000,4000 --seconds 30 --pid <server pid> --label scrm
//!
//! `--requests` holds one request per line: `{"authorization": "Bearer ..", "body": {..}}`,
//! sent in turn. Each step prints one JSON line: the asked and achieved rate, p50, p99,
//! p99.9 and max in ms, errors (a non-2xx status, an `errors` member, or no answer within
//! 10 s), how many of them were answered 503 "busy" at once (a server past its
//! connection limit), the server's peak RSS and its CPU, PostgreSQL's CPU (all its processes) and
//! the generator's own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::sync::Semaphore;

/// Requests waiting for an answer at once, beyond which new ones queue in the generator
/// (their wait still counts). Far above what a healthy server holds at these rates.
const IN_FLIGHT: usize = 2048;
const TIMEOUT: Duration = Duration::from_secs(10);

struct Args {
    url: String,
    requests: String,
    rates: Vec<u64>,
    seconds: u64,
    warmup: u64,
    pid: Option<u32>,
    label: String,
    /// Stop at the first step the server cannot keep up with.
    stop_when_behind: bool,
}

fn args() -> anyhow::Result<Args> {
    let mut map: HashMap<String, String> = HashMap::new();
    let mut it = std::env::args().skip(1);
    let mut stop_when_behind = false;
    while let Some(key) = it.next() {
        if key == "--stop-when-behind" {
            stop_when_behind = true;
            continue;
        }
        let Some(name) = key.strip_prefix("--") else {
            bail!("unexpected argument {key}");
        };
        let value = it.next().with_context(|| format!("{key} needs a value"))?;
        map.insert(name.to_string(), value);
    }
    let take = |name: &str| map.get(name).cloned();
    Ok(Args {
        url: take("url").context("--url is required")?,
        requests: take("requests").context("--requests is required")?,
        rates: take("rates")
            .unwrap_or_else(|| "1000,2000,3000,4000".into())
            .split(',')
            .map(|r| r.trim().parse().context("--rates are requests per second"))
            .collect::<anyhow::Result<_>>()?,
        seconds: take("seconds").map_or(Ok(30), |s| s.parse())?,
        warmup: take("warmup").map_or(Ok(3), |s| s.parse())?,
        pid: take("pid").map(|p| p.parse()).transpose()?,
        label: take("label").unwrap_or_else(|| "server".into()),
        stop_when_behind,
    })
}

struct Request {
    authorization: Option<String>,
    body: String,
}

fn load(path: &str) -> anyhow::Result<Vec<Request>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let mut requests = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).context("a request line")?;
        requests.push(Request {
            authorization: v["authorization"].as_str().map(str::to_string),
            body: v["body"].to_string(),
        });
    }
    if requests.is_empty() {
        bail!("{path} holds no requests");
    }
    Ok(requests)
}

/// CPU seconds a process has used (user + system), from /proc.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command may hold spaces; the fields after its closing parenthesis do not.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / clock_ticks())
}

fn clock_ticks() -> f64 {
    // sysconf(_SC_CLK_TCK) is 100 on every Linux this runs on.
    100.0
}

fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// CPU seconds of each PostgreSQL process (the backends serving the server, the
/// walwriter, the checkpointer), by pid.
fn postgres_cpu() -> HashMap<u32, f64> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .filter_map(|pid| Some((pid, cpu_seconds(pid)?)))
        .collect()
}

/// PostgreSQL's CPU seconds between two readings: processes that started in between count
/// whole, those that ended are lost (the server's pool keeps its backends).
fn postgres_cpu_between(before: &HashMap<u32, f64>, after: &HashMap<u32, f64>) -> f64 {
    after
        .iter()
        .map(|(pid, cpu)| cpu - before.get(pid).copied().unwrap_or(0.0))
        .sum()
}

struct Outcome {
    latencies_us: Vec<u64>,
    errors: u64,
    busy: u64,
    first_error: Option<String>,
}

async fn send(client: &reqwest::Client, url: &str, request: &Request) -> Result<(), String> {
    let mut builder = client
        .post(url)
        .header("content-type", "application/json")
        .body(request.body.clone());
    if let Some(auth) = &request.authorization {
        builder = builder.header("authorization", auth);
    }
    let response = builder.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let text = response.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!(
            "{status}: {}",
            text.chars().take(200).collect::<String>()
        ));
    }
    if text.contains("\"errors\"") || !text.starts_with("{\"data\"") {
        return Err(text.chars().take(200).collect());
    }
    Ok(())
}

/// Sends `rate` requests a second for `seconds`, each due at its own instant.
async fn step(
    client: &reqwest::Client,
    url: &Arc<str>,
    requests: &Arc<Vec<Request>>,
    next: &AtomicU64,
    rate: u64,
    seconds: u64,
) -> Outcome {
    let total = rate * seconds;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let gate = Arc::new(Semaphore::new(IN_FLIGHT));
    let start = Instant::now() + Duration::from_millis(5);
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let due = start + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let (client, url, requests, gate) =
            (client.clone(), url.clone(), requests.clone(), gate.clone());
        let index = next.fetch_add(1, Ordering::Relaxed) as usize % requests.len();
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.expect("gate open");
            let answer = tokio::time::timeout(TIMEOUT, send(&client, &url, &requests[index]))
                .await
                .unwrap_or_else(|_| Err("no answer within 10 s".into()));
            (due.elapsed(), answer)
        }));
    }
    let mut outcome = Outcome {
        latencies_us: Vec::with_capacity(total as usize),
        errors: 0,
        busy: 0,
        first_error: None,
    };
    for task in tasks {
        let (latency, answer) = task.await.expect("request task");
        outcome.latencies_us.push(latency.as_micros() as u64);
        if let Err(e) = answer {
            outcome.errors += 1;
            outcome.busy += u64::from(e.starts_with("503 "));
            outcome.first_error.get_or_insert(e);
        }
    }
    outcome
}

fn percentile_ms(sorted_us: &[u64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted_us.len() as f64).ceil() as usize;
    sorted_us[rank.clamp(1, sorted_us.len()) - 1] as f64 / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let requests = Arc::new(load(&args.requests)?);
    let url: Arc<str> = args.url.clone().into();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(IN_FLIGHT)
        .tcp_nodelay(true)
        .build()?;
    let next = AtomicU64::new(0);

    // A few seconds at the first rate open connections and warm the server's caches.
    if args.warmup > 0 {
        step(&client, &url, &requests, &next, args.rates[0], args.warmup).await;
    }
    for &rate in &args.rates {
        let server_cpu = args.pid.and_then(cpu_seconds);
        let own_cpu = cpu_seconds(std::process::id());
        let pg_cpu = postgres_cpu();
        let peak_rss = Arc::new(AtomicU64::new(0));
        let sampler = args.pid.map(|pid| {
            let peak = peak_rss.clone();
            tokio::spawn(async move {
                loop {
                    if let Some(mib) = rss_mib(pid) {
                        peak.fetch_max((mib * 10.0) as u64, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            })
        });
        let began = Instant::now();
        let mut outcome = step(&client, &url, &requests, &next, rate, args.seconds).await;
        let elapsed = began.elapsed().as_secs_f64();
        if let Some(s) = sampler {
            s.abort();
        }
        let server_cores = match (server_cpu, args.pid.and_then(cpu_seconds)) {
            (Some(a), Some(b)) => (b - a) / elapsed,
            _ => f64::NAN,
        };
        // The generator shares the machine: its own CPU says how much it took.
        let generator_cores = match (own_cpu, cpu_seconds(std::process::id())) {
            (Some(a), Some(b)) => (b - a) / elapsed,
            _ => f64::NAN,
        };
        let pg_cores = postgres_cpu_between(&pg_cpu, &postgres_cpu()) / elapsed;
        outcome.latencies_us.sort_unstable();
        let sent = outcome.latencies_us.len();
        let ok = sent as u64 - outcome.errors;
        // Achieved: answered requests over the time from the first due instant to the last
        // answer, so a server that falls behind shows a rate below the asked one.
        let achieved = ok as f64 / elapsed;
        let line = serde_json::json!({
            "label": args.label,
            "rate": rate,
            "achieved": (achieved * 10.0).round() / 10.0,
            "requests": sent,
            "errors": outcome.errors,
            "busy": outcome.busy,
            "p50_ms": percentile_ms(&outcome.latencies_us, 50.0),
            "p99_ms": percentile_ms(&outcome.latencies_us, 99.0),
            "p999_ms": percentile_ms(&outcome.latencies_us, 99.9),
            "max_ms": percentile_ms(&outcome.latencies_us, 100.0),
            "server_rss_mib": peak_rss.load(Ordering::Relaxed) as f64 / 10.0,
            "server_cores": (server_cores * 100.0).round() / 100.0,
            "postgres_cores": (pg_cores * 100.0).round() / 100.0,
            "generator_cores": (generator_cores * 100.0).round() / 100.0,
            "first_error": outcome.first_error,
        });
        println!("{line}");
        let behind = achieved < rate as f64 * 0.95 || outcome.errors > 0;
        if args.stop_when_behind && behind {
            break;
        }
        // The queue of a step the server could not keep up with drains before the next.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Ok(())
}
