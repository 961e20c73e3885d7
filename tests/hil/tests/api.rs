//! The HTTP surface a browser or script meets: protocol negotiation, errors, headers.

use std::time::Duration;

use http::{Method, StatusCode, Version};
use mecam_hil::{Device, Error, HttpVersion, plain_http_get, raw};

const ARGS: &[&str] = &["--size", "320x240", "--fps", "10"];

fn device() -> Device {
    Device::from_env_or_launch(ARGS).expect("device starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_version_uptime_and_a_running_camera() {
    let device = device();
    let client = device.client().unwrap();
    let health = client
        .wait_running(Duration::from_secs(10))
        .await
        .expect("camera reaches `running`");

    let version = health["version"].as_str().expect("version is a string");
    assert!(
        !version.is_empty() && version.split('.').all(|p| p.parse::<u32>().is_ok()),
        "version {version:?} is not MAJOR.MINOR.PATCH"
    );
    assert!(health["uptime_secs"].is_u64(), "uptime_secs: {health}");
    assert_eq!(health["status"], "ok", "{health}");

    // Uptime counts from start, and after two seconds of frames the camera has a rate.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let later = client.health().await.unwrap();
    assert!(
        later["uptime_secs"].as_u64() > health["uptime_secs"].as_u64(),
        "uptime did not advance: {health} then {later}"
    );
    assert_eq!(later["camera"]["state"], "running", "{later}");
    let fps = later["camera"]["fps_measured"]
        .as_f64()
        .expect("camera.fps_measured is a number");
    assert!(
        fps > 0.0,
        "a running camera measures its frame rate: {later}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_page_shows_the_live_stream() {
    let device = device();
    let client = device.client().unwrap();
    let page = client.get("/").await.unwrap();
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.header("content-type")
            .unwrap_or("")
            .starts_with("text/html"),
        "{:?}",
        page.headers
    );
    let html = page.text();
    // A shell: its script (no inline script, the CSP forbids it) logs in or sets up,
    // then shows the live stream.
    assert!(html.contains("src=\"/app.js\""), "{html}");
    assert!(html.contains("href=\"/style.css\""), "{html}");

    // What the page links to must exist too, before anyone has logged in.
    let css = client.get("/style.css").await.unwrap();
    assert_eq!(css.status, StatusCode::OK);
    assert!(
        css.header("content-type")
            .unwrap_or("")
            .starts_with("text/css")
    );
    let js = client.get("/app.js").await.unwrap();
    assert_eq!(js.status, StatusCode::OK);
    assert!(
        js.header("content-type")
            .unwrap_or("")
            .starts_with("text/javascript"),
        "{:?}",
        js.headers
    );
    assert!(
        js.text().contains("/api/v1/live.mjpg"),
        "the script shows the stream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_is_chosen_by_alpn_and_http1_still_works() {
    let device = device();
    let client = device.client().unwrap();

    let mut h2 = client.connect(HttpVersion::Negotiate).await.unwrap();
    assert_eq!(
        h2.alpn(),
        Some(&b"h2"[..]),
        "server should pick h2 when offered"
    );
    for _ in 0..2 {
        let res = h2.get("/api/v1/health").await.unwrap();
        assert_eq!((res.status, res.version), (StatusCode::OK, Version::HTTP_2));
        res.json().expect("health over h2 is JSON");
    }

    let mut h1 = client.connect(HttpVersion::Http1).await.unwrap();
    assert_eq!(h1.alpn(), Some(&b"http/1.1"[..]));
    for _ in 0..2 {
        let res = h1.get("/api/v1/health").await.unwrap();
        assert_eq!(
            (res.status, res.version),
            (StatusCode::OK, Version::HTTP_11)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_get_a_json_404() {
    let device = device();
    let res = device
        .admin()
        .await
        .unwrap()
        .get("/api/v1/nope")
        .await
        .unwrap();
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(res.header("content-type"), Some("application/json"));
    let body = res.json().unwrap();
    assert_eq!(body["error"]["code"], "not_found", "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_methods_on_known_paths_get_405() {
    let device = device();
    // Logged in, with the CSRF headers a page sends: the method is what is wrong.
    let client = device.admin().await.unwrap();
    for path in ["/api/v1/health", "/api/v1/live.mjpg", "/"] {
        let res = client.request(Method::POST, path).await.unwrap();
        assert_eq!(res.status, StatusCode::METHOD_NOT_ALLOWED, "POST {path}");
        assert!(
            res.header("allow").unwrap_or("").contains("GET"),
            "405 should say what is allowed: {:?}",
            res.headers
        );
        assert_eq!(res.json().unwrap()["error"]["code"], "method_not_allowed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_headers_get_431() {
    let device = device();
    let client = device.client().unwrap();
    let request = |header_bytes: usize| {
        format!(
            "GET /api/v1/health HTTP/1.1\r\nHost: {}\r\nX-Filler: {}\r\nConnection: close\r\n\r\n",
            client.authority(),
            "a".repeat(header_bytes)
        )
    };
    let timeout = Duration::from_secs(10);

    // Control: a large but allowed head is served, so a 431 below is about the size.
    let mut conn = client.raw().await.unwrap();
    let head = raw::exchange(&mut conn, request(4 * 1024).as_bytes(), timeout)
        .await
        .unwrap();
    assert_eq!(raw::status_of(&head), Some(200), "{head}");

    let mut conn = client.raw().await.unwrap();
    let head = raw::exchange(&mut conn, request(9 * 1024).as_bytes(), timeout)
        .await
        .unwrap();
    assert_eq!(raw::status_of(&head), Some(431), "{head}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_fps_query_is_a_json_400() {
    let device = device();
    let client = device.admin().await.unwrap();
    for query in ["fps=abc", "fps=0", "fps=1000"] {
        let res = client
            .get(&format!("/api/v1/live.mjpg?{query}"))
            .await
            .unwrap();
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{query}");
        let body = res.json().unwrap();
        assert_eq!(body["error"]["code"], "bad_query", "{body}");
        let message = body["error"]["message"].as_str().unwrap_or("");
        assert!(
            message.contains("fps"),
            "message should name the parameter: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_headers_are_on_every_response() {
    let device = device();
    let anonymous = device.client().unwrap();
    let admin = device.admin().await.unwrap();
    for (client, path, status) in [
        (&anonymous, "/", StatusCode::OK),
        (&anonymous, "/api/v1/health", StatusCode::OK),
        (&anonymous, "/api/v1/snapshot.jpg", StatusCode::UNAUTHORIZED),
        (&admin, "/api/v1/snapshot.jpg", StatusCode::OK),
        // Unknown paths need credentials too (401 first), so they reveal nothing.
        (&anonymous, "/api/v1/nope", StatusCode::UNAUTHORIZED),
        (&admin, "/api/v1/nope", StatusCode::NOT_FOUND),
    ] {
        let res = client.get(path).await.unwrap();
        assert_eq!(res.status, status, "{path}");
        let csp = res.header("content-security-policy").unwrap_or("");
        assert!(
            csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{path}: CSP {csp:?}"
        );
        assert!(!csp.contains("'unsafe-inline'"), "{path}: CSP {csp:?}");
        assert_eq!(res.header("x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(
            res.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(res.header("referrer-policy"), Some("no-referrer"), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_refuses_a_certificate_other_than_the_logged_one() {
    let device = device();
    // Control: the logged fingerprint is accepted.
    let good = device.client().unwrap();
    assert_eq!(
        good.get("/api/v1/health").await.unwrap().status,
        StatusCode::OK
    );

    let impostor = "00:".repeat(31) + "00";
    let host = device.addr().ip().to_string();
    let pinned_elsewhere = mecam_hil::Client::new(device.addr(), &host, &impostor).unwrap();
    match pinned_elsewhere.get("/api/v1/health").await {
        Err(Error::Tls(_)) => {}
        other => panic!("expected a TLS error for a wrong fingerprint, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_only_redirects_to_https() {
    let device = if mecam_hil::remote_configured() {
        let device = device();
        if device.redirect_addr().is_none() {
            eprintln!("skipped: set MECAM_HIL_HTTP_URL to test the remote device's redirect port");
            return;
        }
        device
    } else {
        launch_with_redirect()
    };
    let http = device.redirect_addr().expect("redirect port logged");
    let https_port = device.addr().port();
    let host = match http.ip() {
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    // The standard port is left out of the URL, as browsers write it.
    let https_authority = if https_port == 443 {
        host.clone()
    } else {
        format!("{host}:{https_port}")
    };

    let res = plain_http_get(
        http,
        &format!("{host}:{}", http.port()),
        "/api/v1/health?x=1",
    )
    .await
    .unwrap();
    assert_eq!(res.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        res.header("location"),
        Some(format!("https://{https_authority}/api/v1/health?x=1").as_str())
    );
    assert!(
        res.body.is_empty(),
        "a redirect carries no content: {:?}",
        res.body
    );

    // Following it lands on the real endpoint.
    let followed = device
        .client()
        .unwrap()
        .get("/api/v1/health?x=1")
        .await
        .unwrap();
    assert_eq!(followed.status, StatusCode::OK);
}

/// Both ports on 0: the kernel picks two free ones and the log names them.
fn launch_with_redirect() -> Device {
    let mut args = ARGS.to_vec();
    args.extend(["--http-redirect-listen", "127.0.0.1:0"]);
    Device::launch(&args).expect("device with a redirect port starts")
}
