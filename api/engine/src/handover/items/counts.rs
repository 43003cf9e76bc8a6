//! The job row's progress and counts by outcome, kept in step with its items: recounted
//! where a recount is cheap, shifted by exactly the rows a customer batch changed where
//! it is not, and brought in line with how requested handovers ended.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::handover_plan::TransferStatus;
use domain::values::TenantId;
use projections::on_pool;

use super::{Done, OutcomeCount, CUSTOMER, PLANNED, REQUESTED, ROWS_PER_INSERT, SCHEDULED};
use crate::db::Database;

/// Recounts the job row's progress and counts from its items. A run starts with it, so
/// the counts each batch shifts start from the truth whatever happened before.
pub async fn recount(db: &Database, tenant: &TenantId, job_id: &str) -> Result<(), sqlx::Error> {
    on_pool!(db, |pool| {
        let mut tx = pool.begin().await?;
        refresh_job!(tx, tenant.as_str(), job_id);
        tx.commit().await
    })
}

/// Items past their first state, and the counts as the job row stores them.
pub(super) fn outcomes_json(mut counts: Vec<(String, i64, String, i64)>) -> (i64, String) {
    // In byte order whatever the database's collation, so a recount and an adjustment
    // of the same counts give the same text.
    counts.sort();
    let done = counts
        .iter()
        .filter(|(_, _, code, _)| code != PLANNED && code != SCHEDULED)
        .map(|c| c.3)
        .sum();
    let outcomes: Vec<OutcomeCount> = counts
        .into_iter()
        .map(|(kind, status, code, count)| OutcomeCount {
            kind,
            status,
            code,
            count,
        })
        .collect();
    let json = serde_json::to_string(&outcomes).unwrap_or_else(|_| "[]".into());
    (done, json)
}

/// Records a batch's outcomes and the job's progress in one transaction. Customers move
/// only from `PLANNED`, so their counts change by exactly the rows updated, and the job
/// row is adjusted by that much rather than recounting 20,000 items after each batch of
/// 100; groups, a few batches a day, are recounted.
pub async fn record(
    db: &Database,
    tenant: &TenantId,
    job_id: &str,
    kind: &str,
    done: &[Done],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    // A group's transfer may be answered by WeCom before its batch is recorded here:
    // the answer stands, so only groups still waiting move.
    let moving = if kind == CUSTOMER {
        Moving::From(PLANNED)
    } else {
        Moving::FromAny(&[PLANNED, SCHEDULED])
    };
    update_outcomes(db, tenant, job_id, kind, done, moving, now)
        .await
        .map(|_| ())
}

/// Which items an update may move.
#[derive(Debug, Clone, Copy)]
enum Moving<'a> {
    /// Only those at this code; the job's counts shift by the rows moved.
    From(&'a str),
    /// Only those at one of these codes; the job is recounted.
    FromAny(&'a [&'a str]),
}

/// Sets each item's outcome and the job's counts in one transaction. With `from`, only
/// items still at that code change and the counts shift by the rows changed; without
/// it the job is recounted. Returns the rows changed.
/// WeCom answered for groups the job asked it to move: their items leave `SENT`.
/// Returns how many changed (an answer applied twice changes nothing).
pub async fn groups_answered(
    db: &Database,
    tenant: &TenantId,
    job_id: &str,
    done: &[Done],
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    // Still waiting when the answer came: the job records the batch after its calls
    // are written, and the outbox may answer first.
    update_outcomes(
        db,
        tenant,
        job_id,
        super::GROUP,
        done,
        Moving::FromAny(&[super::SENT, PLANNED, SCHEDULED]),
        now,
    )
    .await
}

async fn update_outcomes(
    db: &Database,
    tenant: &TenantId,
    job_id: &str,
    kind: &str,
    done: &[Done],
    moving: Moving<'_>,
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    // One statement per distinct outcome: a batch is usually all REQUESTED.
    let mut by_outcome: BTreeMap<(&str, u8), Vec<&str>> = BTreeMap::new();
    for d in done {
        by_outcome
            .entry((d.code.as_str(), d.status.code()))
            .or_default()
            .push(d.item_id.as_str());
    }
    on_pool!(db, |pool| {
        let mut tx = pool.begin().await?;
        lock_job!(tx, tenant.as_str(), job_id);
        let mut moved: Vec<((&str, u8), u64)> = Vec::new();
        for ((code, status), ids) in &by_outcome {
            // No `$n IS NULL OR code = $n`: the planner cannot use an optional
            // condition, and with it the update scanned the job's to-do index.
            let froms: &[&str] = match &moving {
                Moving::From(code) => std::slice::from_ref(code),
                Moving::FromAny(codes) => codes,
            };
            let from_placeholders: Vec<String> =
                (0..froms.len()).map(|i| format!("${}", i + 7)).collect();
            let only_from = format!("AND code IN ({}) ", from_placeholders.join(", "));
            let first = 7 + froms.len();
            let placeholders: Vec<String> =
                (0..ids.len()).map(|i| format!("${}", i + first)).collect();
            let sql = format!(
                "UPDATE handover_items SET code = $1, status = $2, updated_at = $3 \
                 WHERE tenant_id = $4 AND job_id = $5 AND kind = $6 {only_from}\
                 AND item_id IN ({})",
                placeholders.join(", ")
            );
            let mut q = sqlx::query(&sql)
                .bind(*code)
                .bind(i32::from(*status))
                .bind(now)
                .bind(tenant.as_str())
                .bind(job_id)
                .bind(kind);
            for from in froms {
                q = q.bind(*from);
            }
            for id in ids {
                q = q.bind(*id);
            }
            let n = q.execute(&mut *tx).await?.rows_affected();
            moved.push(((*code, *status), n));
        }
        if let Moving::From(from) = moving {
            let outcomes: String = sqlx::query_scalar(
                "SELECT outcomes FROM jobs WHERE tenant_id = $1 AND job_id = $2",
            )
            .bind(tenant.as_str())
            .bind(job_id)
            .fetch_one(&mut *tx)
            .await?;
            let (done, outcomes) = shift_counts(&outcomes, kind, from, &moved);
            sqlx::query(
                "UPDATE jobs SET progress_done = $3, outcomes = $4 \
                 WHERE tenant_id = $1 AND job_id = $2",
            )
            .bind(tenant.as_str())
            .bind(job_id)
            .bind(done)
            .bind(outcomes)
            .execute(&mut *tx)
            .await?;
        } else {
            refresh_job!(tx, tenant.as_str(), job_id);
        }
        tx.commit().await?;
        Ok(moved.iter().map(|(_, n)| n).sum())
    })
}

/// The job's progress and counts after `moved` items of `kind` went from code `from`
/// (waiting) to each outcome: what a recount would give, without the recount.
fn shift_counts(
    outcomes: &str,
    kind: &str,
    from: &str,
    moved: &[((&str, u8), u64)],
) -> (i64, String) {
    let mut counts: BTreeMap<(String, i64, String), i64> =
        serde_json::from_str::<Vec<OutcomeCount>>(outcomes)
            .unwrap_or_default()
            .into_iter()
            .map(|o| ((o.kind, o.status, o.code), o.count))
            .collect();
    let waiting = i64::from(TransferStatus::Waiting.code());
    for ((code, status), n) in moved {
        let n = i64::try_from(*n).unwrap_or(i64::MAX);
        *counts
            .entry((kind.to_string(), waiting, from.to_string()))
            .or_default() -= n;
        *counts
            .entry((kind.to_string(), i64::from(*status), code.to_string()))
            .or_default() += n;
    }
    let rows: Vec<(String, i64, String, i64)> = counts
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|((kind, status, code), n)| (kind, status, code, n))
        .collect();
    outcomes_json(rows)
}

/// Brings requested customers in line with how their handover ended (accepted, or
/// refused by the customer or for the successor's limit), as the reassignment view
/// knows it, and refreshes the counts of every job that changed. Returns how many
/// items changed.
///
/// Two steps rather than one `UPDATE .. FROM`: on tables filled since their last
/// ANALYZE both planners chose a nested loop over all requested items for that join,
/// seconds per tick that starved a running job. Here each requested item's handover is
/// looked up by primary key (a correlated subquery, which neither planner turns into a
/// join), so the cost follows the work in flight; the few concluded ones are then
/// updated by primary key.
pub async fn sync_outcomes(db: &Database, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    const CONCLUDED: &str = "SELECT tenant_id, job_id, item_id, outcome FROM \
        (SELECT r.tenant_id, r.job_id, r.item_id, \
           (SELECT h.status FROM rm_handover h WHERE h.tenant_id = r.tenant_id \
              AND h.customer_id = r.item_id AND h.handover_id = r.handover_id) AS outcome \
         FROM handover_items r WHERE r.code = 'REQUESTED') s \
        WHERE outcome IS NOT NULL AND outcome <> 'waiting'";
    let concluded: Vec<(String, String, String, String)> = on_pool!(db, |pool| {
        // Planned afresh each time: a plan cached while `rm_handover` was nearly empty
        // scanned it once per requested item after it filled (10 s a tick at 20,000).
        sqlx::query_as(CONCLUDED)
            .persistent(false)
            .fetch_all(pool)
            .await
    })?;
    if concluded.is_empty() {
        return Ok(0);
    }
    let mut by_job: BTreeMap<(String, String), Vec<Done>> = BTreeMap::new();
    for (tenant, job_id, item_id, outcome) in concluded {
        let (code, status) = concluded_as(&outcome);
        by_job.entry((tenant, job_id)).or_default().push(Done {
            item_id,
            code,
            status,
        });
    }
    let mut changed = 0;
    for ((tenant, job_id), done) in by_job {
        let Ok(tenant) = TenantId::parse(tenant.as_str()) else {
            continue;
        };
        for chunk in done.chunks(ROWS_PER_INSERT) {
            changed += update_outcomes(
                db,
                &tenant,
                &job_id,
                CUSTOMER,
                chunk,
                Moving::From(REQUESTED),
                now,
            )
            .await?;
        }
    }
    Ok(changed)
}

/// A concluded handover's status in the reassignment view as the job's item code and
/// WeCom's transfer status: `rejected_<errcode>` (WeCom would not start it) is
/// `WECOM_<errcode>` with no transfer on record.
fn concluded_as(outcome: &str) -> (String, TransferStatus) {
    match outcome {
        "accepted" => ("ACCEPTED".into(), TransferStatus::Accepted),
        "refused_customer" => ("REFUSED_CUSTOMER".into(), TransferStatus::Refused),
        "refused_limit" => ("REFUSED_LIMIT".into(), TransferStatus::SuccessorAtLimit),
        "refused_no_record" => ("NO_TRANSFER_RECORD".into(), TransferStatus::NoRecord),
        other => match other.strip_prefix("rejected_") {
            Some(errcode) => (format!("WECOM_{errcode}"), TransferStatus::NoRecord),
            None => (other.to_uppercase(), TransferStatus::NoRecord),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn shifting_a_batch_gives_what_a_recount_gives() {
        // Given 5 customers planned, 2 already requested, and 3 groups scheduled.
        let before = vec![
            ("customer".into(), 2, "PLANNED".into(), 5),
            ("customer".into(), 2, "REQUESTED".into(), 2),
            ("group".into(), 2, "SCHEDULED".into(), 3),
        ];
        let (_, stored) = outcomes_json(before);
        // When a batch requests 3 and one is refused for being in a handover already.
        let shifted = shift_counts(
            &stored,
            CUSTOMER,
            PLANNED,
            &[(("REQUESTED", 2), 3), (("HANDOVER_IN_FLIGHT", 2), 1)],
        );
        // Then the counts are those of a recount of the rows after the batch.
        let recount = outcomes_json(vec![
            ("customer".into(), 2, "PLANNED".into(), 1),
            ("customer".into(), 2, "REQUESTED".into(), 5),
            ("customer".into(), 2, "HANDOVER_IN_FLIGHT".into(), 1),
            ("group".into(), 2, "SCHEDULED".into(), 3),
        ]);
        assert_eq!(shifted, recount);
        assert_eq!(shifted.0, 6);
        // And a batch that empties PLANNED leaves no zero count behind.
        let (_, after) = shifted;
        let (_, last) = shift_counts(&after, CUSTOMER, PLANNED, &[(("REQUESTED", 2), 1)]);
        assert!(!last.contains("PLANNED"), "{last}");
    }

    #[test]
    fn done_counts_everything_past_planned_and_scheduled() {
        let (done, json) = outcomes_json(vec![
            ("customer".into(), 2, "PLANNED".into(), 7),
            ("customer".into(), 2, "REQUESTED".into(), 3),
            ("group".into(), 2, "SCHEDULED".into(), 4),
            ("group".into(), 1, "TRANSFERRED".into(), 5),
        ]);
        assert_eq!(done, 8);
        let back: Vec<OutcomeCount> = serde_json::from_str(&json).unwrap();
        assert_eq!(back.len(), 4);
        // Sorted by kind, then status, then code.
        assert_eq!(back[2].code, "TRANSFERRED");
    }

    #[test]
    fn a_handover_wecom_would_not_start_shows_its_errcode() {
        assert_eq!(
            concluded_as("rejected_40096"),
            ("WECOM_40096".to_string(), TransferStatus::NoRecord)
        );
        assert_eq!(
            concluded_as("refused_limit"),
            (
                "REFUSED_LIMIT".to_string(),
                TransferStatus::SuccessorAtLimit
            )
        );
        assert_eq!(concluded_as("accepted").1, TransferStatus::Accepted);
    }
}
