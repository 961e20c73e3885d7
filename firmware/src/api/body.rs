//! Response bodies: whole buffers, and the channel-fed body of the MJPEG stream.

use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

/// Why a body stopped before its end; hyper then aborts the connection, so the client
/// sees a cut stream rather than a clean end.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BodyError(pub &'static str);

/// Every response body. Not `Send`: bodies live on the single I/O thread.
pub type ResponseBody = Pin<Box<dyn Body<Data = Bytes, Error = BodyError>>>;

pub fn full(data: impl Into<Bytes>) -> ResponseBody {
    Box::pin(Full(Some(data.into())))
}

pub fn empty() -> ResponseBody {
    Box::pin(Full(None))
}

struct Full(Option<Bytes>);

impl Body for Full {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        Poll::Ready(self.0.take().map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.0.as_ref().map_or(0, |b| b.len() as u64))
    }
}

/// A body fed by a task through a small channel. Dropping the [`BodySender`] ends the
/// body cleanly; [`BodySender::abort`] cuts it at once, and hyper drops the connection.
pub struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
    aborted: Rc<Cell<bool>>,
}

pub struct BodySender {
    tx: mpsc::Sender<Bytes>,
    aborted: Rc<Cell<bool>>,
}

impl ChannelBody {
    pub fn new(capacity: usize) -> (BodySender, Self) {
        let (tx, rx) = mpsc::channel(capacity);
        let aborted = Rc::new(Cell::new(false));
        (
            BodySender {
                tx,
                aborted: Rc::clone(&aborted),
            },
            Self { rx, aborted },
        )
    }
}

impl BodySender {
    /// Waits for room and queues `chunk`; `Err` once the client has gone.
    pub async fn send(&self, chunk: Bytes) -> Result<(), ClientGone> {
        self.tx.send(chunk).await.map_err(|_| ClientGone)
    }

    pub fn abort(self) {
        self.aborted.set(true);
    }
}

#[derive(Debug)]
pub struct ClientGone;

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if self.aborted.get() {
            return Poll::Ready(Some(Err(BodyError("client too slow; stream dropped"))));
        }
        self.rx
            .poll_recv(cx)
            .map(|item| item.map(|b| Ok(Frame::data(b))))
    }
}
