//! The service's executor: one thread, an io_uring driver, local tasks.
//!
//! This is the only module that names `tokio_uring` (design decision 1), so the
//! runtime can be swapped (compio is the maintained alternative) without touching the
//! pipeline stages. Sockets use `tokio::net`; files written from the loop go through
//! [`write_file_atomic`], whose `fsync` runs in the kernel, not on this thread.

use std::future::Future;
use std::io;
use std::path::Path;

/// Runs `future` to completion on a new io_uring runtime on this thread.
///
/// Fails, rather than panicking, where the kernel has no io_uring (qemu-user, old
/// kernels, or a seccomp policy that blocks it).
pub fn start<F: Future>(future: F) -> io::Result<F::Output> {
    let rt = tokio_uring::Runtime::new(&tokio_uring::builder()).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot start the io_uring runtime: {e} (ME_CAM needs Linux 5.11+ with io_uring enabled)"),
        )
    })?;
    Ok(rt.block_on(future))
}

/// Spawns a task on the current runtime's thread.
pub fn spawn<F: Future + 'static>(future: F) -> tokio::task::JoinHandle<F::Output> {
    tokio_uring::spawn(future)
}

/// Whether this kernel (or emulator) offers io_uring at all.
pub fn io_uring_available() -> bool {
    tokio_uring::Runtime::new(&tokio_uring::builder()).is_ok()
}

/// Hyper's executor for HTTP/2 streams: spawns on the local thread, so neither the
/// futures nor the bodies need to be `Send`.
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalExec;

impl<F> hyper::rt::Executor<F> for LocalExec
where
    F: Future + 'static,
{
    fn execute(&self, future: F) {
        spawn(future);
    }
}

/// Writes `data` to `path` so that after a crash or power cut the path holds either
/// the old content or all of the new: write a temporary file, `fsync` it, rename it
/// over the target, then `fsync` the directory.
pub async fn write_file_atomic(path: &Path, data: Vec<u8>, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;

    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    let std_file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    let file = tokio_uring::fs::File::from_std(std_file);
    let (res, _) = file.write_all_at(data, 0).await;
    res?;
    file.sync_all().await?;
    file.close().await?;
    tokio_uring::fs::rename(&tmp, path).await?;
    let dir = tokio_uring::fs::File::from_std(std::fs::File::open(dir)?);
    dir.sync_all().await?;
    dir.close().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_the_whole_file() {
        if !io_uring_available() {
            eprintln!("skipped: no io_uring here");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        std::fs::write(&path, b"old contents that are longer").unwrap();
        start(write_file_atomic(&path, b"new".to_vec(), 0o600))
            .unwrap()
            .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert!(!path.with_extension("tmp").exists());
    }
}
