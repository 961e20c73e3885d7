//! Behaviour of the accounts tables (users, sessions, tokens, audit) on real LMDB
//! environments in temporary directories.

use std::sync::{Arc, Barrier};

use serde_json::json;
use tempfile::TempDir;

use super::*;

const S: u64 = 1_000_000;
const MIN: u64 = 60 * S;
/// 2024-06-01T00:00:00Z.
const T0: u64 = 1_717_200_000 * S;
const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

fn open() -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn add_user(store: &Store, name: &str, role: Role) -> User {
    store
        .create_user(&NewUser {
            username: name,
            role,
            password_hash: HASH,
            now_us: T0,
        })
        .unwrap()
}

fn h(n: u8) -> TokenHash {
    [n; 32]
}

fn session(user: &User, created_us: u64) -> Session {
    Session {
        user_id: user.id,
        created_us,
        last_seen_us: created_us,
        idle_timeout_us: 30 * MIN,
        expires_us: created_us + 24 * 60 * MIN,
        csrf: "csrf-secret".into(),
        client: ClientInfo {
            ip: "192.168.1.20".into(),
            user_agent: "Mozilla/5.0".into(),
        },
    }
}

// ---- users ------------------------------------------------------------------------

#[test]
fn a_user_round_trips_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert!(!store.has_any_user().unwrap());
    let alice = add_user(&store, "Alice", Role::Admin);
    assert_eq!(alice.id, UserId(1));
    let totp = TotpState {
        secret: vec![0, 1, 0xfe, 0xff],
        last_step: Some(57_240_000),
        recovery_code_hashes: vec!["$argon2id$r1".into(), "$argon2id$r2".into()],
    };
    let updated = store
        .update_user("alice", T0 + MIN, |u| u.totp = Some(totp.clone()))
        .unwrap();
    assert_eq!(updated.updated_us, T0 + MIN);
    assert_eq!(updated.created_us, T0);
    drop(store);

    let store = Store::open(dir.path()).unwrap();
    let got = store.user("ALICE").unwrap().unwrap();
    assert_eq!(got, updated);
    assert_eq!(got.username, "Alice", "display form is kept");
    assert_eq!(got.totp.as_ref(), Some(&totp));
    assert_eq!(store.user_by_id(UserId(1)).unwrap(), Some(got.clone()));
    assert_eq!(store.users().unwrap(), vec![got]);
    assert_eq!(store.user_count().unwrap(), 1);
    assert!(store.has_any_user().unwrap());
    assert_eq!(store.schema_version(), schema::SCHEMA_VERSION);
    // Secrets stay out of Debug output.
    let debug = format!("{:?}", store.user("alice").unwrap().unwrap());
    assert!(
        !debug.contains("argon2id") && !debug.contains("fe"),
        "{debug}"
    );
}

#[test]
fn user_names_are_unique_ignoring_case_and_ids_are_not_reused() {
    let (_dir, store) = open();
    add_user(&store, "Alice", Role::Admin);
    for clash in ["alice", "ALICE", "aLiCe"] {
        let err = store
            .create_user(&NewUser {
                username: clash,
                role: Role::Viewer,
                password_hash: HASH,
                now_us: T0,
            })
            .unwrap_err();
        assert!(matches!(err, AccountError::UserExists(_)), "{err:?}");
    }
    let bob = add_user(&store, "bob", Role::Viewer);
    assert_eq!(bob.id, UserId(2));
    store.delete_user("BOB").unwrap();
    assert!(store.user("bob").unwrap().is_none());
    assert_eq!(add_user(&store, "carol", Role::Viewer).id, UserId(3));
    // A rename onto another user's name (any case) is refused; a case change is fine.
    let err = store
        .update_user("carol", T0, |u| u.username = "ALICE".into())
        .unwrap_err();
    assert!(matches!(err, AccountError::UserExists(_)), "{err:?}");
    store
        .update_user("carol", T0, |u| u.username = "Carol".into())
        .unwrap();
    assert_eq!(store.user("carol").unwrap().unwrap().username, "Carol");
    store
        .update_user("carol", T0, |u| u.username = "dave".into())
        .unwrap();
    assert!(store.user("carol").unwrap().is_none());
    assert_eq!(store.user("Dave").unwrap().unwrap().id, UserId(3));
    assert_eq!(store.user_count().unwrap(), 2);
}

#[test]
fn invalid_user_names_are_refused_and_nothing_is_written() {
    let (_dir, store) = open();
    let long = "x".repeat(users::MAX_USERNAME_LEN + 1);
    for bad in ["", " alice", "alice ", "a\nb", long.as_str()] {
        let err = store
            .create_user(&NewUser {
                username: bad,
                role: Role::Admin,
                password_hash: HASH,
                now_us: T0,
            })
            .unwrap_err();
        assert!(
            matches!(err, AccountError::Invalid { .. }),
            "{bad:?}: {err:?}"
        );
    }
    assert!(!store.has_any_user().unwrap());
    // The failed creations did not consume ids (the transaction was aborted).
    assert_eq!(add_user(&store, "ok", Role::Admin).id, UserId(1));
}

#[test]
fn first_admin_setup_races_have_exactly_one_winner() {
    for _round in 0..5 {
        let (_dir, store) = open();
        let store = Arc::new(store);
        let barrier = Arc::new(Barrier::new(4));
        let workers: Vec<_> = (0..4)
            .map(|i| {
                let (store, barrier) = (store.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    store.create_first_admin(&format!("owner{i}"), HASH, T0)
                })
            })
            .collect();
        let results: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        let winners = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(winners, 1, "{results:?}");
        for r in &results {
            if let Err(e) = r {
                assert!(matches!(e, AccountError::AlreadySetUp), "{e:?}");
            }
        }
        assert_eq!(store.user_count().unwrap(), 1);
        assert_eq!(store.admin_count().unwrap(), 1);
    }
    // And afterwards setup stays closed.
    let (_dir, store) = open();
    store.create_first_admin("owner", HASH, T0).unwrap();
    assert!(matches!(
        store.create_first_admin("other", HASH, T0),
        Err(AccountError::AlreadySetUp)
    ));
}

#[test]
fn the_last_enabled_admin_cannot_be_deleted_demoted_or_disabled() {
    let (_dir, store) = open();
    add_user(&store, "root", Role::Admin);
    add_user(&store, "viewer", Role::Viewer);
    assert_eq!(store.admin_count().unwrap(), 1);
    let last = |r: Result<User, AccountError>| matches!(r, Err(AccountError::LastAdmin(_)));
    assert!(last(store.delete_user("root")));
    assert!(last(
        store.update_user("root", T0, |u| u.role = Role::Viewer)
    ));
    assert!(last(store.update_user("root", T0, |u| u.disabled = true)));
    let root = store.user("root").unwrap().unwrap();
    assert!(root.is_active_admin() && root.updated_us == T0);

    // With a second admin, the first may go.
    store
        .update_user("viewer", T0, |u| u.role = Role::Admin)
        .unwrap();
    assert_eq!(store.admin_count().unwrap(), 2);
    store
        .update_user("root", T0, |u| u.role = Role::Viewer)
        .unwrap();
    assert!(last(store.delete_user("viewer")));
    store.delete_user("root").unwrap();
    assert_eq!(store.user_count().unwrap(), 1);
    // A disabled admin does not count.
    add_user(&store, "ghost", Role::Admin);
    store
        .update_user("ghost", T0, |u| u.disabled = true)
        .unwrap();
    assert_eq!(store.admin_count().unwrap(), 1);
    assert!(last(store.delete_user("viewer")));
}

// ---- sessions ---------------------------------------------------------------------

#[test]
fn sessions_round_trip_touch_and_expire() {
    let (_dir, store) = open();
    let alice = add_user(&store, "alice", Role::Admin);
    let mut s = session(&alice, T0);
    s.client.user_agent = "é".repeat(500);
    assert_eq!(store.insert_session(&h(1), &s).unwrap(), 0);
    let got = store.session(&h(1)).unwrap().unwrap();
    assert!(got.client.user_agent.len() <= sessions::MAX_USER_AGENT_LEN);
    assert!(got.client.user_agent.chars().all(|c| c == 'é'));
    assert_eq!(got.csrf, "csrf-secret");
    assert!(got.is_live(T0 + 29 * MIN));
    assert!(!got.is_live(T0 + 31 * MIN), "idle timeout");
    // A duplicate hash and a session for a missing user are refused.
    assert!(store.insert_session(&h(1), &s).is_err());
    let mut orphan = session(&alice, T0);
    orphan.user_id = UserId(99);
    assert!(matches!(
        store.insert_session(&h(2), &orphan),
        Err(AccountError::NoSuchUser(_))
    ));

    // Touch within the granularity does not write; later it does.
    let t = store.touch_session(&h(1), T0 + 10 * S).unwrap().unwrap();
    assert_eq!(t.last_seen_us, T0);
    let t = store.touch_session(&h(1), T0 + 20 * MIN).unwrap().unwrap();
    assert_eq!(t.last_seen_us, T0 + 20 * MIN);
    assert_eq!(
        store.session(&h(1)).unwrap().unwrap().last_seen_us,
        T0 + 20 * MIN
    );
    assert!(store.touch_session(&h(9), T0).unwrap().is_none());

    // Purge: one idle, one past its absolute expiry, one live.
    let mut idle = session(&alice, T0);
    idle.last_seen_us = T0;
    store.insert_session(&h(3), &idle).unwrap();
    let mut absolute = session(&alice, T0);
    absolute.expires_us = T0 + 40 * MIN;
    absolute.idle_timeout_us = 24 * 60 * MIN;
    absolute.last_seen_us = T0 + 45 * MIN;
    store.insert_session(&h(4), &absolute).unwrap();
    let now = T0 + 45 * MIN;
    assert_eq!(store.purge_expired_sessions(now).unwrap(), 2);
    assert!(store.session(&h(3)).unwrap().is_none());
    assert!(store.session(&h(4)).unwrap().is_none());
    assert!(
        store.session(&h(1)).unwrap().is_some(),
        "touched one is live"
    );

    assert!(store.delete_session(&h(1)).unwrap());
    assert!(!store.delete_session(&h(1)).unwrap());
    assert_eq!(store.session_count().unwrap(), 0);
}

#[test]
fn sessions_are_capped_per_user_oldest_first() {
    let (_dir, store) = open();
    let alice = add_user(&store, "alice", Role::Admin);
    let bob = add_user(&store, "bob", Role::Viewer);
    store
        .insert_session(&[200; 32], &session(&bob, T0))
        .unwrap();
    let n = MAX_SESSIONS_PER_USER as u8;
    for i in 0..n {
        // Inserted out of time order: the cap follows creation time, not key order.
        let created = T0 + u64::from(n - i) * S;
        assert_eq!(
            store
                .insert_session(&h(i), &session(&alice, created))
                .unwrap(),
            0
        );
    }
    assert_eq!(
        store.user_sessions(alice.id).unwrap().len(),
        MAX_SESSIONS_PER_USER
    );
    // One more: the oldest (the last inserted, h(n - 1), created at T0 + 1 s) goes.
    let evicted = store
        .insert_session(&h(100), &session(&alice, T0 + 100 * S))
        .unwrap();
    assert_eq!(evicted, 1);
    assert!(store.session(&h(n - 1)).unwrap().is_none());
    assert!(store.session(&h(0)).unwrap().is_some());
    assert_eq!(
        store.user_sessions(alice.id).unwrap().len(),
        MAX_SESSIONS_PER_USER
    );
    // Bob's session was not touched by Alice's cap.
    assert!(store.session(&[200; 32]).unwrap().is_some());
}

#[test]
fn deleting_a_user_or_their_sessions_removes_them_all() {
    let (_dir, store) = open();
    let alice = add_user(&store, "alice", Role::Admin);
    let bob = add_user(&store, "bob", Role::Viewer);
    for i in 0..3 {
        store.insert_session(&h(i), &session(&alice, T0)).unwrap();
        store
            .insert_session(&h(10 + i), &session(&bob, T0))
            .unwrap();
    }
    store
        .create_token(
            &h(50),
            &NewToken {
                user_id: bob.id,
                name: "ha",
                scope: Role::Viewer,
                now_us: T0,
            },
        )
        .unwrap();
    // Password change: all of Alice's sessions go, Bob's stay.
    assert_eq!(store.delete_user_sessions(alice.id).unwrap(), 3);
    assert!(store.user_sessions(alice.id).unwrap().is_empty());
    assert_eq!(store.user_sessions(bob.id).unwrap().len(), 3);
    // Removing Bob removes his sessions and tokens with him.
    store.delete_user("bob").unwrap();
    assert_eq!(store.session_count().unwrap(), 0);
    assert!(store.token(&h(50)).unwrap().is_none());
}

// ---- tokens -----------------------------------------------------------------------

#[test]
fn tokens_are_listed_without_hashes_revoked_by_id_and_scoped() {
    let (_dir, store) = open();
    let alice = add_user(&store, "alice", Role::Admin);
    let bob = add_user(&store, "bob", Role::Viewer);
    let new = |user_id, name, scope| NewToken {
        user_id,
        name,
        scope,
        now_us: T0,
    };
    let ha = store
        .create_token(&h(1), &new(alice.id, "home-assistant", Role::Viewer))
        .unwrap();
    let ci = store
        .create_token(&h(2), &new(alice.id, "backup", Role::Admin))
        .unwrap();
    assert_eq!((ha.id, ci.id), (TokenId(1), TokenId(2)));
    // Same name twice for a user, a viewer asking for admin, a duplicate hash: refused.
    assert!(
        store
            .create_token(&h(3), &new(alice.id, "backup", Role::Viewer))
            .is_err()
    );
    assert!(
        store
            .create_token(&h(3), &new(bob.id, "x", Role::Admin))
            .is_err()
    );
    assert!(
        store
            .create_token(&h(1), &new(bob.id, "y", Role::Viewer))
            .is_err()
    );
    let bobs = store
        .create_token(&h(3), &new(bob.id, "backup", Role::Viewer))
        .unwrap();
    assert_eq!(bobs.id, TokenId(3), "failed creations used no id");

    let list = store.user_tokens(alice.id).unwrap();
    assert_eq!(list, vec![ha.clone(), ci.clone()]);
    let json = serde_json::to_string(&list).unwrap();
    assert!(!json.contains("hash"), "{json}");

    let revoked = store.revoke_token(ha.id).unwrap();
    assert!(revoked.revoked);
    assert!(store.token(&h(1)).unwrap().unwrap().revoked);
    assert!(!store.token(&h(2)).unwrap().unwrap().revoked);
    assert!(matches!(
        store.revoke_token(TokenId(99)),
        Err(AccountError::NoSuchToken(99))
    ));

    let used = store.touch_token(&h(2), T0 + MIN).unwrap().unwrap();
    assert_eq!(used.last_used_us, Some(T0 + MIN));
    let again = store.touch_token(&h(2), T0 + MIN + S).unwrap().unwrap();
    assert_eq!(again.last_used_us, Some(T0 + MIN), "throttled");

    assert_eq!(store.delete_user_tokens(alice.id).unwrap(), 2);
    assert!(store.user_tokens(alice.id).unwrap().is_empty());
    assert_eq!(store.user_tokens(bob.id).unwrap().len(), 1);
}

// ---- audit ------------------------------------------------------------------------

fn append(store: &Store, i: u64) -> u64 {
    let actor = AuditActor {
        user: Some(if i.is_multiple_of(2) { "Alice" } else { "bob" }.into()),
        addr: Some(format!("192.168.1.{}", i % 3)),
    };
    let action = if i.is_multiple_of(3) {
        "login.failed"
    } else {
        "login"
    };
    store
        .append_audit(&AuditRecord {
            time_us: T0 + i * MIN,
            actor: &actor,
            action,
            details: &json!({"i": i, "z": "last", "a": ["first"]}),
        })
        .unwrap()
}

fn tamper_seq(store: &Store) -> u64 {
    match store.verify_audit_chain().unwrap() {
        Ok(summary) => panic!("tampering not detected: {summary}"),
        Err(t) => t.seq,
    }
}

fn raw_row(store: &Store, seq: u64) -> Vec<u8> {
    store
        .read(|txn| {
            Ok(store
                .tables
                .audit
                .get(txn, &seq.to_be_bytes())?
                .map(<[u8]>::to_vec))
        })
        .unwrap()
        .unwrap()
}

fn put_raw(store: &Store, seq: u64, row: &[u8]) {
    store
        .write(|txn| Ok(store.tables.audit.put(txn, &seq.to_be_bytes(), row)?))
        .unwrap();
}

fn delete_raw(store: &Store, seq: u64) {
    store
        .write(|txn| Ok(store.tables.audit.delete(txn, &seq.to_be_bytes())?))
        .unwrap();
}

#[test]
fn an_audit_log_verifies_lists_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.verify_audit_chain().unwrap().unwrap().entries, 0);
    for i in 1..=10 {
        assert_eq!(append(&store, i), i);
    }
    let summary = store.verify_audit_chain().unwrap().unwrap();
    assert_eq!((summary.entries, summary.head_seq), (10, 10));
    drop(store);

    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.verify_audit_chain().unwrap().unwrap(), summary);
    assert_eq!(append(&store, 11), 11);
    let all = store
        .audit_entries(&AuditQuery {
            limit: 1000,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(all.len(), 11);
    assert_eq!(all[0].prev_hash, audit::GENESIS_HASH);
    for w in all.windows(2) {
        assert_eq!(w[1].prev_hash, w[0].hash);
        assert_eq!(w[1].seq, w[0].seq + 1);
    }
    assert_eq!(all[4].details, json!({"i": 5, "z": "last", "a": ["first"]}));
    assert_eq!(all[4].actor.addr.as_deref(), Some("192.168.1.2"));

    // Filters: action, actor (any case), time range, limit and cursor both ways.
    let q = |q: AuditQuery<'_>| -> Vec<u64> {
        store
            .audit_entries(&q)
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect()
    };
    let failed = AuditQuery {
        action: Some("login.failed"),
        ..Default::default()
    };
    assert_eq!(q(failed.clone()), vec![3, 6, 9]);
    assert_eq!(
        q(AuditQuery {
            actor_user: Some("ALICE"),
            ..failed.clone()
        }),
        vec![6]
    );
    assert_eq!(
        q(AuditQuery {
            from_us: Some(T0 + 4 * MIN),
            to_us: Some(T0 + 7 * MIN),
            ..Default::default()
        }),
        vec![4, 5, 6]
    );
    assert_eq!(
        q(AuditQuery {
            actor_addr: Some("192.168.1.0"),
            ..Default::default()
        }),
        vec![3, 6, 9]
    );
    let page = AuditQuery {
        limit: 4,
        ..Default::default()
    };
    assert_eq!(q(page.clone()), vec![1, 2, 3, 4]);
    assert_eq!(
        q(AuditQuery {
            cursor: Some(4),
            ..page.clone()
        }),
        vec![5, 6, 7, 8]
    );
    let newest = AuditQuery {
        newest_first: true,
        ..page
    };
    assert_eq!(q(newest.clone()), vec![11, 10, 9, 8]);
    assert_eq!(
        q(AuditQuery {
            cursor: Some(8),
            ..newest
        }),
        vec![7, 6, 5, 4]
    );
}

#[test]
fn an_audit_entry_and_its_change_commit_together_or_not_at_all() {
    let (_dir, store) = open();
    let actor = AuditActor {
        user: None,
        addr: Some("10.0.0.2".into()),
    };
    let record = AuditRecord {
        time_us: T0,
        actor: &actor,
        action: "setup",
        details: &json!({"username": "owner"}),
    };
    store
        .write_accounts(|txn| {
            let user = store.create_first_admin_in(txn, "owner", HASH, T0)?;
            store.append_audit_in(txn, &record)?;
            Ok(user)
        })
        .unwrap();
    assert_eq!(store.audit_len().unwrap(), 1);
    // Second setup fails after its audit entry was appended: both roll back.
    let err = store
        .write_accounts(|txn| {
            store.append_audit_in(txn, &record)?;
            store.create_first_admin_in(txn, "intruder", HASH, T0)
        })
        .unwrap_err();
    assert!(matches!(err, AccountError::AlreadySetUp), "{err:?}");
    assert_eq!(store.audit_len().unwrap(), 1);
    assert!(store.verify_audit_chain().unwrap().is_ok());
    // Bad action codes and oversized details are refused.
    for (action, details) in [
        ("has space", json!({})),
        ("", json!({})),
        ("ok", json!({"blob": "x".repeat(audit::MAX_DETAILS_LEN)})),
    ] {
        let r = store.append_audit(&AuditRecord {
            time_us: T0,
            actor: &actor,
            action,
            details: &details,
        });
        assert!(matches!(r, Err(AccountError::Invalid { .. })), "{action:?}");
    }
    assert_eq!(store.audit_len().unwrap(), 1);
}

#[test]
fn an_edited_audit_entry_is_detected_at_its_sequence_number() {
    let (_dir, store) = open();
    for i in 1..=8 {
        append(&store, i);
    }
    let original = raw_row(&store, 5);
    // Flip one byte of the action text ("login" → "logiN") in place.
    let mut edited = original.clone();
    let pos = edited
        .windows(5)
        .position(|w| w == b"login")
        .expect("action text in the row");
    edited[pos + 4] = b'N';
    put_raw(&store, 5, &edited);
    assert_eq!(tamper_seq(&store), 5);
    // An edited time, detected the same way.
    let mut edited = original.clone();
    edited[8] ^= 1;
    put_raw(&store, 5, &edited);
    assert_eq!(tamper_seq(&store), 5);
    // A row cut short is reported, not a panic.
    put_raw(&store, 5, &original[..20]);
    assert_eq!(tamper_seq(&store), 5);
    put_raw(&store, 5, &original);
    assert!(store.verify_audit_chain().unwrap().is_ok());
}

#[test]
fn deleted_and_reordered_audit_entries_are_detected() {
    let (_dir, store) = open();
    for i in 1..=8 {
        append(&store, i);
    }
    // A middle entry deleted: a gap at its number.
    let four = raw_row(&store, 4);
    delete_raw(&store, 4);
    let t = store.verify_audit_chain().unwrap().unwrap_err();
    assert_eq!(t.seq, 4, "{t}");
    put_raw(&store, 4, &four);
    assert!(store.verify_audit_chain().unwrap().is_ok());

    // The gap closed by moving the later rows down: the links and hashes break.
    let rows: Vec<_> = (1..=8).map(|s| raw_row(&store, s)).collect();
    delete_raw(&store, 8);
    for s in 4..=7 {
        put_raw(&store, s, &rows[s as usize]);
    }
    assert_eq!(tamper_seq(&store), 4);
    for s in 1..=8 {
        put_raw(&store, s, &rows[s as usize - 1]);
    }
    assert!(store.verify_audit_chain().unwrap().is_ok());

    // Two entries swapped.
    put_raw(&store, 6, &rows[6]);
    put_raw(&store, 7, &rows[5]);
    assert_eq!(tamper_seq(&store), 6);
    put_raw(&store, 6, &rows[5]);
    put_raw(&store, 7, &rows[6]);

    // The newest entry deleted: only the head in `meta` can tell.
    delete_raw(&store, 8);
    let t = store.verify_audit_chain().unwrap().unwrap_err();
    assert_eq!(t.seq, 8, "{t}");
    assert!(t.what.contains("newest"), "{t}");
    put_raw(&store, 8, &rows[7]);
    assert!(store.verify_audit_chain().unwrap().is_ok());

    // The oldest entry deleted (without going through retention).
    delete_raw(&store, 1);
    assert_eq!(tamper_seq(&store), 1);
}

#[test]
fn audit_retention_keeps_the_chain_verifiable() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for i in 1..=10 {
        append(&store, i);
    }
    assert_eq!(store.drop_oldest_audit_entries(4).unwrap(), 6);
    assert_eq!(store.drop_oldest_audit_entries(4).unwrap(), 0);
    let summary = store.verify_audit_chain().unwrap().unwrap();
    assert_eq!(
        (summary.entries, summary.checkpoint_seq, summary.head_seq),
        (4, 6, 10)
    );
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(append(&store, 11), 11);
    assert!(store.verify_audit_chain().unwrap().is_ok());
    // Deleting the oldest kept entry without moving the checkpoint is still caught.
    delete_raw(&store, 7);
    assert_eq!(tamper_seq(&store), 7);
    // Dropping everything leaves an empty, consistent log that continues the chain.
    let (_dir2, store) = open();
    for i in 1..=3 {
        append(&store, i);
    }
    assert_eq!(store.drop_oldest_audit_entries(0).unwrap(), 3);
    assert!(store.verify_audit_chain().unwrap().is_ok());
    assert_eq!(append(&store, 4), 4);
    assert!(store.verify_audit_chain().unwrap().is_ok());
}
