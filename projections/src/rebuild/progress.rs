//! A rebuild's progress: events done of the known total, rate and time left, per worker
//! on a terminal; a log line a few times a minute otherwise.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tokio::sync::watch;

use super::plan::Scope;
use crate::db::Database;

/// How often the log line comes when no terminal shows the bars.
const LOG_EVERY: Duration = Duration::from_secs(15);

/// The events a rebuild of `scope` will read, as far as the projections know (they
/// count every event they pass); 0 when nothing is known yet (a fresh load: the caller
/// then estimates from its sample).
pub async fn known_total(db: &Database, scope: &Scope) -> u64 {
    let counted: Result<Option<i64>, sqlx::Error> = crate::on_pool!(db, |pool| {
        match scope {
            Scope::All => {
                sqlx::query_scalar("SELECT max(events) FROM projection_checkpoints")
                    .fetch_one(pool)
                    .await
            }
            Scope::Tenant(t) => {
                sqlx::query_scalar(
                    "SELECT max(events) FROM projection_tenant_progress WHERE tenant_id = $1",
                )
                .bind(t)
                .fetch_one(pool)
                .await
            }
        }
    });
    counted.ok().flatten().unwrap_or(0).max(0) as u64
}

/// Shows the workers' counters until [`Progress::finish`].
pub struct Progress {
    stop: Option<watch::Sender<bool>>,
}

impl Progress {
    /// `counters[0]` is the pass over the small aggregates, the others one worker each.
    pub fn start(label: &str, total: u64, counters: Vec<Arc<AtomicU64>>, show: bool) -> Self {
        if !show {
            return Self { stop: None };
        }
        let (stop, mut stopped) = watch::channel(false);
        let label = label.to_string();
        let terminal = std::io::stderr().is_terminal();
        tokio::spawn(async move {
            let started = Instant::now();
            let bars = terminal.then(|| bars(&label, total, counters.len()));
            let mut last_log = Instant::now();
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
                let each: Vec<u64> = counters.iter().map(|c| c.load(Ordering::Relaxed)).collect();
                let done: u64 = each.iter().sum();
                if let Some((multi, overall, workers)) = &bars {
                    overall.set_position(done);
                    for (bar, n) in workers.iter().zip(&each) {
                        bar.set_position(*n);
                    }
                    let _ = multi;
                } else if last_log.elapsed() >= LOG_EVERY {
                    let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-9);
                    let eta =
                        (total > done && rate > 0.0).then(|| ((total - done) as f64 / rate) as u64);
                    tracing::info!(
                        label,
                        done,
                        total,
                        rate = rate as u64,
                        eta_seconds = eta,
                        "rebuilding"
                    );
                    last_log = Instant::now();
                }
            }
            if let Some((multi, overall, workers)) = bars {
                for bar in workers {
                    bar.finish_and_clear();
                }
                overall.finish_and_clear();
                let _ = multi.clear();
            }
        });
        Self { stop: Some(stop) }
    }

    pub fn finish(self) {
        if let Some(stop) = self.stop {
            let _ = stop.send(true);
        }
    }
}

fn bars(label: &str, total: u64, workers: usize) -> (MultiProgress, ProgressBar, Vec<ProgressBar>) {
    let multi = MultiProgress::new();
    let overall = multi.add(ProgressBar::new(total.max(1)));
    overall.set_style(
        ProgressStyle::with_template(
            "{msg} [{elapsed_precise}] {bar:30} {human_pos}/{human_len} events  {per_sec}  eta {eta}",
        )
        .expect("template"),
    );
    overall.set_message(format!("rebuilding {label}"));
    let style = ProgressStyle::with_template("  {msg:>22} {human_pos} events  {per_sec}")
        .expect("template");
    let workers = (0..workers)
        .map(|i| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(style.clone());
            bar.set_message(if i == 0 {
                "staff, groups, tags".to_string()
            } else {
                format!("customers, part {i}")
            });
            bar
        })
        .collect();
    (multi, overall, workers)
}
