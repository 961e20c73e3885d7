//! Handing freed heap memory back to the kernel.
//!
//! glibc keeps freed memory in its heaps for reuse, and after a large block is freed
//! it raises its mmap threshold, so later large blocks (the model's activations,
//! Argon2's buffers) come from the heap too and stay resident after a burst. On a
//! 512 MB device with a 64 MB budget for the service that is the difference between
//! fitting and not (docs/performance.md, "Person detection"). Trimming after a burst
//! costs some page faults at the next one, which is cheap next to the work itself.

/// Returns the free memory of every malloc arena to the kernel. Call after a burst
/// of large allocations, not in a loop.
pub fn release_free() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap memory; no live allocation moves.
    unsafe {
        libc::malloc_trim(0);
    }
}
