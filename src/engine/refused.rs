//! Seeds ASM refused, in front of ASM: an add refused within
//! [`crate::ledger::refused::RETRY_AFTER`] is answered from the ledger without sending it.
//! [`RememberRefusals`] wraps an [`AsmApi`] so the full reconcile gets this without knowing of
//! the ledger; the incremental apply calls [`add_remembering`] itself.

use async_trait::async_trait;

use crate::adapters::asm::{AddOutcome, AsmApi, AsmError, AsmSeed, DeleteOutcome};
use crate::domain::clock::Clock;
use crate::domain::seed::Seed;
use crate::ledger::Ledger;
use crate::ledger::refused::{RefusedSeed, refused_recently, remember};

/// An [`AsmApi`] that answers an add refused within [`crate::ledger::refused::RETRY_AFTER`]
/// from the ledger, without sending it, and records each new refusal. A ledger error never
/// fails the add: it is logged, and the seed is sent as if nothing were remembered.
pub(crate) struct RememberRefusals<'a> {
    pub inner: &'a dyn AsmApi,
    pub ledger: &'a dyn Ledger,
    pub clock: &'a dyn Clock,
}

#[async_trait]
impl AsmApi for RememberRefusals<'_> {
    async fn check_auth(&self) -> Result<(), AsmError> {
        self.inner.check_auth().await
    }

    async fn check_scan(&self) -> Result<(), AsmError> {
        self.inner.check_scan().await
    }

    async fn list_seeds(&self) -> Result<Vec<AsmSeed>, AsmError> {
        self.inner.list_seeds().await
    }

    async fn add_seed(&self, seed: &Seed, tags: &[String]) -> Result<AddOutcome, AsmError> {
        add_remembering(self.inner, self.ledger, self.clock.now_ms(), seed, tags).await
    }

    async fn delete_seed(&self, seed_id: &str) -> Result<DeleteOutcome, AsmError> {
        self.inner.delete_seed(seed_id).await
    }
}

/// Adds `seed` unless a refusal of it still holds; records a new refusal.
pub(crate) async fn add_remembering(
    asm: &dyn AsmApi,
    ledger: &dyn Ledger,
    now_ms: i64,
    seed: &Seed,
    tags: &[String],
) -> Result<AddOutcome, AsmError> {
    match refused_recently(ledger, seed, now_ms).await {
        Ok(Some(refused)) => {
            tracing::debug!(seed = %seed, code = %refused.code, "refused by ASM earlier: not sent again yet");
            return Ok(AddOutcome::Rejected {
                code: refused.code.clone(),
                message: refused.answer_message(),
            });
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(seed = %seed, error = %e, "refused seeds unreadable: sending the seed"),
    }
    let outcome = asm.add_seed(seed, tags).await?;
    if let AddOutcome::Rejected { code, message } = &outcome {
        let record = RefusedSeed {
            name: seed.name().to_string(),
            kind: seed.kind(),
            code: code.clone(),
            message: message.clone(),
            refused_at_ms: now_ms,
        };
        if let Err(e) = remember(ledger, &record).await {
            tracing::warn!(seed = %seed, error = %e, "could not remember that ASM refused the seed");
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicI64, Ordering};

    use super::*;
    use crate::domain::seed::SeedKind;
    use crate::ledger::memory::MemoryLedger;
    use crate::ledger::refused::RETRY_AFTER;

    /// An ASM that refuses every range and counts the adds it is sent.
    #[derive(Default)]
    struct RangesRefused {
        sent: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl AsmApi for RangesRefused {
        async fn check_auth(&self) -> Result<(), AsmError> {
            Ok(())
        }
        async fn check_scan(&self) -> Result<(), AsmError> {
            Ok(())
        }
        async fn list_seeds(&self) -> Result<Vec<AsmSeed>, AsmError> {
            Ok(Vec::new())
        }
        async fn add_seed(&self, seed: &Seed, _tags: &[String]) -> Result<AddOutcome, AsmError> {
            self.sent.lock().unwrap().push(seed.name().to_string());
            Ok(match seed.kind() {
                SeedKind::IpRange => AddOutcome::Rejected {
                    code: "SEED_TYPE_NOT_IN_PLAN".into(),
                    message: "ranges are not in this plan".into(),
                },
                _ => AddOutcome::Added,
            })
        }
        async fn delete_seed(&self, _seed_id: &str) -> Result<DeleteOutcome, AsmError> {
            Ok(DeleteOutcome::Deleted)
        }
    }

    struct TestClock(AtomicI64);
    impl Clock for TestClock {
        fn now_ms(&self) -> i64 {
            self.0.load(Ordering::Relaxed)
        }
    }

    #[tokio::test]
    async fn a_refused_seed_is_sent_again_only_after_a_day() {
        let asm = RangesRefused::default();
        let ledger = MemoryLedger::new();
        let clock = TestClock(AtomicI64::new(1_000_000));
        let remembering = RememberRefusals {
            inner: &asm,
            ledger: &ledger,
            clock: &clock,
        };
        let range = Seed::from_range("20.61.32.0/28").unwrap();
        let host = Seed::from_host_value("www.contoso.com").unwrap();
        let tags = ["cloud-connector".to_string()];

        let first = remembering.add_seed(&range, &tags).await.unwrap();
        assert!(matches!(&first, AddOutcome::Rejected { code, .. } if code == "SEED_TYPE_NOT_IN_PLAN"));
        assert_eq!(remembering.add_seed(&host, &tags).await.unwrap(), AddOutcome::Added);

        // Within the day: answered from the ledger, not sent.
        clock.0.fetch_add(RETRY_AFTER.as_millis() as i64 - 1, Ordering::Relaxed);
        let again = remembering.add_seed(&range, &tags).await.unwrap();
        assert!(
            matches!(&again, AddOutcome::Rejected { code, message } if code == "SEED_TYPE_NOT_IN_PLAN" && message.contains("not sent again before")),
            "{again:?}"
        );
        assert_eq!(*asm.sent.lock().unwrap(), ["20.61.32.0/28", "www.contoso.com"]);

        // A day later: sent once more, and remembered again.
        clock.0.fetch_add(1, Ordering::Relaxed);
        remembering.add_seed(&range, &tags).await.unwrap();
        remembering.add_seed(&range, &tags).await.unwrap();
        assert_eq!(
            *asm.sent.lock().unwrap(),
            ["20.61.32.0/28", "www.contoso.com", "20.61.32.0/28"]
        );
        let stored = refused_recently(&ledger, &range, clock.now_ms())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.refused_at_ms, clock.now_ms());
    }
}
