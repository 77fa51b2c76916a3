//! 离线权益期限: how long a store cut off from headquarters may go on spending the rights it
//! holds, and so how soon headquarters may fence it and take those rights back.
//!
//! A store that has heard nothing from headquarters for longer than its lease stops spending
//! member rights (stored value, points, card uses, coupons, return tokens) by itself; cash
//! sales, top-ups and points earned go on, and a stored-value payment falls back to the chain's
//! offline overdraft, a receivable within caps that no fence takes back. Headquarters may fence a
//! store only once the store's lease has run out, counted from the moment headquarters last
//! had a link to it, plus a margin. Both ends count a duration on their own clock from an event
//! the store cannot see later than headquarters does (the store cannot hear headquarters after
//! the link is gone), so clock offsets between them do not matter; only a store whose clock
//! runs slow by more than the margin over the lease, or whose lease is configured longer than
//! headquarters', could still spend after the fence. What it spends then is not lost or
//! hidden either: headquarters takes the store's entries in after the fence, and what was spent
//! twice is a receivable (`escrow`'s deficit, the wallet's `overspent_by`) with an alert.

/// The lease both ends use unless configured otherwise: a day. A chain whose stores are often
/// offline for longer lets them rely on the offline overdraft after that.
pub const DEFAULT_LEASE_MS: u64 = 24 * 60 * 60 * 1000;

/// Headquarters' side of the lease: how long stores spend offline, and what it adds before a
/// hold may fence one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FenceRule {
    /// The stores' lease (every store's must be at most this).
    pub lease_ms: u64,
    /// Added to the lease: covers a store that heard headquarters a moment after headquarters
    /// last heard it, and clocks that run at slightly different rates.
    pub margin_ms: u64,
    /// The shortest hold, even for a store gone quiet long ago: time for an operator to change
    /// their mind and for a store on its way back to reconnect.
    pub hold_min_ms: u64,
}

impl Default for FenceRule {
    fn default() -> Self {
        Self::with_lease(DEFAULT_LEASE_MS)
    }
}

impl FenceRule {
    pub fn with_lease(lease_ms: u64) -> Self {
        Self {
            lease_ms,
            margin_ms: 60_000,
            hold_min_ms: 60_000,
        }
    }

    /// The earliest moment headquarters may fence a store it last had a link to at
    /// `link_lost_ms` (its own clock), asked at `now_ms`.
    pub fn earliest_fence(&self, link_lost_ms: u64, now_ms: u64) -> u64 {
        self.lease_out(link_lost_ms)
            .max(now_ms.saturating_add(self.hold_min_ms))
    }

    /// When a store headquarters last had a link to at `link_lost_ms` has surely stopped
    /// spending: its lease plus the margin. No hold is posted before.
    pub fn lease_out(&self, link_lost_ms: u64) -> u64 {
        link_lost_ms
            .saturating_add(self.lease_ms)
            .saturating_add(self.margin_ms)
    }
}

/// Whether a store that last heard headquarters at `last_heard_ms` (its own clock) must stop
/// spending rights at `now_ms`. A store that never heard headquarters counts from the moment
/// it started keeping count.
pub fn expired(lease_ms: u64, last_heard_ms: u64, now_ms: u64) -> bool {
    now_ms.saturating_sub(last_heard_ms) > lease_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_stops_spending_before_headquarters_may_fence_it() {
        let rule = FenceRule::with_lease(10_000);
        // The store last heard headquarters at 1_000 by its clock; headquarters lost the link
        // at 1_500 by its own (it cannot lose it before the store's last hearing).
        let fence_at = rule.earliest_fence(1_500, 2_000);
        assert_eq!(fence_at, 1_500 + 10_000 + rule.margin_ms);
        assert!(!expired(rule.lease_ms, 1_000, 11_000));
        assert!(expired(rule.lease_ms, 1_000, 11_001));
        assert!(fence_at > 11_001);
        // A store quiet for a week may be fenced after the shortest hold, not at once.
        let week = 7 * 24 * 3_600_000;
        assert_eq!(rule.earliest_fence(0, week), week + rule.hold_min_ms);
    }
}
