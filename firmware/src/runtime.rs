//! The service's executor: one thread, an io_uring driver, local tasks.
//!
//! This is the only module that names `tokio_uring` (design decision 1), so the
//! runtime can be swapped (compio is the maintained alternative) without touching the
//! pipeline stages. Sockets use `tokio::net`; files written from the loop go through
//! [`write_file_atomic`] (small files replaced whole) or [`AppendFile`] (recordings),
//! whose `fsync` runs in the kernel, not on this thread.

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

/// A file that only grows at its end: what a recording is while it is written.
///
/// Writes and `fdatasync` go through io_uring, so a slow SD card stalls the recorder
/// task, never the loop. The file is created exclusively (an existing file is never
/// reused or truncated by accident) with mode 0600.
///
/// [`AppendFile::len`] counts only bytes whose write succeeded. After a failed
/// [`append`](AppendFile::append) part of that data may still be on disk past `len`;
/// [`truncate`](AppendFile::truncate) to `len` gives that space back, and the next
/// append would overwrite it anyway, since writes are positioned at `len`.
#[derive(Debug)]
pub struct AppendFile {
    file: tokio_uring::fs::File,
    len: u64,
}

impl AppendFile {
    /// Creates `path`, which must not exist yet, with mode 0600. The directory entry is
    /// not durable until [`sync_dir`] of its parent.
    pub async fn create(path: &Path) -> io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;

        let file = tokio_uring::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .await?;
        Ok(Self { file, len: 0 })
    }

    /// Bytes written so far: where the next append goes.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes all of `data` at the end of the file and returns the offset it starts at.
    pub async fn append(&mut self, data: impl Into<bytes::Bytes>) -> io::Result<u64> {
        let data: bytes::Bytes = data.into();
        let offset = self.len;
        let written = data.len() as u64;
        let (res, _) = self.file.write_all_at(data, offset).await;
        res?;
        self.len = offset + written;
        Ok(offset)
    }

    /// `fdatasync`: the data (and the size) are on the medium when this returns.
    pub async fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data().await
    }

    /// Cuts the file to `len` bytes (at most its current length), e.g. to drop the
    /// part of a chunk a failed write left behind. `ftruncate` has no io_uring
    /// operation before Linux 6.9; it only changes metadata, so it is called directly.
    pub fn truncate(&mut self, len: u64) -> io::Result<()> {
        use std::os::unix::io::AsRawFd;

        let len = len.min(self.len);
        let off = libc::off_t::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "length too large"))?;
        // SAFETY: the descriptor is open and owned by `self.file` for this call.
        if unsafe { libc::ftruncate(self.file.as_raw_fd(), off) } != 0 {
            return Err(io::Error::last_os_error());
        }
        self.len = len;
        Ok(())
    }

    /// Closes the file, reporting errors the kernel defers to `close`.
    pub async fn close(self) -> io::Result<()> {
        self.file.close().await
    }
}

/// `fsync`s a directory, making the creation, renaming or removal of its entries
/// durable.
pub async fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = tokio_uring::fs::File::from_std(std::fs::File::open(dir)?);
    dir.sync_all().await?;
    dir.close().await
}

/// Creates `dir` and any missing parents with `mode`, and makes each new entry durable
/// by syncing the directory that holds it. Returns whether anything was created.
pub async fn create_dir_all_durable(dir: &Path, mode: u32) -> io::Result<bool> {
    // The missing tail of the path, outermost first. `exists` is a `stat` that only
    // touches cached metadata in the common case (the directory exists).
    let mut missing = Vec::new();
    let mut at = dir;
    while !at.as_os_str().is_empty() && !at.exists() {
        missing.push(at.to_path_buf());
        match at.parent() {
            Some(parent) => at = parent,
            None => break,
        }
    }
    for new in missing.iter().rev() {
        match tokio_uring::fs::DirBuilder::new()
            .mode(mode)
            .create(new)
            .await
        {
            Ok(()) => {}
            // Made meanwhile by someone else: fine, it is there.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        if let Some(parent) = new.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent).await?;
        }
    }
    Ok(!missing.is_empty())
}

/// Removes a file (unlink through io_uring).
pub async fn remove_file(path: &Path) -> io::Result<()> {
    tokio_uring::fs::remove_file(path).await
}

/// Removes an empty directory.
pub async fn remove_dir(path: &Path) -> io::Result<()> {
    tokio_uring::fs::remove_dir(path).await
}

/// Makes `path` a file of `len` bytes of allocated space (created with mode 0600 if
/// missing): space set aside that can be given back by deleting the file when the disk
/// fills up. Uses `fallocate`, so nothing is written; falls back to writing zeros on
/// file systems without it.
pub async fn reserve_space(path: &Path, len: u64) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;

    let file = tokio_uring::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .await?;
    let result = match file.fallocate(0, len, 0).await {
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
            let mut offset = 0;
            let mut result = Ok(());
            while offset < len && result.is_ok() {
                let n = (len - offset).min(1 << 20) as usize;
                let (res, _) = file.write_all_at(vec![0u8; n], offset).await;
                result = res;
                offset += n as u64;
            }
            result
        }
        other => other,
    };
    let result = match result {
        Ok(()) => file.sync_all().await,
        Err(e) => Err(e),
    };
    let closed = file.close().await;
    result.and(closed)
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

    #[test]
    fn append_file_appends_syncs_truncates_and_is_private() {
        use std::os::unix::fs::PermissionsExt;

        if !io_uring_available() {
            eprintln!("skipped: no io_uring here");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b/c");
        let path = nested.join("seg.bin");
        let (created, again, offsets, len, exists_err) = start(async {
            let created = create_dir_all_durable(&nested, 0o700).await.unwrap();
            let again = create_dir_all_durable(&nested, 0o700).await.unwrap();
            let mut file = AppendFile::create(&path).await.unwrap();
            let a = file.append(b"hello ".to_vec()).await.unwrap();
            let b = file
                .append(bytes::Bytes::from_static(b"world"))
                .await
                .unwrap();
            file.sync_data().await.unwrap();
            file.truncate(8).unwrap();
            let len = file.len();
            file.close().await.unwrap();
            sync_dir(&nested).await.unwrap();
            let exists_err = AppendFile::create(&path).await.unwrap_err().kind();
            (created, again, [a, b], len, exists_err)
        })
        .unwrap();
        assert!(created && !again, "created once, then found");
        assert_eq!(offsets, [0, 6]);
        assert_eq!(len, 8);
        assert_eq!(std::fs::read(&path).unwrap(), b"hello wo");
        assert_eq!(exists_err, io::ErrorKind::AlreadyExists, "never reused");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let mode = std::fs::metadata(&nested).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);

        let reserve = dir.path().join("reserve");
        start(reserve_space(&reserve, 100_000)).unwrap().unwrap();
        assert_eq!(std::fs::metadata(&reserve).unwrap().len(), 100_000);
        start(async {
            remove_file(&reserve).await.unwrap();
            remove_dir(&nested.join("..").join("c2")).await.unwrap_err();
        })
        .unwrap();
        assert!(!reserve.exists());
    }
}
