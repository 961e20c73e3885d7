//! Free space on the data partition, and what counts as "the disk is full".
//!
//! Two defences, so that a full card never stops the camera for good:
//! - before it opens a segment the recorder checks that `min_free_bytes` are free and
//!   otherwise deletes the oldest recordings first (as if the quota were smaller);
//! - when a write fails anyway (`ENOSPC`: something else filled the card, or the
//!   check was off), it deletes the *reserve file*, space set aside at start-up
//!   (`DATA/recorder.reserve`), so the index can still commit the deletions that free
//!   real space, and then runs the same emergency retention. LMDB needs a few free
//!   pages for any commit, even one that deletes rows, so without the reserve a disk
//!   filled to the last block could not be emptied by the recorder at all.

use std::io;
use std::path::Path;

/// File name of the reserve, in the data directory.
pub const RESERVE_FILE: &str = "recorder.reserve";

/// Bytes available to an unprivileged writer on the file system holding `path`.
pub fn free_bytes(path: &Path) -> io::Result<u64> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;

    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
    // SAFETY: `statvfs` only writes the struct we pass, and reads the NUL-terminated
    // path, which outlives the call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // The fields are u32 on 32-bit targets, u64 on 64-bit ones.
    #[allow(clippy::useless_conversion)]
    let (blocks, size) = (u64::from(st.f_bavail), u64::from(st.f_frsize));
    Ok(blocks.saturating_mul(size))
}

/// Whether an I/O error means "no space left" (or a quota reached, which looks the
/// same to the recorder).
pub fn is_disk_full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
        || e.kind() == io::ErrorKind::StorageFull
        || e.kind() == io::ErrorKind::QuotaExceeded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_space_reads_free_bytes_and_knows_enospc() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(dir.path()).unwrap() > 0);
        assert!(free_bytes(&dir.path().join("missing")).is_err());
        assert!(is_disk_full(&io::Error::from_raw_os_error(libc::ENOSPC)));
        assert!(is_disk_full(&io::Error::from_raw_os_error(libc::EDQUOT)));
        assert!(!is_disk_full(&io::Error::from_raw_os_error(libc::EIO)));
    }
}
