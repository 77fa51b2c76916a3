//! 动态会员码's replay guard: a code a till has taken once finds no one here again, so a
//! screenshot passed on within its two minutes is refused at this store. Kept in memory — a
//! code is good for two minutes at most, so what a restart forgets would soon be refused as
//! expired anyway.

use std::collections::HashSet;
use std::sync::Mutex;

use protocol::MemberId;

#[derive(Default)]
pub struct UsedCodes {
    taken: Mutex<HashSet<(MemberId, u64)>>,
}

impl UsedCodes {
    /// Takes the code of `member` for time step `step`; false if it was taken before. Steps
    /// two or more before `now_step` are forgotten (their codes are refused as expired).
    pub fn take(&self, member: MemberId, step: u64, now_step: u64) -> bool {
        let mut taken = self.taken.lock().expect("used codes lock");
        taken.retain(|(_, s)| s + 2 > now_step);
        taken.insert((member, step))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_taken_once_and_old_steps_are_forgotten() {
        let used = UsedCodes::default();
        let m = MemberId::mint(1, 1);
        assert!(used.take(m, 10, 10));
        assert!(!used.take(m, 10, 11), "the same code again");
        assert!(used.take(m, 11, 11), "the next minute's code");
        assert!(used.take(MemberId::mint(1, 2), 11, 11), "another member's");
        used.take(m, 13, 13);
        assert_eq!(
            used.taken.lock().unwrap().len(),
            1,
            "steps 10 and 11 forgotten"
        );
    }
}
