//! Spending rights held elsewhere: asking headquarters, waiting for the grant, and the chain's
//! offline overdraft when the rights are out of reach.

use protocol::{MemberId, StaffId, TxId};

use super::error::{ApiError, Code};

use crate::journal::Rejection;
use crate::journal::{Command, Control, Outcome, Reply, Request, WalletAction, WalletRequest};
use crate::uplink::Link;
use protocol::sync::{Ask, AskAnswer};
use protocol::wallet::WalletError;

use super::app::*;

/// Whether a payment refused with `code` may be lent by this store: its rights are out of
/// reach (headquarters offline, this store past its lease, or the holding store switched off)
/// and the chain lends at all.
pub(super) fn overdraft_applies(app: &AppState, code: Code) -> bool {
    let out_of_reach = match code {
        Code::RightsUnreachable => true,
        Code::RightsElsewhere | Code::OfflineTooLong => app.sync.borrow().link != Link::Online,
        _ => false,
    };
    // A view that cannot be read refuses the overdraft, like a policy of 0.
    out_of_reach
        && app
            .settings_now()
            .is_ok_and(|s| s.wallet.overdraft_member.0 > 0)
}

/// Pays off what members owe this store for offline overdrafts, once headquarters is back:
/// each is a wallet write like any other (rights fetched through the hub when held elsewhere).
pub async fn collect_overdrafts(app: &AppState) -> Result<u64, ApiError> {
    if app.sync.borrow().link != Link::Online {
        return Ok(0);
    }
    let here = &app.settings.store_id;
    let mut collected = 0;
    for (member, _) in app.views.receivables(here)? {
        // Lent and settled only grow, so a new debt gets a new key and a retry the same one.
        let wallet = app.views.wallet(&member)?;
        let (lent, settled) = wallet.owed.get(here).copied().unwrap_or_default();
        let key = TxId::derived(&[
            "collect",
            here.as_str(),
            &member.to_string(),
            &lent.to_string(),
            &settled.to_string(),
        ]);
        let request = Request {
            key: key.clone(),
            fingerprint: [0; 32],
            staff: StaffId::system(),
            body: WalletRequest {
                member_id: member,
                action: WalletAction::CollectOverdraft,
            },
        };
        match spend(app, Some(member), &key, || Command::Wallet(request.clone())).await {
            Ok(_) => collected += 1,
            Err(e) => tracing::info!(%member, error = %e.detail, "overdraft not collected yet"),
        }
    }
    Ok(collected)
}

/// How many times a command asks headquarters for rights before it gives up: a grant's rights
/// arrive and the command runs again, and by then a rebalance sent before the ask may have
/// moved another of its counters away (a reserve recalled from a card just sold), so it asks
/// once more for what it now lacks.
const ASK_ROUNDS: usize = 3;

/// Sends a command that may spend rights. When the member's balance covers it but the rights
/// are held elsewhere (or this store knows too little of the balance), asks headquarters to
/// move them here (one round trip; more when it has to recall them from another store), and
/// the command runs again with the same key as the rights arrive (in the same journal group,
/// so with the same flush).
pub(super) async fn spend(
    app: &AppState,
    member: Option<MemberId>,
    key: &TxId,
    command: impl Fn() -> Command,
) -> Result<Reply, ApiError> {
    if member.is_some()
        && let Some(reason) = &app.sync.borrow().refused
    {
        return Err(ApiError::new(Code::StoreFenced, reason));
    }
    let mut result = app.journal.send(command()).await;
    for round in 0..ASK_ROUNDS {
        result = match (result, member) {
            (Err(Rejection::Wallet(WalletError::RightsElsewhere { wants })), Some(member)) => {
                if let Some(paused) = app.rights_paused()? {
                    return Err(paused);
                }
                fetch_rights(app, key, member, wants, command()).await?
            }
            // Short as far as this store knows, which may only mean it has not heard yet of a
            // top-up at another store: while headquarters is reachable it is asked, and it
            // refuses when it knows of no more either. A member with money on their card is
            // not sent to pay cash at a store that is online.
            (
                Err(Rejection::Wallet(WalletError::Insufficient {
                    available,
                    wanted,
                    wants,
                })),
                Some(member),
            ) if round == 0
                && !wants.is_empty()
                && app.asks.is_some()
                && app.sync.borrow().link == Link::Online
                && app.rights_paused()?.is_none() =>
            {
                let short = |why: &str| {
                    ApiError::new(
                        Code::InsufficientBalance,
                        format!(
                            "{wanted} wanted but only {available} known at this store, and \
                             headquarters moved no more here: {why}"
                        ),
                    )
                };
                fetch_rights(app, key, member, wants, command())
                    .await
                    .map_err(|e| match e.code {
                        Code::RightsElsewhere => short(&e.detail),
                        _ => e,
                    })?
            }
            (result, _) => return Ok(result?),
        };
    }
    Ok(result?)
}

/// Asks headquarters for the rights `command` needs, and returns its result once it has run
/// with them (which may still be a refusal: the caller decides whether to ask again).
async fn fetch_rights(
    app: &AppState,
    key: &TxId,
    member: MemberId,
    wants: Vec<(protocol::wallet::Counter, u64)>,
    command: Command,
) -> Result<Result<Reply, Rejection>, ApiError> {
    let elsewhere = |why: &str| ApiError::new(Code::RightsElsewhere, why);
    let Some(asks) = &app.asks else {
        return Err(elsewhere(
            "the balance is held at other stores and this store has no hub",
        ));
    };
    if app.sync.borrow().link != Link::Online {
        return Err(elsewhere(
            "the balance is held at other stores and headquarters is not reachable",
        ));
    }
    // What this store holds now, read with its log's length, so rights headquarters has sent
    // that have not arrived yet count toward the ask.
    let counters = wants.iter().map(|(c, _)| c.clone()).collect();
    let holding = match app
        .journal
        .send(Control::Holding { member, counters })
        .await?
    {
        Reply {
            outcome: Outcome::Holding(holding),
            ..
        } => holding,
        _ => return Err(elsewhere("the journal did not say what this store holds")),
    };
    let ask = Ask {
        id: protocol::ask::ask_id(&app.settings.store_id, &member, key),
        member,
        wants,
        holding: Some(holding),
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    let (retried, result) = tokio::sync::oneshot::channel();
    asks.send((ask, reply, (command, retried)))
        .await
        .map_err(|_| elsewhere("the uplink has stopped"))?;
    let answer = tokio::time::timeout(RIGHTS_WAIT, answer).await;
    match answer {
        Ok(Ok(AskAnswer::Granted { .. })) => {
            // The command runs as the rights arrive. If they are late it is withdrawn, and the
            // journal answers either way: withdrawn, or the command's own result if it ran.
            let mut result = result;
            let late = "headquarters granted the rights but they did not arrive";
            match tokio::time::timeout(RIGHTS_WAIT, &mut result).await {
                Ok(Ok(result)) => return Ok(result),
                Ok(Err(_)) => return Err(elsewhere(late)),
                Err(_) => {}
            }
            let withdraw = Control::Withdraw { key: key.clone() };
            let _ = app.journal.send(withdraw).await;
            match tokio::time::timeout(RIGHTS_WAIT, result).await {
                Ok(Ok(result)) => Ok(result),
                Ok(Err(_)) => Err(elsewhere(late)),
                Err(_) => Err(ApiError::new(
                    Code::Unavailable,
                    "the payment's outcome is unknown: retry with the same Idempotency-Key",
                )),
            }
        }
        Ok(Ok(AskAnswer::Refused { reason })) => Err(ApiError::new(
            Code::RightsElsewhere,
            format!("headquarters could not move the rights here: {reason}"),
        )),
        Ok(Ok(AskAnswer::Unreachable { holders })) => Err(ApiError::new(
            Code::RightsUnreachable,
            protocol::sync::unreachable_reason(&holders),
        )),
        Ok(Err(_)) => Err(elsewhere("the link to headquarters dropped while asking")),
        Err(_) => Err(elsewhere("headquarters did not answer in time")),
    }
}
