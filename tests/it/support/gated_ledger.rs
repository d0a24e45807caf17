//! A ledger that holds one write back, to force one interleaving of parallel appliers exactly
//! (no sleeps, no randomness): the first `put_raw` of a chosen entity stops before it reaches
//! the wrapped ledger, tells the test it got there, and waits until the test releases it.
//! Every other operation goes straight through.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use seedwatch::ledger::{Expect, Ledger, LedgerError, RawEntity, Scan, Version};
use tokio::sync::oneshot;

/// The ledger side of the gate: used up by the first write it stops.
struct Gate {
    reached: oneshot::Sender<()>,
    release: oneshot::Receiver<()>,
}

/// The test side of the gate.
pub struct GateHandle {
    /// Resolves when the held write has reached the gate; an error means the gate was disarmed
    /// (or the ledger dropped) before any write reached it.
    pub reached: oneshot::Receiver<()>,
    /// Send (or drop) to let the held write through.
    pub release: oneshot::Sender<()>,
}

pub struct GatedLedger {
    inner: Arc<dyn Ledger>,
    partition: String,
    row: String,
    gate: Mutex<Option<Gate>>,
}

impl GatedLedger {
    /// Holds back the first write of the entity at (`partition`, `row`).
    pub fn new(inner: Arc<dyn Ledger>, (partition, row): (String, String)) -> (Arc<GatedLedger>, GateHandle) {
        let (reached_tx, reached_rx) = oneshot::channel();
        let (release_tx, release_rx) = oneshot::channel();
        let ledger = GatedLedger {
            inner,
            partition,
            row,
            gate: Mutex::new(Some(Gate {
                reached: reached_tx,
                release: release_rx,
            })),
        };
        (
            Arc::new(ledger),
            GateHandle {
                reached: reached_rx,
                release: release_tx,
            },
        )
    }

    /// Removes the gate if no write has reached it yet, so whoever waits for `reached` learns
    /// that none will (instead of waiting for ever).
    pub fn disarm(&self) {
        self.gate.lock().unwrap().take();
    }
}

#[async_trait]
impl Ledger for GatedLedger {
    fn describe(&self) -> String {
        format!("gated {}", self.inner.describe())
    }
    async fn get_raw(&self, partition: &str, row: &str) -> Result<Option<(String, Version)>, LedgerError> {
        self.inner.get_raw(partition, row).await
    }
    async fn put_raw(&self, partition: &str, row: &str, data: &str, expect: &Expect) -> Result<Version, LedgerError> {
        let gate = if partition == self.partition && row == self.row {
            self.gate.lock().unwrap().take()
        } else {
            None
        };
        if let Some(gate) = gate {
            let _ = gate.reached.send(());
            // A dropped sender releases the write too: the test is over either way.
            let _ = gate.release.await;
        }
        self.inner.put_raw(partition, row, data, expect).await
    }
    async fn delete_raw(&self, partition: &str, row: &str, version: Option<&Version>) -> Result<(), LedgerError> {
        self.inner.delete_raw(partition, row, version).await
    }
    async fn scan_raw(&self, scan: &Scan) -> Result<Vec<RawEntity>, LedgerError> {
        self.inner.scan_raw(scan).await
    }
}
