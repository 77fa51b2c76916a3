//! Staff logins at the till (登录): the password or PIN headquarters set reached this store with
//! the staff directory, so a login works offline (`protocol::session` keeps the sessions). Once
//! any member of staff has a login, every API call but health and login needs a session, and
//! what it may do follows the role (`allowed`).

use protocol::StoreId;
use protocol::staff::StaffRole;

/// May a member of staff in `role`, working at `works_at` (`None`: every store), log in at
/// `here`?
pub fn may_log_in(role: StaffRole, works_at: Option<&StoreId>, here: &StoreId) -> bool {
    match works_at {
        Some(store) => store == here,
        None => matches!(role, StaffRole::HqAdmin | StaffRole::Auditor),
    }
}

/// What a role may call at a store. A cashier sells, looks up and tops up; returns, refunds,
/// points by hand, coupons, stock movements, transfers and reports are a manager's; an auditor
/// reads only; headquarters' admin does everything.
pub fn allowed(role: StaffRole, method: &str, path: &str) -> bool {
    let reading = method == "GET";
    match role {
        StaffRole::HqAdmin | StaffRole::Manager => true,
        StaffRole::Auditor => reading,
        StaffRole::Cashier => {
            let managers_only = path.starts_with("/api/v1/reports/")
                || path.starts_with("/api/v1/backups")
                || (!reading
                    && (path.ends_with("/returns")
                        || path.ends_with("/refunds")
                        || path.ends_with("/card/found")
                        || path.ends_with("/card/reissue")
                        || path.ends_with("/close")
                        || path.ends_with("/points")
                        || path.ends_with("/coupons")
                        || path.starts_with("/api/v1/stock/")
                        || path.starts_with("/api/v1/stocktakes")
                        || path.starts_with("/api/v1/transfers")))
                // Voiding a held order (挂单) throws a basket away: a manager's.
                || (method == "DELETE" && path.starts_with("/api/v1/orders/held"));
            !managers_only
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::StoreId;

    #[test]
    fn roles_decide_what_a_till_may_call() {
        use StaffRole::*;
        assert!(allowed(Cashier, "POST", "/api/v1/checkouts/items"));
        assert!(allowed(Cashier, "POST", "/api/v1/members/01J/top-ups"));
        assert!(!allowed(Cashier, "POST", "/api/v1/sales/S001-7/returns"));
        assert!(!allowed(Cashier, "POST", "/api/v1/members/01J/refunds"));
        assert!(allowed(Cashier, "POST", "/api/v1/members/01J/card/lost"));
        assert!(!allowed(
            Cashier,
            "POST",
            "/api/v1/members/01J/card/reissue"
        ));
        assert!(!allowed(Cashier, "POST", "/api/v1/members/01J/close"));
        assert!(!allowed(Cashier, "GET", "/api/v1/reports/sales"));
        assert!(!allowed(Cashier, "POST", "/api/v1/backups"));
        assert!(allowed(Manager, "POST", "/api/v1/backups"));
        assert!(allowed(Manager, "POST", "/api/v1/sales/S001-7/returns"));
        assert!(!allowed(Cashier, "DELETE", "/api/v1/orders/held/H-1"));
        assert!(allowed(Cashier, "POST", "/api/v1/orders/held"));
        assert!(allowed(Manager, "DELETE", "/api/v1/orders/held/H-1"));
        assert!(allowed(Auditor, "GET", "/api/v1/reports/sales"));
        assert!(!allowed(Auditor, "POST", "/api/v1/checkouts/quick"));
        let s001 = StoreId::parse("S001").unwrap();
        let s002 = StoreId::parse("S002").unwrap();
        assert!(may_log_in(Manager, Some(&s001), &s001));
        assert!(!may_log_in(Manager, Some(&s002), &s001));
        assert!(may_log_in(HqAdmin, None, &s001));
        assert!(!may_log_in(Cashier, None, &s001));
    }
}
