//! Reading JSON request bodies: a size limit, the right content type, and errors that
//! name the field that is wrong.

use http::header;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::de::DeserializeOwned;

use super::body::ResponseBody;
use super::routes::error;

/// Largest JSON body any endpoint takes. Requests here are a few short fields.
pub const MAX_JSON_BODY: usize = 16 * 1024;

/// Why a body was refused: the status and message the client gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyRejection {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl BodyRejection {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn into_response(self) -> http::Response<ResponseBody> {
        error(self.status, self.code, self.message)
    }
}

/// Reads and parses a JSON body of at most `limit` bytes into `T`. Use
/// `#[serde(deny_unknown_fields)]` on `T` so a misspelt field is refused, not ignored.
pub async fn read_json<T: DeserializeOwned>(
    req: Request<Incoming>,
    limit: usize,
) -> Result<T, BodyRejection> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(BodyRejection::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with `Content-Type: application/json`",
        ));
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    let bytes = match Limited::new(req.into_body(), limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large(limit)),
        Err(e) => {
            return Err(BodyRejection::new(
                StatusCode::BAD_REQUEST,
                "bad_body",
                format!("the request body could not be read: {e}"),
            ));
        }
    };
    parse_json(&bytes)
}

/// Parses `bytes` into `T`, naming the field at fault. Separate from [`read_json`] so
/// it can be fuzzed and tested without a connection.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyRejection> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = if inner.is_syntax() || inner.is_eof() {
            format!("the body is not valid JSON: {inner}")
        } else if path.is_empty() || path == "." {
            format!("the body is not what this endpoint takes: {inner}")
        } else {
            format!("field `{path}`: {inner}")
        };
        BodyRejection::new(StatusCode::BAD_REQUEST, "bad_json", message)
    })?;
    Ok(value)
}

fn too_large(limit: usize) -> BodyRejection {
    BodyRejection::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the request body is larger than {limit} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Login {
        username: String,
        password: String,
        totp: Option<String>,
    }

    #[test]
    fn wrong_type_names_the_field() {
        let e = parse_json::<Login>(br#"{"username": 5, "password": "x"}"#).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("`username`"), "{}", e.message);
    }

    #[test]
    fn unknown_and_missing_fields_are_named() {
        let e =
            parse_json::<Login>(br#"{"username":"a","password":"b","admin":true}"#).unwrap_err();
        assert!(e.message.contains("admin"), "{}", e.message);
        let e = parse_json::<Login>(br#"{"username":"a"}"#).unwrap_err();
        assert!(e.message.contains("password"), "{}", e.message);
    }

    #[test]
    fn broken_json_says_so() {
        let e = parse_json::<Login>(b"{\"username\":").unwrap_err();
        assert!(e.message.contains("not valid JSON"), "{}", e.message);
    }
}
