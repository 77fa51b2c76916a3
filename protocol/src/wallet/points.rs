//! Points (积分) in yearly lots that expire.

use super::*;

impl Wallet {
    /// Points earned at `at` go to the lot of `year`. Zero points write nothing.
    pub fn earn_points(
        &mut self,
        at: &StoreId,
        year: i32,
        points: u64,
    ) -> Result<Vec<RightsOp>, WalletError> {
        if points == 0 {
            return Ok(Vec::new());
        }
        Ok(vec![self.give(at, &Counter::Points { year }, points)?])
    }

    pub(super) fn lots(&self, of: impl Fn(&Rights) -> u64) -> Vec<(i32, u64)> {
        self.counters
            .iter()
            .filter_map(|(c, r)| match c {
                Counter::Points { year } => Some((*year, of(r))),
                _ => None,
            })
            .collect()
    }

    /// Points that can still be spent on `today`, chain-wide.
    pub fn points_live(&self, today: NaiveDate, policy: &PointsPolicy) -> u64 {
        self.lots(Rights::balance)
            .iter()
            .filter(|(year, _)| policy.lot_alive(*year, today))
            .map(|(_, units)| units)
            .sum()
    }

    /// Points spent (redeemed or deducted) at `at`, oldest live lot first.
    pub fn spend_points(
        &mut self,
        at: &StoreId,
        points: u64,
        today: NaiveDate,
        policy: &PointsPolicy,
    ) -> Result<Vec<RightsOp>, WalletError> {
        let taken =
            match policy.take_oldest_first(&self.lots(|r| self.spendable(r, at)), points, today) {
                Ok(taken) => taken,
                Err(WalletError::Insufficient { .. }) => {
                    let whole =
                        policy.take_oldest_first(&self.lots(Rights::balance), points, today)?;
                    let wants = whole
                        .into_iter()
                        .map(|(year, want)| {
                            let counter = Counter::Points { year };
                            let short = want.saturating_sub(self.held(&counter, at));
                            (counter, short)
                        })
                        .filter(|(_, short)| *short > 0)
                        .collect();
                    return Err(WalletError::RightsElsewhere { wants });
                }
                Err(e) => return Err(e),
            };
        let mut next = self.clone();
        let mut ops = Vec::new();
        for (year, units) in taken {
            let counter = Counter::Points { year };
            let change = next.rights(&counter).debit(at, units)?;
            ops.push(Self::op(&counter, change));
        }
        *self = next;
        Ok(ops)
    }
}

/// When points expire: those earned in a year are good until the end of a later year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointsPolicy {
    /// `Some(1)`: points earned in 2026 expire at the end of 2027. `None`: never.
    pub keep_years: Option<u16>,
}

impl Default for PointsPolicy {
    fn default() -> Self {
        Self {
            keep_years: Some(1),
        }
    }
}

impl PointsPolicy {
    /// The last day points earned in `year` can be spent.
    pub fn last_day(&self, year: i32) -> Option<NaiveDate> {
        let keep = self.keep_years?;
        NaiveDate::from_ymd_opt(year + i32::from(keep), 12, 31)
    }

    pub fn lot_alive(&self, year: i32, today: NaiveDate) -> bool {
        self.last_day(year).is_none_or(|last| today <= last)
    }

    /// Takes `wanted` points from the live lots held, oldest first. `held` is `(year, points)`.
    pub fn take_oldest_first(
        &self,
        held: &[(i32, u64)],
        wanted: u64,
        today: NaiveDate,
    ) -> Result<Vec<(i32, u64)>, WalletError> {
        if wanted == 0 {
            return Err(WalletError::NotPositive);
        }
        let mut live: Vec<(i32, u64)> = held
            .iter()
            .copied()
            .filter(|(year, units)| *units > 0 && self.lot_alive(*year, today))
            .collect();
        live.sort();
        let available: u64 = live.iter().map(|(_, u)| *u).sum();
        if available < wanted {
            return Err(WalletError::Insufficient {
                available,
                wanted,
                wants: Vec::new(),
            });
        }
        let mut left = wanted;
        let mut taken = Vec::new();
        for (year, units) in live {
            if left == 0 {
                break;
            }
            let take = units.min(left);
            taken.push((year, take));
            left -= take;
        }
        Ok(taken)
    }
}

/// The lot points earned on `date` go to.
pub fn lot_year(date: NaiveDate) -> i32 {
    date.year()
}
