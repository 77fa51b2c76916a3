//! Meeting a member this store does not follow yet (`crate::follow`): the till's lookups start
//! to follow them, and a stored-value payment waits until their wallet is whole here.

use protocol::MemberId;

use super::app::{AppState, RIGHTS_WAIT};
use super::error::{ApiError, Code};
use crate::follow::State;
use crate::journal::Control;
use crate::uplink::Link;

/// Starts to follow `member` if this store does not (a till looked them up): headquarters is
/// told and sends their history while the cashier rings up. Waits for nothing.
pub(super) async fn meet(app: &AppState, member: MemberId) -> Result<State, ApiError> {
    let state = app.views.follow_state(&member)?;
    if state == State::No && app.asks.is_some() {
        app.journal
            .send(Control::Follow {
                members: vec![member],
            })
            .await?;
    }
    Ok(state)
}

/// Returns once `member`'s wallet is whole here, so what a payment checks (the payment
/// password, its failures) is what every store wrote. Online that is one round trip to
/// headquarters the first time a store meets a member; offline such a payment is refused.
/// A store without a hub holds everything it will ever have.
pub(super) async fn ensure_whole(app: &AppState, member: MemberId) -> Result<(), ApiError> {
    whole(
        app,
        member,
        Code::MemberNotHere,
        "this store has not had the member's wallet from headquarters yet and headquarters \
         is not reachable: stored value cannot be paid with here until it is",
    )
    .await
}

/// Returns once `member`'s profile document is here and whole: a store that holds only their
/// listing (`protocol::listing`) — or a document from before listings that listings have
/// stood over since — can find them, sell to them and check their card, but edits their
/// profile or card only on top of the whole document, which their history brings.
pub(super) async fn ensure_profile(app: &AppState, member: MemberId) -> Result<(), ApiError> {
    if app.views.holds_profile(&member)? && app.views.follow_state(&member)? == State::Whole {
        return Ok(());
    }
    whole(
        app,
        member,
        Code::ProfileNotHere,
        "this store holds only the member's listing and headquarters is not reachable: \
         their profile and card can be changed here once it is (or at a store that holds it)",
    )
    .await
}

async fn whole(
    app: &AppState,
    member: MemberId,
    code: Code,
    offline: &str,
) -> Result<(), ApiError> {
    if app.asks.is_none() {
        return Ok(());
    }
    let mut changed = app.journal.follows();
    if meet(app, member).await? == State::Whole {
        return Ok(());
    }
    let not_here = |why: &str| ApiError::new(code, why);
    if app.sync.borrow().link != Link::Online {
        return Err(not_here(offline));
    }
    let deadline = tokio::time::Instant::now() + RIGHTS_WAIT;
    loop {
        if app.views.follow_state(&member)? == State::Whole {
            return Ok(());
        }
        match tokio::time::timeout_at(deadline, changed.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(ApiError::new(Code::Unavailable, "the journal stopped")),
            Err(_) => {
                return Err(not_here(
                    "headquarters did not send the member's history in time: retry (a \
                     payment can take another tender)",
                ));
            }
        }
    }
}
