use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;
use crate::domain::completeness::{Incomplete, IncompleteScope};

const TAG: &str = "cloud-connector";
const SUB_A: &str = "00000000-0000-0000-0000-00000000000a";
const SUB_B: &str = "00000000-0000-0000-0000-00000000000b";

fn seed(name: &str) -> Seed {
    Seed::from_host_value(name).unwrap()
}

fn desired(names: &[&str]) -> BTreeSet<Seed> {
    names.iter().map(|n| seed(n)).collect()
}

fn asm(id: &str, name: &str, kind: Option<SeedKind>, tagged: bool) -> AsmSeed {
    AsmSeed {
        id: id.into(),
        name: name.into(),
        kind,
        tags: if tagged {
            vec![TAG.into()]
        } else {
            vec!["manual".into()]
        },
    }
}

fn tagged(id: &str, name: &str) -> AsmSeed {
    asm(id, name, Some(SeedKind::Domain), true)
}

fn complete() -> CompletenessReport {
    CompletenessReport {
        subscriptions: vec![SUB_A.into(), SUB_B.into()],
        incomplete: vec![],
        scope_unknown: false,
        ..Default::default()
    }
}

fn forbidden(sub: &str, check: Option<ServiceCheck>) -> CompletenessReport {
    let mut report = complete();
    report.incomplete.push(IncompleteScope {
        subscription: sub.into(),
        check,
        why: Incomplete::Forbidden {
            message: "no Reader".into(),
        },
    });
    report
}

fn rules(delete: bool) -> Rules {
    Rules {
        seed_tag: TAG.into(),
        delete_stale: delete,
        max_delete_fraction: 0.25,
        force_deletes: false,
        shared_tag: false,
    }
}

fn plan(
    want: &BTreeSet<Seed>,
    have: &[AsmSeed],
    report: &CompletenessReport,
    prov: Option<&Provenance>,
    r: &Rules,
) -> Plan {
    reconcile(Inputs {
        desired: want,
        asm: have,
        completeness: report,
        provenance: prov,
        rules: r,
    })
}

fn names(plan: &Plan) -> (Vec<String>, Vec<String>) {
    (
        plan.add.iter().map(|s| s.name.clone()).collect(),
        plan.delete.iter().map(|s| s.name.clone()).collect(),
    )
}

/// Twelve tagged seeds that are all still desired, plus `extra` tagged stale ones.
fn big_scan(extra: &[&str]) -> (BTreeSet<Seed>, Vec<AsmSeed>) {
    let keep: Vec<String> = (0..12).map(|i| format!("keep{i}.contoso.com")).collect();
    let want: BTreeSet<Seed> = keep.iter().map(|n| seed(n)).collect();
    let mut have: Vec<AsmSeed> = keep
        .iter()
        .enumerate()
        .map(|(i, n)| tagged(&format!("k{i}"), n))
        .collect();
    for (i, name) in extra.iter().enumerate() {
        have.push(tagged(&format!("s{i}"), name));
    }
    (want, have)
}

#[test]
fn adds_missing_and_keeps_present() {
    let want = desired(&["a.contoso.com", "b.contoso.com", "203.0.113.7"]);
    let have = vec![tagged("1", "a.contoso.com")];
    let p = plan(&want, &have, &complete(), None, &rules(true));
    assert_eq!(names(&p).0, vec!["203.0.113.7", "b.contoso.com"]);
    assert_eq!(p.add[0].kind, SeedKind::Ipv4);
    assert_eq!(p.kept, 1);
    assert!(p.delete.is_empty());
}

#[test]
fn untagged_present_seed_is_kept_not_added_nor_retagged() {
    let want = desired(&["a.contoso.com"]);
    let have = vec![asm("1", "a.contoso.com", Some(SeedKind::Domain), false)];
    let p = plan(&want, &have, &complete(), None, &rules(true));
    assert!(p.is_empty());
    assert_eq!(p.kept, 1);
}

#[test]
fn comparison_is_after_normalisation() {
    let want = desired(&["www.contoso.com", "2001:db8::1"]);
    let have = vec![
        tagged("1", "WWW.Contoso.com."),
        asm("2", "2001:0DB8:0:0::1", Some(SeedKind::Ipv6), true),
    ];
    let p = plan(&want, &have, &complete(), None, &rules(true));
    assert!(p.is_empty(), "{p:?}");
    assert_eq!(p.kept, 2);
}

#[test]
fn type_less_and_miscased_types_normalise() {
    let want = desired(&["203.0.113.9"]);
    let mut have = vec![asm("1", "203.0.113.9", None, true)];
    have.push(asm("2", "198.51.100.0/24", None, false));
    let p = plan(&want, &have, &complete(), None, &rules(true));
    assert!(p.is_empty());
    assert!(p.unrecognised.is_empty());
}

#[test]
fn unnormalisable_asm_seeds_are_left_alone() {
    let (want, mut have) = big_scan(&[]);
    have.push(tagged("x1", "not a host!"));
    have.push(tagged("x2", "10.0.0.1"));
    let p = plan(&want, &have, &complete(), None, &rules(true));
    assert!(p.delete.is_empty());
    assert_eq!(p.unrecognised, vec!["not a host!", "10.0.0.1"]);
}

#[test]
fn hand_added_seeds_are_never_deleted() {
    let (want, mut have) = big_scan(&["old.contoso.com"]);
    have.push(asm("m1", "manual.example.org", Some(SeedKind::Domain), false));
    have.push(AsmSeed {
        id: "m2".into(),
        name: "notags.example.org".into(),
        kind: Some(SeedKind::Domain),
        tags: vec![],
    });
    let p = plan(&want, &have, &complete(), None, &rules(true));
    assert_eq!(names(&p).1, vec!["old.contoso.com"]);
    assert_eq!(p.untagged_left_alone, 2);
}

#[test]
fn tag_match_ignores_case() {
    let (want, mut have) = big_scan(&[]);
    have.push(AsmSeed {
        id: "s".into(),
        name: "old.contoso.com".into(),
        kind: Some(SeedKind::Domain),
        tags: vec!["Cloud-Connector".into()],
    });
    let p = plan(&want, &have, &complete(), None, &rules(true));
    assert_eq!(names(&p).1, vec!["old.contoso.com"]);
}

#[test]
fn delete_stale_off_keeps_everything() {
    let (want, have) = big_scan(&["old.contoso.com"]);
    let p = plan(&want, &have, &complete(), None, &rules(false));
    assert!(p.delete.is_empty());
    assert_eq!(p.skipped.len(), 1);
    assert_eq!(p.skipped[0].reason, SkipReason::DeleteStaleSeedsOff);
}

#[test]
fn unknown_provenance_deletes_only_after_a_complete_sweep() {
    let (want, have) = big_scan(&["old.contoso.com"]);
    let p = plan(&want, &have, &forbidden(SUB_B, None), None, &rules(true));
    assert!(p.delete.is_empty());
    assert_eq!(p.skipped[0].reason, SkipReason::ProvenanceUnknown);

    let mut unknown = complete();
    unknown.scope_unknown = true;
    let p = plan(&want, &have, &unknown, None, &rules(true));
    assert!(p.delete.is_empty());

    let p = plan(&want, &have, &complete(), None, &rules(true));
    assert_eq!(p.delete.len(), 1);
}

#[test]
fn known_provenance_deletes_only_from_complete_scopes() {
    let (want, have) = big_scan(&["in-a.contoso.com", "in-b.contoso.com"]);
    let mut prov = Provenance::new();
    prov.insert(
        seed("in-a.contoso.com"),
        vec![Scope {
            subscription: SUB_A.into(),
            check: ServiceCheck::DnsRecords,
        }],
    );
    prov.insert(
        seed("in-b.contoso.com"),
        vec![Scope {
            subscription: SUB_B.into(),
            check: ServiceCheck::DnsRecords,
        }],
    );
    let mut r = rules(true);
    r.max_delete_fraction = 1.0;
    // A 403 on subscription B: only B's seed stays.
    let p = plan(&want, &have, &forbidden(SUB_B, None), Some(&prov), &r);
    assert_eq!(names(&p).1, vec!["in-a.contoso.com"]);
    assert_eq!(
        p.skipped[0].reason,
        SkipReason::ScopeIncomplete {
            subscription: SUB_B.into(),
            check: ServiceCheck::DnsRecords
        }
    );
    // A failure of one check in B that is not DNS records: both go.
    let p = plan(
        &want,
        &have,
        &forbidden(SUB_B, Some(ServiceCheck::AppServices)),
        Some(&prov),
        &r,
    );
    assert_eq!(p.delete.len(), 2);
    // A seed whose subscription is no longer in scope at all is kept.
    let mut gone = complete();
    gone.subscriptions.retain(|s| s != SUB_B);
    let p = plan(&want, &have, &gone, Some(&prov), &r);
    assert_eq!(names(&p).1, vec!["in-a.contoso.com"]);
}

#[test]
fn a_seed_with_several_scopes_needs_all_complete() {
    let (want, have) = big_scan(&["shared.contoso.com"]);
    let mut prov = Provenance::new();
    prov.insert(
        seed("shared.contoso.com"),
        vec![
            Scope {
                subscription: SUB_A.into(),
                check: ServiceCheck::DnsRecords,
            },
            Scope {
                subscription: SUB_B.into(),
                check: ServiceCheck::PublicIpAddresses,
            },
        ],
    );
    let p = plan(
        &want,
        &have,
        &forbidden(SUB_B, Some(ServiceCheck::PublicIpAddresses)),
        Some(&prov),
        &rules(true),
    );
    assert!(p.delete.is_empty());
}

#[test]
fn empty_sweep_never_deletes_even_forced() {
    let have = vec![tagged("1", "a.contoso.com"), tagged("2", "b.contoso.com")];
    let mut r = rules(true);
    r.force_deletes = true;
    let p = plan(&BTreeSet::new(), &have, &complete(), None, &r);
    assert!(p.delete.is_empty());
    assert_eq!(p.skipped.len(), 2);
    assert!(matches!(
        p.skipped[0].reason,
        SkipReason::NearEmptySweep { desired: 0, tagged: 2 }
    ));
}

#[test]
fn near_empty_is_under_ten_percent_of_tagged() {
    assert!(is_near_empty(0, 0));
    assert!(is_near_empty(0, 5));
    assert!(is_near_empty(9, 100));
    assert!(!is_near_empty(10, 100));
    assert!(!is_near_empty(1, 9));
    // One desired against 20 tagged, 19 stale: near-empty.
    let names: Vec<String> = (0..19).map(|i| format!("s{i}.contoso.com")).collect();
    let mut have: Vec<AsmSeed> = names
        .iter()
        .enumerate()
        .map(|(i, n)| tagged(&i.to_string(), n))
        .collect();
    have.push(tagged("k", "keep.contoso.com"));
    let mut r = rules(true);
    r.force_deletes = true;
    let p = plan(&desired(&["keep.contoso.com"]), &have, &complete(), None, &r);
    assert!(p.delete.is_empty());
}

#[test]
fn breaker_trips_above_the_fraction_and_force_overrides() {
    // 12 kept + 4 stale = 16 tagged; 4/16 = 0.25 is not more than 0.25: deletes.
    let (want, have) = big_scan(&["s1.contoso.com", "s2.contoso.com", "s3.contoso.com", "s4.contoso.com"]);
    let p = plan(&want, &have, &complete(), None, &rules(true));
    assert_eq!(p.delete.len(), 4);
    // 5 stale of 17: trips.
    let (want, have) = big_scan(&[
        "s1.contoso.com",
        "s2.contoso.com",
        "s3.contoso.com",
        "s4.contoso.com",
        "s5.contoso.com",
    ]);
    let p = plan(&want, &have, &complete(), None, &rules(true));
    assert!(p.delete.is_empty());
    assert_eq!(p.skipped.len(), 5);
    assert!(matches!(
        p.skipped[0].reason,
        SkipReason::DeleteBreaker {
            would_delete: 5,
            tagged: 17,
            ..
        }
    ));
    assert!(p.skipped[0].reason.to_string().contains("--force-deletes"));
    let mut r = rules(true);
    r.force_deletes = true;
    let p = plan(&want, &have, &complete(), None, &r);
    assert_eq!(p.delete.len(), 5);
}

#[test]
fn breaker_counts_only_deletable_seeds() {
    // 5 stale, but 3 of them come from an unreadable scope: 2 of 17 is under the fraction.
    let (want, have) = big_scan(&[
        "s1.contoso.com",
        "s2.contoso.com",
        "b1.contoso.com",
        "b2.contoso.com",
        "b3.contoso.com",
    ]);
    let mut prov = Provenance::new();
    for (name, sub) in [
        ("s1.contoso.com", SUB_A),
        ("s2.contoso.com", SUB_A),
        ("b1.contoso.com", SUB_B),
        ("b2.contoso.com", SUB_B),
        ("b3.contoso.com", SUB_B),
    ] {
        prov.insert(
            seed(name),
            vec![Scope {
                subscription: sub.into(),
                check: ServiceCheck::DnsZones,
            }],
        );
    }
    let p = plan(&want, &have, &forbidden(SUB_B, None), Some(&prov), &rules(true));
    assert_eq!(names(&p).1, vec!["s1.contoso.com", "s2.contoso.com"]);
}

/// A read of SUB_A only (one subscription resync, one fan-out batch): SUB_A's seeds are
/// `own` (desired) plus `stale`, SUB_B holds `others` tagged seeds the read did not cover.
fn scoped_read(
    own: usize,
    stale: usize,
    others: usize,
) -> (BTreeSet<Seed>, Vec<AsmSeed>, Provenance, CompletenessReport) {
    let mut want = BTreeSet::new();
    let mut have = Vec::new();
    let mut prov = Provenance::new();
    let scope = |sub: &str| {
        vec![Scope {
            subscription: sub.into(),
            check: ServiceCheck::DnsZones,
        }]
    };
    for i in 0..own {
        let name = format!("own{i}.contoso.com");
        want.insert(seed(&name));
        have.push(tagged(&format!("o{i}"), &name));
    }
    for i in 0..stale {
        let name = format!("stale{i}.contoso.com");
        have.push(tagged(&format!("s{i}"), &name));
        prov.insert(seed(&name), scope(SUB_A));
    }
    for i in 0..others {
        let name = format!("other{i}.contoso.com");
        have.push(tagged(&format!("x{i}"), &name));
        prov.insert(seed(&name), scope(SUB_B));
    }
    let report = CompletenessReport {
        subscriptions: vec![SUB_A.into()],
        ..Default::default()
    };
    (want, have, prov, report)
}

#[test]
fn a_scoped_read_is_weighed_against_its_own_scopes_tagged_seeds() {
    // 5 desired in SUB_A against 106 tagged in the scan would be "near-empty"; against SUB_A's
    // own 6 it is not, and 1 delete of 6 passes the breaker.
    let (want, have, prov, report) = scoped_read(5, 1, 100);
    let p = plan(&want, &have, &report, Some(&prov), &rules(true));
    assert_eq!(names(&p).1, vec!["stale0.contoso.com"]);
    assert_eq!(p.skipped.len(), 100, "SUB_B's seeds were not read: kept");
    assert!(
        p.skipped
            .iter()
            .all(|s| matches!(s.reason, SkipReason::ScopeIncomplete { .. }))
    );
}

#[test]
fn a_scoped_read_that_would_delete_most_of_its_own_seeds_trips_the_breaker() {
    // 4 deletes of SUB_A's 8 tagged seeds (0.5 > 0.25), though only 4 of the scan's 108.
    let (want, have, prov, report) = scoped_read(4, 4, 100);
    let p = plan(&want, &have, &report, Some(&prov), &rules(true));
    assert!(p.delete.is_empty());
    let tripped: Vec<_> = p
        .skipped
        .iter()
        .filter(|s| matches!(s.reason, SkipReason::DeleteBreaker { .. }))
        .collect();
    assert_eq!(tripped.len(), 4);
    assert!(matches!(
        tripped[0].reason,
        SkipReason::DeleteBreaker {
            would_delete: 4,
            tagged: 8,
            ..
        }
    ));
}

#[test]
fn nothing_changed_means_an_empty_plan() {
    let (want, have) = big_scan(&[]);
    let p = plan(&want, &have, &complete(), None, &rules(true));
    assert!(p.is_empty());
    assert_eq!(p.kept, 12);
    assert_eq!(p.tagged, 12);
}

#[test]
fn duplicate_asm_entries_for_one_seed() {
    let (want, mut have) = big_scan(&["old.contoso.com"]);
    have.push(tagged("dup", "OLD.contoso.com."));
    have.push(tagged("k0", "keep0.contoso.com"));
    let mut r = rules(true);
    r.max_delete_fraction = 1.0;
    let p = plan(&want, &have, &complete(), None, &r);
    let mut ids: Vec<&str> = p.delete.iter().map(|s| s.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, vec!["dup", "s0"]);
}

fn arb_name() -> impl Strategy<Value = String> {
    (0u8..30).prop_map(|i| format!("h{i}.contoso.com"))
}

/// Whatever the inputs: an untagged seed is never deleted, a desired seed is never deleted,
/// nothing is both added and present, and an incomplete sweep without provenance deletes
/// nothing.
#[test]
fn safety_invariants() {
    let reached = crate::test_util::Reached::new("safety_invariants (cases that delete)");
    proptest!(|(
        want in proptest::collection::btree_set(arb_name(), 0..20),
        have in proptest::collection::vec((arb_name(), any::<bool>()), 0..30),
        // Weighted towards runs that may delete, so the deletion guards are exercised.
        delete in proptest::bool::weighted(0.8),
        force in any::<bool>(),
        fraction in 0.0f64..=1.0,
        incomplete in proptest::bool::weighted(0.25),
    )| {
        reached.case();
        let want: BTreeSet<Seed> = want.iter().map(|n| seed(n)).collect();
        let have: Vec<AsmSeed> = have
            .iter()
            .enumerate()
            .map(|(i, (n, t))| asm(&i.to_string(), n, Some(SeedKind::Domain), *t))
            .collect();
        let report = if incomplete { forbidden(SUB_A, None) } else { complete() };
        let r = Rules { seed_tag: TAG.into(), delete_stale: delete, max_delete_fraction: fraction, force_deletes: force, shared_tag: false };
        let p = plan(&want, &have, &report, None, &r);
        let by_id: BTreeMap<&str, &AsmSeed> = have.iter().map(|s| (s.id.as_str(), s)).collect();
        if !p.delete.is_empty() {
            reached.hit();
        }
        for d in &p.delete {
            let s = by_id[d.id.as_str()];
            prop_assert!(s.has_tag(TAG));
            prop_assert!(!want.contains(&d.seed));
        }
        if !delete || incomplete || want.is_empty() {
            prop_assert!(p.delete.is_empty());
        }
        if !force && p.tagged > 0 {
            prop_assert!(p.delete.len() as f64 <= fraction * p.tagged as f64);
        }
        let present: BTreeSet<Seed> = have.iter().filter_map(|s| s.normalised()).collect();
        for a in &p.add_seeds {
            prop_assert!(!present.contains(a));
            prop_assert!(want.contains(a));
        }
        prop_assert_eq!(p.add_seeds.len() + p.kept, want.len());
        // Applying the plan and reconciling again changes nothing.
        let mut after: Vec<AsmSeed> = have.iter().filter(|s| !p.delete.iter().any(|d| d.id == s.id)).cloned().collect();
        for (i, a) in p.add_seeds.iter().enumerate() {
            after.push(asm(&format!("new{i}"), a.name(), Some(a.kind()), true));
        }
        let again = plan(&want, &after, &report, None, &r);
        prop_assert!(again.add_seeds.is_empty());
    });
    reached.check(0.15);
}
