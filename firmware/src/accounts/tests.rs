//! The account flows end to end against a real index, with cheap Argon2 parameters.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::api::credentials::Presented;
use crate::auth::totp::{DIGITS, totp_at};

const OWNER_PW: &str = "violet tractor midnight 93";

struct Fixture {
    _dir: tempfile::TempDir,
    accounts: Accounts,
}

fn lan() -> IpAddr {
    "192.168.1.20".parse().unwrap()
}

fn from(ip: IpAddr) -> Origin {
    Origin {
        ip,
        user_agent: "test".into(),
    }
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let config = AuthConfig {
        session_idle: Duration::from_secs(1800),
        session_max: Duration::from_secs(86_400),
    };
    let accounts = Accounts::with_params(store, &config, Argon2Params::INSECURE_FAST).unwrap();
    Fixture {
        _dir: dir,
        accounts,
    }
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

async fn set_up(a: &Accounts) -> SetupDone {
    a.setup("Owner".into(), Password::new(OWNER_PW), from(lan()))
        .await
        .unwrap()
}

async fn session(a: &Accounts, done: &NewSession) -> Result<Principal, AccessError> {
    a.authenticate(
        Presented::Cookie(done.token.expose().to_owned()),
        lan(),
        false,
    )
    .await
}

#[test]
fn setup_happens_once_and_only_from_the_lan() {
    let f = fixture();
    run(async {
        let a = &f.accounts;
        let public: IpAddr = "203.0.113.9".parse().unwrap();
        let e = a
            .setup("x".into(), Password::new(OWNER_PW), from(public))
            .await
            .unwrap_err();
        assert!(matches!(e, AccessError::SetupNotLocal), "{e}");
        assert!(a.setup_needed().unwrap());

        let e = a
            .setup("Owner".into(), Password::new("password1234"), from(lan()))
            .await
            .unwrap_err();
        assert!(matches!(e, AccessError::WeakPassword(_)), "{e}");

        let done = set_up(a).await;
        assert!(!done.recovery_key.is_empty());
        let me = session(a, &done.session).await.unwrap();
        assert_eq!(me.role, Role::Admin);
        assert!(
            me.vault.is_some(),
            "the owner's session holds the vault key"
        );
        assert!(a.sealing_key().unwrap().is_some());

        let e = a
            .setup("Other".into(), Password::new(OWNER_PW), from(lan()))
            .await
            .unwrap_err();
        assert!(matches!(e, AccessError::AlreadySetUp), "{e}");
    });
}

#[test]
fn wrong_password_and_unknown_user_look_the_same_then_lock_out() {
    let f = fixture();
    run(async {
        let a = &f.accounts;
        set_up(a).await;
        let runs = || a.inner.hasher.argon2_runs();
        let before = runs();
        let wrong = a
            .login(
                "owner".into(),
                Password::new("nope nope nope"),
                None,
                from(lan()),
            )
            .await
            .unwrap_err();
        let after_wrong = runs();
        let unknown = a
            .login(
                "nobody".into(),
                Password::new("nope nope nope"),
                None,
                from(lan()),
            )
            .await
            .unwrap_err();
        assert_eq!(wrong.to_string(), unknown.to_string());
        assert_eq!(
            after_wrong - before,
            1,
            "a wrong password costs one Argon2id"
        );
        assert_eq!(runs() - after_wrong, 1, "so does an unknown user");

        // Guesses from many addresses lock the account (five free failures, then
        // 1 s doubling): with the first wrong password above, six in all.
        for i in 0..5 {
            let ip: IpAddr = format!("10.0.0.{}", 10 + i).parse().unwrap();
            let e = a
                .login("owner".into(), Password::new("nope"), None, from(ip))
                .await
                .unwrap_err();
            assert!(matches!(e, AccessError::BadCredentials), "{e}");
        }
        let e = a
            .login("owner".into(), Password::new(OWNER_PW), None, from(lan()))
            .await
            .unwrap_err();
        let AccessError::TooManyAttempts(retry) = e else {
            panic!("expected the account to be locked, got {e}");
        };
        assert!(retry.secs() >= 1);
        // And one address guessing at many accounts is locked as a source.
        for i in 0..8 {
            let _ = a
                .login(format!("user{i}"), Password::new("nope"), None, from(lan()))
                .await;
        }
        let e = a
            .login("someone".into(), Password::new("x"), None, from(lan()))
            .await
            .unwrap_err();
        assert!(matches!(e, AccessError::TooManyAttempts(_)), "{e}");
        let audit = a
            .audit(AuditFilter {
                limit: 50,
                ..Default::default()
            })
            .await
            .unwrap();
        let failed = audit
            .entries
            .iter()
            .filter(|e| e.action == "login.failed")
            .count();
        assert!(failed >= 10, "{failed} failures audited");
        assert!(audit.chain.is_ok());
    });
}

#[test]
fn logout_ends_the_session_and_wipes_its_key() {
    let f = fixture();
    run(async {
        let a = &f.accounts;
        let done = set_up(a).await;
        let login = a
            .login("OWNER".into(), Password::new(OWNER_PW), None, from(lan()))
            .await
            .unwrap();
        let me = session(a, &login).await.unwrap();
        assert!(me.vault.is_some());
        a.logout(&me, lan()).await.unwrap();
        assert!(matches!(
            session(a, &login).await,
            Err(AccessError::Unauthenticated)
        ));
        assert!(!a.inner.unlocked.lock().unwrap().contains_key(me_key(&me)));
        // The setup session is another session and still works.
        assert!(session(a, &done.session).await.is_ok());
    });
}

fn me_key(p: &Principal) -> &[u8; 32] {
    match &p.via {
        Via::Session(h) => h.as_bytes(),
        other => panic!("not a session: {other:?}"),
    }
}

#[test]
fn tokens_act_with_at_most_their_scope_until_revoked() {
    let f = fixture();
    run(async {
        let a = &f.accounts;
        let done = set_up(a).await;
        let me = session(a, &done.session).await.unwrap();
        let made = a
            .create_token(&me, lan(), "home-assistant".into(), Role::Viewer)
            .await
            .unwrap();
        let bearer = Presented::Bearer(made.token.expose().to_owned());
        let p = a.authenticate(bearer, lan(), false).await.unwrap();
        assert_eq!(p.role, Role::Viewer);
        assert!(p.vault.is_none(), "a token never opens recordings");
        // As a Basic password too, where camera clients need it.
        let basic = Presented::Basic {
            user: "anything".into(),
            password: Zeroizing::new(made.token.expose().to_owned()),
        };
        assert!(a.authenticate(basic, lan(), true).await.is_ok());

        a.revoke_token(&me, lan(), made.row.id.0).await.unwrap();
        let bearer = Presented::Bearer(made.token.expose().to_owned());
        assert!(matches!(
            a.authenticate(bearer, lan(), false).await,
            Err(AccessError::Unauthenticated)
        ));
    });
}

#[test]
fn basic_with_a_password_only_where_allowed() {
    let f = fixture();
    run(async {
        let a = &f.accounts;
        set_up(a).await;
        let basic = || Presented::Basic {
            user: "owner".into(),
            password: Zeroizing::new(OWNER_PW.to_owned()),
        };
        assert!(a.authenticate(basic(), lan(), false).await.is_err());
        let p = a.authenticate(basic(), lan(), true).await.unwrap();
        assert!(matches!(p.via, Via::Basic));
        // The second request is served from the cache: no more Argon2 work.
        let runs = a.inner.hasher.argon2_runs();
        a.authenticate(basic(), lan(), true).await.unwrap();
        assert_eq!(a.inner.hasher.argon2_runs(), runs);
    });
}

#[test]
fn totp_is_required_after_enrolment_and_codes_work_once() {
    let f = fixture();
    run(async {
        let a = &f.accounts;
        let done = set_up(a).await;
        let me = session(a, &done.session).await.unwrap();
        let enrolment = a.begin_totp(&me).unwrap();
        let secret = TotpSecret::from_base32(&enrolment.secret_base32).unwrap();
        let now = now_us() / 1_000_000;
        let code = |t: u64| format!("{:06}", totp_at(&secret, t, DIGITS));
        assert!(matches!(
            a.confirm_totp(&me, lan(), "000000".into()).await,
            Err(AccessError::TotpInvalid)
        ));
        let recovery = a.confirm_totp(&me, lan(), code(now)).await.unwrap();
        assert_eq!(recovery.len(), 10);

        let login = |totp: Option<String>| {
            a.login("owner".into(), Password::new(OWNER_PW), totp, from(lan()))
        };
        assert!(matches!(login(None).await, Err(AccessError::TotpRequired)));
        // The enrolment code's step is used up: only the next step's code works.
        assert!(matches!(
            login(Some(code(now))).await,
            Err(AccessError::TotpInvalid)
        ));
        assert!(login(Some(code(now + 30))).await.is_ok());
        let rc = recovery[0].expose().to_owned();
        assert!(login(Some(rc.clone())).await.is_ok());
        assert!(matches!(
            login(Some(rc)).await,
            Err(AccessError::TotpInvalid)
        ));
    });
}

#[test]
fn users_share_the_vault_and_password_changes_rewrap_it() {
    let f = fixture();
    run(async {
        let a = &f.accounts;
        let done = set_up(a).await;
        let me = session(a, &done.session).await.unwrap();
        let viewer_pw = "maple orbit lantern 4417";
        a.create_user(
            &me,
            lan(),
            "Kid".into(),
            Password::new(viewer_pw),
            Role::Viewer,
        )
        .await
        .unwrap();
        let kid = a
            .login("kid".into(), Password::new(viewer_pw), None, from(lan()))
            .await
            .unwrap();
        let kid_p = session(a, &kid).await.unwrap();
        assert_eq!(kid_p.role, Role::Viewer);
        let (k1, k2) = (kid_p.vault.as_ref().unwrap(), me.vault.as_ref().unwrap());
        assert_eq!(k1.public_key(), k2.public_key(), "one vault, two wraps");

        // A token cannot add users: it has no vault key to share.
        let tok = a
            .create_token(&me, lan(), "script".into(), Role::Admin)
            .await
            .unwrap();
        let tok_p = a
            .authenticate(Presented::Bearer(tok.token.expose().into()), lan(), false)
            .await
            .unwrap();
        let e = a
            .create_user(
                &tok_p,
                lan(),
                "x".into(),
                Password::new(viewer_pw),
                Role::Viewer,
            )
            .await
            .unwrap_err();
        assert!(matches!(e, AccessError::Forbidden(_)), "{e}");

        // The kid changes their password: the old one stops working everywhere.
        let new_pw = "cobalt walrus picnic 5521";
        let e = a
            .change_own_password(&kid_p, lan(), Password::new("wrong"), Password::new(new_pw))
            .await
            .unwrap_err();
        assert!(matches!(e, AccessError::BadCredentials), "{e}");
        a.change_own_password(
            &kid_p,
            lan(),
            Password::new(viewer_pw),
            Password::new(new_pw),
        )
        .await
        .unwrap();
        assert!(
            a.login("kid".into(), Password::new(viewer_pw), None, from(lan()))
                .await
                .is_err()
        );
        let again = a
            .login("kid".into(), Password::new(new_pw), None, from(lan()))
            .await
            .unwrap();
        assert!(session(a, &again).await.unwrap().vault.is_some());

        // The last admin cannot be demoted or deleted; the viewer can be deleted.
        let e = a
            .update_user(&me, lan(), "owner".into(), Some(Role::Viewer), None)
            .await
            .unwrap_err();
        assert!(matches!(e, AccessError::LastAdmin(_)), "{e}");
        a.delete_user(&me, lan(), "kid".into()).await.unwrap();
        assert!(matches!(
            session(a, &again).await,
            Err(AccessError::Unauthenticated)
        ));
        let record = a.inner.vault_record().unwrap();
        assert_eq!(record.users().collect::<Vec<_>>(), vec!["owner"]);
        // Managing another user leaves the admin's own session and key alone.
        let still = session(a, &done.session).await.unwrap();
        assert!(
            still.vault.is_some(),
            "the admin's key went with the kid's sessions"
        );
    });
}

#[test]
fn accounts_survive_a_restart_but_vault_keys_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let config = AuthConfig {
        session_idle: Duration::from_secs(1800),
        session_max: Duration::from_secs(86_400),
    };
    let open = || {
        let store = Arc::new(Store::open(dir.path()).unwrap());
        Accounts::with_params(store, &config, Argon2Params::INSECURE_FAST).unwrap()
    };
    let token = run(async {
        let a = open();
        let done = set_up(&a).await;
        done.session.token.expose().to_owned()
    });
    run(async {
        let a = open();
        assert!(!a.setup_needed().unwrap());
        assert!(a.sealing_key().unwrap().is_some());
        let p = a
            .authenticate(Presented::Cookie(token), lan(), false)
            .await
            .unwrap();
        assert!(p.vault.is_none(), "keys live in memory only");
    });
}

#[test]
fn raised_parameters_upgrade_hashes_at_the_next_login() {
    let dir = tempfile::tempdir().unwrap();
    let config = AuthConfig {
        session_idle: Duration::from_secs(1800),
        session_max: Duration::from_secs(86_400),
    };
    let store = Arc::new(Store::open(dir.path()).unwrap());
    run(async {
        let old = Accounts::with_params(Arc::clone(&store), &config, Argon2Params::INSECURE_FAST)
            .unwrap();
        set_up(&old).await;
    });
    let raised = Argon2Params {
        m_cost_kib: 64,
        t_cost: 2,
        p_cost: 1,
    };
    run(async {
        let new = Accounts::with_params(Arc::clone(&store), &config, raised).unwrap();
        let login = new
            .login("owner".into(), Password::new(OWNER_PW), None, from(lan()))
            .await
            .unwrap();
        assert!(session(&new, &login).await.unwrap().vault.is_some());
        let user = store.user("owner").unwrap().unwrap();
        let hash = PasswordHash::from_phc(user.password_hash);
        assert_eq!(hash.params(), Some(raised));
        let record = new.inner.vault_record().unwrap();
        assert_eq!(record.params_of("owner").unwrap(), raised);
        // And the new hashes work.
        new.login("owner".into(), Password::new(OWNER_PW), None, from(lan()))
            .await
            .unwrap();
    });
}
