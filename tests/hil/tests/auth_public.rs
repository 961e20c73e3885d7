//! Where a request comes from: first-run setup only from the local network, and
//! clients on public addresses refused unless `server.allow_public_clients`.
//!
//! The "public" client runs in a network namespace on 198.51.100.0/24 (TEST-NET-2),
//! linked to this host by a veth pair (`mecam_hil::netns`); the device listens on
//! `0.0.0.0`, so the same instance is reached over loopback (local) and over the link
//! (public). Needs root; skips with a message otherwise.

use http::StatusCode;
use mecam_hil::auth::{ADMIN_PASSWORD, ADMIN_USER};
use mecam_hil::netns::PublicPeer;
use mecam_hil::{Client, Device, Req, Response, skip_if_remote};
use serde_json::json;

const ARGS: &[&str] = &["--size", "160x120", "--fps", "5"];
const VIEWER_PASSWORD: &str = "violet harbor pickle engine 17";

fn public_peer(test: &str) -> Option<PublicPeer> {
    if skip_if_remote(test, "it needs a network namespace next to the device") {
        return None;
    }
    if let Some(why) = PublicPeer::unavailable() {
        eprintln!("skipped {test}: {why}");
        return None;
    }
    match PublicPeer::create() {
        Ok(peer) => Some(peer),
        Err(mecam_hil::Error::Unsupported(why)) => {
            eprintln!("skipped {test}: {why}");
            None
        }
        Err(e) => panic!("network namespace with a public address: {e}"),
    }
}

/// Sends `req` through `client` from inside the namespace.
async fn from_outside(peer: &PublicPeer, client: &Client, req: Req) -> Response {
    let what = format!("{} {} from {}", req.method(), req.path(), peer.public_ip());
    let client = client.clone();
    peer.run(move || async move { client.send(req).await })
        .await
        .expect("namespace thread")
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

#[track_caller]
fn assert_security_headers(res: &Response, what: &str) {
    assert_eq!(res.header("x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(
        res.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert!(
        res.header("content-security-policy").is_some(),
        "{what}: {:?}",
        res.headers
    );
}

#[test]
fn public_sources_are_refused_by_default() {
    mecam_hil::run(async {
        let Some(peer) = public_peer("public_sources_are_refused_by_default") else {
            return;
        };
        let device = Device::launcher()
            .listen("0.0.0.0:0")
            .args(ARGS)
            .start()
            .expect("device starts");
        let outside = device.client_at(peer.host_ip().into()).unwrap();

        // Not even health: a camera port-forwarded by mistake shows nothing.
        for path in ["/", "/style.css", "/api/v1/health", "/api/v1/setup"] {
            let res = from_outside(&peer, &outside, Req::get(path)).await;
            res.assert_error(StatusCode::FORBIDDEN, "public_address", path);
            assert_security_headers(&res, path);
        }
        // Nor can a stranger claim the camera before its owner.
        let res = from_outside(
            &peer,
            &outside,
            Req::post("/api/v1/setup")
                .json(&json!({ "username": "mallory", "password": ADMIN_PASSWORD })),
        )
        .await;
        res.assert_status(StatusCode::FORBIDDEN, "setup from a public address");
        assert!(
            ["public_address", "setup_not_local"].contains(&res.error_code().as_str()),
            "{}",
            res.text()
        );
        assert!(device.setup_needed().await.unwrap());

        // The owner, on the LAN, is not affected.
        let admin = device.admin().await.unwrap();
        admin
            .get("/api/v1/snapshot.jpg")
            .await
            .unwrap()
            .assert_status(StatusCode::OK, "snapshot over loopback");
        let (token, _) = admin.create_token("script", "admin").await.unwrap();

        // From outside, even valid credentials of every kind are refused.
        let session = admin.session().expect("cookie session").clone();
        let refused = [
            (
                outside.clone(),
                Req::post("/api/v1/session")
                    .json(&json!({ "username": ADMIN_USER, "password": ADMIN_PASSWORD })),
            ),
            (outside.with_session(session), Req::get("/api/v1/session")),
            (outside.with_bearer(&token), Req::get("/api/v1/session")),
            (
                outside.with_bearer(&token),
                Req::get("/api/v1/snapshot.jpg"),
            ),
            (
                outside.with_basic(ADMIN_USER, ADMIN_PASSWORD),
                Req::get("/api/v1/live.mjpg"),
            ),
        ];
        for (client, req) in refused {
            let what = format!("{} {} with credentials", req.method(), req.path());
            from_outside(&peer, &client, req).await.assert_error(
                StatusCode::FORBIDDEN,
                "public_address",
                &what,
            );
        }
        // Refusing them cost no lockout: the owner still logs in on the LAN.
        device
            .client()
            .unwrap()
            .login(ADMIN_USER, ADMIN_PASSWORD, None)
            .await
            .unwrap();
    });
}

#[test]
fn setup_stays_local_when_public_clients_are_allowed() {
    mecam_hil::run(async {
        let Some(peer) = public_peer("setup_stays_local_when_public_clients_are_allowed") else {
            return;
        };
        let device = Device::launcher()
            .listen("0.0.0.0:0")
            .config("[server]\nallow_public_clients = true\n")
            .args(ARGS)
            .start()
            .expect("device starts");
        let outside = device.client_at(peer.host_ip().into()).unwrap();

        let res = from_outside(&peer, &outside, Req::get("/api/v1/health")).await;
        res.assert_status(StatusCode::OK, "health from outside, allowed");
        let res = from_outside(&peer, &outside, Req::get("/api/v1/setup")).await;
        res.assert_status(StatusCode::OK, "GET setup from outside");
        assert_eq!(res.json().unwrap(), json!({ "needed": true }));
        let res = from_outside(
            &peer,
            &outside,
            Req::post("/api/v1/setup")
                .json(&json!({ "username": "mallory", "password": ADMIN_PASSWORD })),
        )
        .await;
        res.assert_error(
            StatusCode::FORBIDDEN,
            "setup_not_local",
            "setup from a public address with public clients allowed",
        );
        assert!(res.session_set_cookie().is_none());
        assert!(device.setup_needed().await.unwrap(), "nobody claimed it");

        // Set up on the LAN, the owner can then use the camera from outside.
        let admin = device.admin().await.unwrap();
        let res = from_outside(
            &peer,
            &outside,
            Req::post("/api/v1/session")
                .json(&json!({ "username": ADMIN_USER, "password": ADMIN_PASSWORD })),
        )
        .await;
        res.assert_status(StatusCode::OK, "login from outside");
        let away = outside.with_session(mecam_hil::Session::from_response(&res).unwrap());
        let res = from_outside(&peer, &away, Req::get("/api/v1/snapshot.jpg")).await;
        res.assert_status(StatusCode::OK, "snapshot from outside");
        // The CSRF check holds for the address the device was reached at.
        let res = from_outside(
            &peer,
            &away,
            Req::post("/api/v1/tokens").json(&json!({ "name": "away", "scope": "viewer" })),
        )
        .await;
        res.assert_status(StatusCode::CREATED, "cookie write with the outside Origin");
        let res = from_outside(
            &peer,
            &away,
            Req::post("/api/v1/tokens")
                .json(&json!({ "name": "away", "scope": "viewer" }))
                .origin(&admin.origin()),
        )
        .await;
        res.assert_error(
            StatusCode::FORBIDDEN,
            "csrf",
            "Origin of another address of the device",
        );

        // Lockout counts per source and per account, across sources.
        let viewer = admin
            .post_json(
                "/api/v1/users",
                &json!({ "username": "vic", "password": VIEWER_PASSWORD, "role": "viewer" }),
            )
            .await
            .unwrap();
        viewer.assert_status(StatusCode::CREATED, "create vic");
        let wrong = Req::post("/api/v1/session")
            .json(&json!({ "username": ADMIN_USER, "password": "not the password at all 1" }));
        let mut locked = None;
        for n in 1..=7 {
            let res = from_outside(&peer, &outside, wrong.clone()).await;
            if res.status == StatusCode::TOO_MANY_REQUESTS {
                assert!(n > 5, "locked after {} failures", n - 1);
                locked = Some(res);
                break;
            }
            res.assert_error(
                StatusCode::UNAUTHORIZED,
                "bad_credentials",
                "wrong password",
            );
        }
        let locked = locked.expect("a 429 within 7 failures");
        let wait: u64 = locked
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .expect("Retry-After");
        // Wait it out and fail once more, so the lock (now 2 s) outlasts the checks below.
        tokio::time::sleep(std::time::Duration::from_millis(wait * 1000 + 150)).await;
        let _ = from_outside(&peer, &outside, wrong.clone()).await;

        let login = |user: &str, password: &str| {
            Req::post("/api/v1/session").json(&json!({ "username": user, "password": password }))
        };
        // The account is locked wherever the attempt comes from...
        let res = admin
            .send(login(ADMIN_USER, ADMIN_PASSWORD).without_credentials())
            .await
            .unwrap();
        res.assert_error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            "the locked account from the LAN",
        );
        // ...and the source is locked whatever account it tries...
        let res = from_outside(&peer, &outside, login("vic", VIEWER_PASSWORD)).await;
        res.assert_error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            "another account from the locked source",
        );
        // ...but another account from another source is not.
        admin
            .send(login("vic", VIEWER_PASSWORD).without_credentials())
            .await
            .unwrap()
            .assert_status(StatusCode::OK, "another account from the LAN");
    });
}
