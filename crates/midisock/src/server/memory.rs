//! Giving freed memory back to the operating system.

/// Hands the whole pages inside an allocation that is about to be freed back to the system, so
/// the process's memory returns to where it was before a burst, whatever the allocator then does
/// with the block.
///
/// NOTE: freeing alone is not enough with glibc's malloc: after the first large block is freed it
/// raises its thresholds (mmap up to 32 MiB, trim to twice that), so later blocks come from its
/// per-thread heaps and stay resident there when freed (`malloc_trim` does not trim those heaps'
/// tops either). Releasing the pages first works with any allocator.
///
/// `block` must point to an allocation of at least `len` bytes that holds no live value and is
/// freed right after this call without being read. Its first 64 bytes are left alone: an
/// allocator may keep its bookkeeping there once the block is free.
pub(crate) fn release_pages(block: *mut u8, len: usize) {
    const ALLOCATOR_HEADER: usize = 64;
    // SAFETY: sysconf has no preconditions.
    let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        size if size > 0 => size as usize,
        _ => return,
    };
    let start = block as usize;
    let from = (start + ALLOCATOR_HEADER).next_multiple_of(page);
    let to = (start + len) / page * page;
    if to <= from {
        return;
    }
    // SAFETY: [from, to) is a page-aligned range inside the caller's allocation (see above),
    // which holds no live value and is not read again before it is freed; MADV_DONTNEED only
    // makes those pages read back as zeros if touched again.
    unsafe {
        libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_DONTNEED);
    }
}
