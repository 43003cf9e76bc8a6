//! The first import's benchmark (issue 16): a fresh PostgreSQL database, the real
//! server, and a fake WeCom generating a corp of `--staff` guides and `--customers`
//! customers page by page; prints the time, the rates and the peak memory.
//!
//! ```sh
//! cargo run --release -p scrm-tests --example wecom_import_bench -- \
//!     --staff 1000 --customers 1000000
//! ```
//!
//! The fake, the server, its projector and the job share this process (and its peak
//! RSS) and the machine's cores with PostgreSQL.

use std::time::{Duration, Instant};

use harness::fake_wecom::{Corp, FakeWecom};
use harness::live::TestApi;
use harness::wecom_import::{configure, finished, start, CORP};
use harness::TestDb;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.replace('_', "").parse().expect("a number"))
        .unwrap_or(default)
}

/// The process's peak resident memory (`VmHWM`), in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let corp = Corp {
        staff: arg("--staff", 1_000),
        customers: arg("--customers", 1_000_000),
        shared_every: arg("--shared-every", 10),
        groups: arg("--groups", 1_000),
        members_per_group: arg("--members-per-group", 20),
    };
    println!(
        "corp: {} staff, {} customers, {} relations, {} groups",
        corp.staff,
        corp.customers,
        corp.total_relations(),
        corp.groups
    );
    let db = TestDb::postgres().await;
    let fake = FakeWecom::start(CORP).await;
    fake.set_corp(corp);
    let api = TestApi::start(&db).await;
    configure(&api, &fake).await;
    let rss_before = peak_rss_mib();
    let started = Instant::now();
    let id = start(&api).await;
    let mut last = Instant::now();
    let done = finished(
        &api,
        &id,
        Duration::from_secs(6 * 3600),
        Duration::from_secs(1),
        |job| {
            if last.elapsed() >= Duration::from_secs(30) {
                last = Instant::now();
                println!(
                    "{:>6.0} s  {}/{} staff  eta {} s  {}  peak RSS {:.0} MiB",
                    started.elapsed().as_secs_f64(),
                    job["progressDone"],
                    job["progressTotal"],
                    job["etaSeconds"],
                    job["wecomImport"],
                    peak_rss_mib()
                );
            }
        },
    )
    .await;
    let seconds = started.elapsed().as_secs_f64();
    let import = &done["wecomImport"];
    let relations = import["relationsImported"].as_f64().unwrap_or(0.0);
    let events = import["events"].as_f64().unwrap_or(0.0);
    println!("job: {done}");
    println!(
        "imported {} customers ({relations} relations, {events} relation events, {} groups) \
         in {seconds:.1} s",
        corp.customers, import["groups"]
    );
    println!(
        "rate: {:.0} customers/s, {:.0} relations/s, {:.0} events/s",
        corp.customers as f64 / seconds,
        relations / seconds,
        events / seconds
    );
    println!(
        "peak RSS: {:.0} MiB (before the import: {rss_before:.0} MiB)",
        peak_rss_mib()
    );
    api.stop().await;
}
