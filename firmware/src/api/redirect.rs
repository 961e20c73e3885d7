//! The optional plain-HTTP port: every request is redirected to HTTPS, nothing else.

use std::convert::Infallible;
use std::rc::Rc;

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::AppState;
use super::body::{self, ResponseBody};
use super::routes::secure_headers;
use crate::runtime;

pub async fn serve_redirect(listener: TcpListener, https_port: u16, state: Rc<AppState>) {
    let mut shutdown = state.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        };
        let state = Rc::clone(&state);
        runtime::spawn(async move {
            let _open = state.connections.enter();
            let service =
                service_fn(
                    move |req| async move { Ok::<_, Infallible>(redirect(&req, https_port)) },
                );
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .max_buf_size(8 * 1024)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            let _ = conn.await;
        });
    }
}

fn redirect<B>(req: &Request<B>, https_port: u16) -> Response<ResponseBody> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(host_without_port)
        .unwrap_or("mecam.local");
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let location = if https_port == 443 {
        format!("https://{host}{path}")
    } else {
        format!("https://{host}:{https_port}{path}")
    };
    let mut res = Response::new(body::empty());
    *res.status_mut() = StatusCode::PERMANENT_REDIRECT;
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    secure_headers(res.headers_mut());
    res
}

/// The host part of a `Host` header, if it is a plain name or address: anything else
/// could smuggle a different target into the redirect.
fn host_without_port(host: &str) -> Option<&str> {
    let name = if host.starts_with('[') {
        &host[..=host.find(']')?]
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    ok.then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(host: Option<&str>, uri: &str, port: u16) -> String {
        let mut req = Request::builder().uri(uri);
        if let Some(h) = host {
            req = req.header("host", h);
        }
        let res = redirect(&req.body(()).unwrap(), port);
        assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT);
        res.headers()[header::LOCATION].to_str().unwrap().to_owned()
    }

    #[test]
    fn redirects_to_the_same_host_on_the_https_port() {
        assert_eq!(
            location(Some("192.168.1.9:8080"), "/api/v1/health?x=1", 8443),
            "https://192.168.1.9:8443/api/v1/health?x=1"
        );
        assert_eq!(
            location(Some("mecam.local"), "/", 443),
            "https://mecam.local/"
        );
        assert_eq!(
            location(Some("[fe80::1]:80"), "/", 443),
            "https://[fe80::1]/"
        );
    }

    #[test]
    fn hostile_hosts_fall_back_to_the_device_name() {
        assert_eq!(location(None, "/", 443), "https://mecam.local/");
        assert_eq!(
            location(Some("evil.com/x?"), "/", 443),
            "https://mecam.local/"
        );
        assert_eq!(
            location(Some("a@evil.com"), "/", 443),
            "https://mecam.local/"
        );
    }
}
