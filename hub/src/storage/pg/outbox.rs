//! 消息: the outbox on PostgreSQL (`notices`, `marketing_sent`): each notice with its delivery,
//! its state, queue and due time as columns so the sender's query is an index range. Counts by
//! state are read by the database (two hubs may share it).

use deadpool_postgres::GenericClient;

use super::{PgHubStore, bound, db, execute};
use crate::storage::*;

fn state_name(state: &DeliveryState) -> &'static str {
    match state {
        DeliveryState::Pending => "pending",
        DeliveryState::Sent => "sent",
        DeliveryState::Failed => "failed",
        DeliveryState::Suppressed => "suppressed",
    }
}

/// Queues `notices` in the transaction of `client`, those not queued already (the first of an
/// id in `notices` counts); how many were new.
pub(super) async fn queue_in(client: &impl GenericClient, notices: &[Notice]) -> Result<usize> {
    let mut seen = BTreeSet::new();
    let (mut ids, mut bodies, mut deliveries, mut queues, mut due, mut made) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for notice in notices {
        if !seen.insert(notice.id.as_str()) {
            continue;
        }
        let delivery = Delivery::due(notice.at_ms);
        ids.push(notice.id.clone());
        bodies.push(encode(notice));
        deliveries.push(encode(&delivery));
        queues.push(i16::from(queue(notice.purpose)));
        due.push(bound(delivery.next_ms));
        made.push(bound(notice.at_ms));
    }
    if ids.is_empty() {
        return Ok(0);
    }
    let new = execute(
        client,
        "INSERT INTO notices (id, notice, delivery, state, queue, next_ms, made_ms) \
         SELECT i, n, d, 'pending', q, t, m \
         FROM UNNEST($1::TEXT[], $2::BYTEA[], $3::BYTEA[], $4::SMALLINT[], $5::BIGINT[], \
         $6::BIGINT[]) AS u(i, n, d, q, t, m) ON CONFLICT (id) DO NOTHING",
        &[&ids, &bodies, &deliveries, &queues, &due, &made],
    )
    .await?;
    Ok(new as usize)
}

/// A notice as stored, with its delivery.
fn notice_of(row: &tokio_postgres::Row) -> Result<(Notice, Delivery)> {
    let id: &str = row.get(0);
    let at = format!("ob/m/{id}");
    let notice: Notice = decode(at.as_bytes(), row.get::<_, &[u8]>(1))?;
    let delivery = decode(at.as_bytes(), row.get::<_, &[u8]>(2))?;
    Ok((notice, delivery))
}

impl PgHubStore {
    pub(super) fn outbox_due(&self, now_ms: u64, limit: usize) -> Result<Vec<(Notice, Delivery)>> {
        let mut out = Vec::new();
        for queue in [0i16, 1] {
            let left = limit.saturating_sub(out.len());
            if left == 0 {
                break;
            }
            let rows = self.rows(
                "SELECT id, notice, delivery FROM notices \
                 WHERE state = 'pending' AND queue = $1 AND next_ms <= $2 \
                 ORDER BY next_ms, id COLLATE \"C\" LIMIT $3",
                vec![
                    Box::new(queue),
                    Box::new(bound(now_ms)),
                    Box::new(bound(left as u64)),
                ],
            )?;
            for row in &rows {
                out.push(notice_of(row)?);
            }
        }
        Ok(out)
    }

    pub(super) fn outbox_set(&self, id: &str, delivery: &Delivery) -> Result<()> {
        self.write(
            "UPDATE notices SET delivery = $2, state = $3, next_ms = $4 WHERE id = $1",
            vec![
                Box::new(id.to_owned()),
                Box::new(encode(delivery)),
                Box::new(state_name(&delivery.state)),
                Box::new(bound(delivery.next_ms)),
            ],
        )?;
        Ok(())
    }

    pub(super) fn outbox_latest(&self, limit: usize) -> Result<Vec<(Notice, Delivery)>> {
        let rows = self.rows(
            "SELECT id, notice, delivery FROM notices ORDER BY made_ms DESC, id COLLATE \"C\" DESC LIMIT $1",
            vec![Box::new(bound(limit as u64))],
        )?;
        rows.iter().map(notice_of).collect()
    }

    pub(super) fn outbox_counts(&self) -> Result<NoticeCounts> {
        let rows = self.rows("SELECT state, count(*) FROM notices GROUP BY state", vec![])?;
        let mut counts = NoticeCounts::default();
        for row in &rows {
            let n = super::unbig(row.get(1), "a count of notices")?;
            match row.get::<_, &str>(0) {
                "pending" => counts.pending = n,
                "sent" => counts.sent = n,
                "failed" => counts.failed = n,
                "suppressed" => counts.suppressed = n,
                other => return Err(HubStoreError::Damaged(format!("notice state {other}"))),
            }
        }
        Ok(counts)
    }

    pub(super) fn outbox_prune(&self, before_ms: u64, limit: usize) -> Result<usize> {
        self.check_running()?;
        // Days of marketing counts wholly before the cut-off (a day early: counts are by date).
        let day = chrono::DateTime::from_timestamp_millis(i64::try_from(before_ms).unwrap_or(0))
            .map(|t| t.date_naive() - chrono::TimeDelta::days(1));
        let (before, limit) = (bound(before_ms), bound(limit as u64));
        let held = self.lease();
        self.run(move |pool| async move {
            let mut client = pool.get().await.map_err(db)?;
            let tx = super::durable(&mut client, held.as_ref()).await?;
            let gone = execute(
                &tx,
                "DELETE FROM notices WHERE id IN (SELECT id FROM notices \
                 WHERE made_ms < $1 AND state <> 'pending' ORDER BY made_ms, id COLLATE \"C\" LIMIT $2)",
                &[&before, &limit],
            )
            .await?;
            if let Some(day) = day {
                execute(&tx, "DELETE FROM marketing_sent WHERE day < $1", &[&day]).await?;
            }
            tx.commit().await.map_err(db)?;
            Ok(gone as usize)
        })
    }

    pub(super) fn outbox_queue(&self, notices: &[Notice]) -> Result<usize> {
        self.check_running()?;
        let notices = notices.to_vec();
        let held = self.lease();
        self.run(move |pool| async move {
            let mut client = pool.get().await.map_err(db)?;
            let tx = super::durable(&mut client, held.as_ref()).await?;
            let new = queue_in(&tx, &notices).await?;
            tx.commit().await.map_err(db)?;
            Ok(new)
        })
    }

    pub(super) fn outbox_sent_on(&self, member: &MemberId, day: chrono::NaiveDate) -> Result<u32> {
        let rows = self.rows(
            "SELECT sent FROM marketing_sent WHERE day = $1 AND member_id = $2",
            vec![Box::new(day), Box::new(member.to_string())],
        )?;
        rows.first().map_or(Ok(0), |r| {
            let sent: i32 = r.get(0);
            u32::try_from(sent).map_err(|_| HubStoreError::Damaged(format!("sent {sent}")))
        })
    }

    pub(super) fn outbox_count_sent(
        &self,
        member: &MemberId,
        day: chrono::NaiveDate,
    ) -> Result<()> {
        self.write(
            "INSERT INTO marketing_sent (day, member_id, sent) VALUES ($1, $2, 1) \
             ON CONFLICT (day, member_id) DO UPDATE SET sent = marketing_sent.sent + 1",
            vec![Box::new(day), Box::new(member.to_string())],
        )?;
        Ok(())
    }
}
