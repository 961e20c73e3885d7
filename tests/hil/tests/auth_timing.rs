//! Account rules that take time to see: brute-force lockout (login and Basic) and
//! idle session expiry. Each test has a device of its own: lockout counts per source
//! address, and every test here comes from 127.0.0.1.

use std::time::{Duration, Instant};

use http::StatusCode;
use mecam_hil::auth::{ADMIN_PASSWORD, ADMIN_USER};
use mecam_hil::{Client, Device, Response, skip_if_remote};

const ARGS: &[&str] = &["--size", "160x120", "--fps", "5"];
const WRONG: &str = "not the password at all 1";
/// The contract: five failures are free.
const FREE_FAILURES: usize = 5;

/// Checks a 429 and returns its `Retry-After` in seconds (at least 1).
#[track_caller]
fn retry_after(res: &Response, what: &str) -> u64 {
    res.assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", what);
    let secs = res
        .header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or_else(|| {
            panic!(
                "{what}: 429 without a numeric Retry-After: {:?}",
                res.headers
            )
        });
    assert!(secs >= 1, "{what}: Retry-After {secs}");
    assert!(
        secs <= 15 * 60,
        "{what}: Retry-After {secs} is over the 15 min cap"
    );
    secs
}

/// Sends failing attempts until one is refused with 429; checks the free ones got a
/// plain 401 and that the lock came right after them. Returns the 429.
async fn fail_until_locked<F, Fut>(mut attempt: F, what: &str) -> Response
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Response>,
{
    for n in 1..=FREE_FAILURES + 2 {
        let res = attempt().await;
        if res.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(
                n > FREE_FAILURES,
                "{what}: locked after {} failures; {FREE_FAILURES} are free",
                n - 1
            );
            return res;
        }
        assert_eq!(
            res.status,
            StatusCode::UNAUTHORIZED,
            "{what}: failure {n}: {}",
            res.text()
        );
    }
    panic!("{what}: still no 429 after {} failures", FREE_FAILURES + 2);
}

/// After a first 429, lengthens the lock so the next checks do not race its end:
/// waits it out, fails once more (the lock doubles), and returns when locked again.
async fn lock_for_two_seconds<F, Fut>(first: &Response, mut attempt: F, what: &str)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Response>,
{
    let wait = retry_after(first, what);
    tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(150)).await;
    // Checked again (401), and failed: locked anew, for longer. Whether that answer is
    // already the 429 is the service's choice.
    let res = attempt().await;
    assert!(
        matches!(
            res.status,
            StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
        ),
        "{what}: after the lock: {} {}",
        res.status,
        res.text()
    );
}

#[test]
fn repeated_login_failures_lock_out_even_the_right_password() {
    mecam_hil::run(async {
        if skip_if_remote("repeated_login_failures_lock_out", "it locks the account") {
            return;
        }
        let device = Device::launch(ARGS).expect("device starts");
        let admin = device.admin().await.unwrap();
        let client = admin.anonymous();
        let wrong = || {
            let client = client.clone();
            async move { client.try_login(ADMIN_USER, WRONG, None).await.unwrap() }
        };

        let locked = fail_until_locked(wrong, "wrong passwords").await;
        lock_for_two_seconds(&locked, wrong, "wrong passwords").await;

        // Locked: the right password is refused too, before any password work.
        let started = Instant::now();
        let res = client
            .try_login(ADMIN_USER, ADMIN_PASSWORD, None)
            .await
            .unwrap();
        let wait = retry_after(&res, "the right password while locked");
        assert!(res.session_set_cookie().is_none());
        // Existing sessions are not affected: the lock is on logging in.
        assert_eq!(
            admin.get("/api/v1/session").await.unwrap().status,
            StatusCode::OK
        );

        // Once the lock is over, the right password gets in, and clears the count.
        let left = Duration::from_secs(wait).saturating_sub(started.elapsed());
        tokio::time::sleep(left + Duration::from_millis(150)).await;
        client
            .login(ADMIN_USER, ADMIN_PASSWORD, None)
            .await
            .expect("the right password after the lock");
        let res = client.try_login(ADMIN_USER, WRONG, None).await.unwrap();
        res.assert_error(
            StatusCode::UNAUTHORIZED,
            "bad_credentials",
            "a success starts the count again",
        );

        // Failures against unknown names count too: they lock the source, so guessing
        // names is no way around it, and nothing tells a real name from a made-up one.
        let mut n = 0;
        let unknown = || {
            n += 1;
            let client = client.clone();
            let user = format!("nobody{n}");
            async move { client.try_login(&user, WRONG, None).await.unwrap() }
        };
        let locked = fail_until_locked(unknown, "unknown users").await;
        retry_after(&locked, "unknown users");
    });
}

#[test]
fn basic_auth_failures_on_the_snapshot_count_towards_the_lockout() {
    mecam_hil::run(async {
        if skip_if_remote("basic_auth_failures", "it locks the account") {
            return;
        }
        let device = Device::launch(ARGS).expect("device starts");
        let admin = device.admin().await.unwrap();
        let wrong_basic = admin.with_basic(ADMIN_USER, WRONG);
        let wrong = || {
            let client = wrong_basic.clone();
            async move { client.get("/api/v1/snapshot.jpg").await.unwrap() }
        };

        let locked = fail_until_locked(wrong, "wrong Basic passwords").await;
        lock_for_two_seconds(&locked, wrong, "wrong Basic passwords").await;

        // Locked for Basic and for the login form alike, even with the right password.
        let started = Instant::now();
        let res = admin
            .with_basic(ADMIN_USER, ADMIN_PASSWORD)
            .get("/api/v1/snapshot.jpg")
            .await
            .unwrap();
        retry_after(&res, "right Basic password while locked");
        let res = admin
            .try_login(ADMIN_USER, ADMIN_PASSWORD, None)
            .await
            .unwrap();
        let wait = retry_after(&res, "login form while Basic is locked");

        let left = Duration::from_secs(wait).saturating_sub(started.elapsed());
        tokio::time::sleep(left + Duration::from_millis(150)).await;
        let res = admin
            .with_basic(ADMIN_USER, ADMIN_PASSWORD)
            .get("/api/v1/snapshot.jpg")
            .await
            .unwrap();
        res.assert_status(StatusCode::OK, "right Basic password after the lock");
    });
}

#[test]
fn idle_sessions_expire_and_used_ones_stay() {
    mecam_hil::run(async {
        if skip_if_remote("idle_sessions_expire", "it sets the idle timeout") {
            return;
        }
        const IDLE: Duration = Duration::from_secs(10);
        let device = Device::launcher()
            .config(&format!("[auth]\nsession_idle_secs = {}\n", IDLE.as_secs()))
            .args(ARGS)
            .start()
            .expect("device starts");
        let admin = device.admin().await.unwrap();
        let anonymous = admin.anonymous();
        let active = anonymous
            .login(ADMIN_USER, ADMIN_PASSWORD, None)
            .await
            .unwrap();
        let idle = anonymous
            .login(ADMIN_USER, ADMIN_PASSWORD, None)
            .await
            .unwrap();
        let started = Instant::now();
        let status = |client: &Client| {
            let client = client.clone();
            async move { client.get("/api/v1/session").await.unwrap() }
        };

        // Used every 4 s, a session outlives the idle timeout...
        while started.elapsed() < IDLE + Duration::from_secs(2) {
            tokio::time::sleep(Duration::from_secs(4)).await;
            let res = status(&active).await;
            res.assert_status(
                StatusCode::OK,
                &format!("a session used every 4 s, at {:?}", started.elapsed()),
            );
        }
        // ...while one left alone for longer has expired.
        assert!(started.elapsed() >= IDLE + Duration::from_secs(2));
        status(&idle).await.assert_error(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "a session idle for 12 s with session_idle_secs = 10",
        );
        assert_eq!(
            idle.get("/api/v1/snapshot.jpg").await.unwrap().status,
            StatusCode::UNAUTHORIZED
        );
        // Expired means gone: using it does not bring it back.
        assert_eq!(status(&idle).await.status, StatusCode::UNAUTHORIZED);
        assert_eq!(status(&active).await.status, StatusCode::OK);
    });
}
