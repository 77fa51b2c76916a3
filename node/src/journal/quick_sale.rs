//! 快速收银: a sale of one amount, without items.

use super::*;

impl Journal {
    pub(super) fn checkout(&mut self, r: Request<QuickSaleRequest>) -> Result<Outcome, Rejection> {
        let mut tier = None;
        if let Some(member) = &r.body.member_id {
            let view = self
                .member_view(member)?
                .ok_or(Rejection::MemberNotFound(*member))?;
            // 退卡: a closed membership earns and spends nothing (sell to them without it).
            if view.profile.card_status == protocol::member::CardStatus::Closed {
                return Err(Rejection::MembershipClosed(*member));
            }
            tier = Some(view.profile.tier);
        }
        let sale_id = SaleId::for_entry(&self.settings.store_id, self.tip.next_seq);
        let now_ms = (self.env.now_ms)();
        let today = self.settings.calendar.business_date(now_ms);
        let mut sale = r.body.price(
            sale_id.clone(),
            &self.settings.limits,
            &self.settings.earn_for(tier.as_deref()),
            today,
        )?;
        let here = self.settings.store_id.clone();
        let mut ops = Vec::new();
        if let Some(member) = sale.member_id {
            let mut wallet = self.wallet_of(&member)?;
            if let Tender::StoredValue { principal, .. } = sale.tender {
                let amount = units(principal)?;
                let rule = self.settings.wallet.bonus_use;
                wallet.require_free(&here, amount)?;
                let (paid, (p, b), owed) = match wallet.pay(&here, amount, rule) {
                    Ok((paid, split)) => (paid, split, 0),
                    Err(WalletError::RightsElsewhere { wants }) if r.body.offline_overdraft => {
                        self.overdraft(&mut wallet, amount, wants)?
                    }
                    Err(e) => return Err(e.into()),
                };
                sale.tender = Tender::StoredValue {
                    principal: fen(p),
                    bonus: fen(b),
                    overdraft: fen(owed),
                };
                ops.extend(paid);
            }
            let earned = units(Fen(sale.points_earned.0))?;
            ops.extend(wallet.earn_points(&here, lot_year(today), earned)?);
        }
        let member = sale.member_id;
        let this = (sale.amount.0, sale.points_earned.0);
        let mut payloads = vec![(Payload::Sale { sale, ops }, today)];
        if let (Some(m), Some(tier)) = (&member, &tier) {
            let rise = self.tier_rise(m, tier, now_ms, this);
            payloads.extend(rise.into_iter().map(|p| (p, today)));
        }
        let when = (self.settings.wallet.points, today);
        self.append_all(&r, now_ms, payloads, |ov| {
            sale_outcome(ov, &sale_id, member, &here, when)
        })
    }
}
