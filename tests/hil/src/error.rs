use std::fmt;
use std::io;

/// Everything that can go wrong talking to or launching a device.
#[derive(Debug)]
pub enum Error {
    Io(io::Error),
    Tls(rustls::Error),
    Http(hyper::Error),
    /// A request or wait did not finish in time; names what was being waited for.
    Timeout(String),
    /// The peer answered, but not in the shape the API promises.
    Protocol(String),
    /// The local service could not be started or did not come up.
    Launch(String),
    /// A JPEG that does not decode.
    Jpeg(String),
    /// Process control asked of a device that runs elsewhere.
    NotLocal,
    /// This machine cannot do what the test needs (not root, a tool missing).
    Unsupported(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "I/O error: {e}"),
            Self::Tls(e) => write!(f, "TLS error: {e}"),
            Self::Http(e) => write!(f, "HTTP error: {e}"),
            Self::Timeout(what) => write!(f, "timed out: {what}"),
            Self::Protocol(what) => write!(f, "protocol error: {what}"),
            Self::Launch(what) => write!(f, "cannot launch mecam: {what}"),
            Self::Jpeg(what) => write!(f, "bad JPEG: {what}"),
            Self::NotLocal => f.write_str("the device is remote; this needs a local process"),
            Self::Unsupported(why) => write!(f, "not possible here: {why}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            Self::Tls(e) => Some(e),
            Self::Http(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        // tokio-rustls reports handshake failures as I/O errors wrapping rustls::Error;
        // unwrap them so callers can tell a pinning failure from a network one.
        match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(tls) => Self::Tls(tls.clone()),
            None => Self::Io(e),
        }
    }
}

impl From<rustls::Error> for Error {
    fn from(e: rustls::Error) -> Self {
        Self::Tls(e)
    }
}

impl From<hyper::Error> for Error {
    fn from(e: hyper::Error) -> Self {
        Self::Http(e)
    }
}
