//! Headquarters hub. For now it only knows how to verify a store's log chain; the QUIC sync
//! endpoint, the rights bank and the reports arrive with their issues (see ARCHITECTURE.md).

use protocol::StoreId;
use protocol::entry::{ChainError, ChainTip, Entry};

/// What headquarters knows of one store's log: where its verified chain ends.
#[derive(Debug, Clone)]
pub struct StoreLog {
    pub store: StoreId,
    pub tip: ChainTip,
}

impl StoreLog {
    pub fn new(store: StoreId) -> Self {
        Self {
            store,
            tip: ChainTip::GENESIS,
        }
    }

    /// Accepts a batch only if every entry is the store's own and extends its chain.
    pub fn accept(&mut self, batch: &[Entry]) -> Result<(), ChainError> {
        self.tip = self.tip.extend_all(&self.store, batch)?;
        Ok(())
    }
}
