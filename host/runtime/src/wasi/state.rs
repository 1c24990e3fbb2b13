//! The `state` capability: a private directory, preopened as `/state`, with
//! a byte quota the plugin's instances share.
//!
//! wasmtime-wasi serves the directory through cap-std (no path leaves it);
//! this module wraps its `wasi:filesystem/types` so that every way of growing
//! the directory is charged before it happens: positional writes, size
//! changes, new entries, and writes through file streams. Charges are upper
//! bounds (an overwrite is charged as growth); before each call the directory
//! is measured again when anything was charged, so the bound never drifts.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use wasmtime::component::Resource;
use wasmtime_wasi::async_trait;
use wasmtime_wasi::filesystem::WasiFilesystemCtxView;
use wasmtime_wasi::p2::bindings::filesystem::types::ErrorCode;
use wasmtime_wasi::p2::bindings::sync::filesystem::types as fs;
use wasmtime_wasi::p2::bindings::sync::io::streams;
use wasmtime_wasi::p2::{
    DynOutputStream, FsError, FsResult, OutputStream, Pollable, StreamError, StreamResult,
};

/// What a directory entry (a file, a directory, a link) costs besides its
/// bytes: about a block, so a million empty files are not free.
pub(crate) const ENTRY_BYTES: u64 = 4096;
/// Deepest directory the measurement follows; deeper ones count as full.
const MAX_DEPTH: usize = 32;
/// `ENOSPC`, which guests' libc turns into "No space left on device".
const ENOSPC: i32 = 28;

/// The `state` grant: where the directory lives on the host, and how many
/// bytes (file contents plus [`ENTRY_BYTES`] per entry) it may hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateGrant {
    pub dir: PathBuf,
    pub quota_bytes: u64,
}

/// A granted directory's usage, shared by the plugin's instances.
pub(crate) struct StateQuota {
    dir: PathBuf,
    quota: u64,
    used: Mutex<u64>,
    /// Something was charged since the last measurement.
    dirty: AtomicBool,
}

impl StateQuota {
    /// Create the directory if it is new, and measure what it holds.
    pub(crate) fn open(grant: &StateGrant) -> io::Result<Arc<Self>> {
        std::fs::create_dir_all(&grant.dir)?;
        let used = measure(&grant.dir)?;
        Ok(Arc::new(StateQuota {
            dir: grant.dir.clone(),
            quota: grant.quota_bytes,
            used: Mutex::new(used),
            dirty: AtomicBool::new(false),
        }))
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes in use, as last measured or charged.
    pub(crate) fn used(&self) -> u64 {
        *self.used.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn quota(&self) -> u64 {
        self.quota
    }

    /// Take `bytes` of the quota, or refuse.
    fn charge(&self, bytes: u64) -> bool {
        if bytes == 0 {
            return true;
        }
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        match used.checked_add(bytes) {
            Some(n) if n <= self.quota => {
                *used = n;
                self.dirty.store(true, Ordering::Relaxed);
                true
            }
            _ => false,
        }
    }

    /// Replace the charged bound by what the directory holds, when
    /// anything was charged since the last time.
    pub(crate) fn settle(&self) {
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return;
        }
        match measure(&self.dir) {
            Ok(n) => *self.used.lock().unwrap_or_else(|p| p.into_inner()) = n,
            Err(e) => {
                // Keep the charged bound: it is never below the truth.
                tracing::warn!(dir = %self.dir.display(), "cannot measure a state directory: {e}");
            }
        }
    }
}

/// File bytes plus [`ENTRY_BYTES`] per entry, walked through cap-std so a
/// symlink the plugin made cannot lead the walk out of the directory.
fn measure(dir: &Path) -> io::Result<u64> {
    let root = cap_std::fs::Dir::open_ambient_dir(dir, cap_std::ambient_authority())?;
    measure_dir(&root, 0)
}

fn measure_dir(dir: &cap_std::fs::Dir, depth: usize) -> io::Result<u64> {
    if depth > MAX_DEPTH {
        return Ok(u64::MAX / 2);
    }
    let mut total = 0u64;
    for entry in dir.entries()? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total = total.saturating_add(ENTRY_BYTES);
        if meta.is_dir() {
            let sub = entry.open_dir()?;
            total = total.saturating_add(measure_dir(&sub, depth + 1)?);
        } else if meta.is_file() {
            total = total.saturating_add(meta.len());
        }
    }
    Ok(total)
}

fn no_space() -> FsError {
    ErrorCode::InsufficientSpace.into()
}

/// wasmtime-wasi's filesystem with the quota in front of every growth.
pub(crate) struct StateFs<'a> {
    pub(crate) fs: WasiFilesystemCtxView<'a>,
    pub(crate) quota: Option<Arc<StateQuota>>,
}

impl StateFs<'_> {
    fn charge(&self, bytes: u64) -> FsResult<()> {
        match &self.quota {
            Some(q) if q.charge(bytes) => Ok(()),
            Some(_) => Err(no_space()),
            // Without the grant there is no preopen, hence no descriptor
            // to write through; refuse all the same.
            None if bytes == 0 => Ok(()),
            None => Err(ErrorCode::NotPermitted.into()),
        }
    }

    fn size(&mut self, fd: &Resource<fs::Descriptor>) -> FsResult<u64> {
        let fd = Resource::new_borrow(fd.rep());
        Ok(fs::HostDescriptor::stat(&mut self.fs, fd)?.size)
    }

    /// Charge a new entry at `path` unless one is there already.
    fn charge_entry(&mut self, fd: &Resource<fs::Descriptor>, path: &str) -> FsResult<()> {
        let at = Resource::new_borrow(fd.rep());
        let exists =
            fs::HostDescriptor::stat_at(&mut self.fs, at, fs::PathFlags::empty(), path.to_string())
                .is_ok();
        if exists {
            Ok(())
        } else {
            self.charge(ENTRY_BYTES)
        }
    }

    /// Put a quota in front of a file stream the guest just got.
    fn guard(
        &mut self,
        stream: Resource<streams::OutputStream>,
    ) -> FsResult<Resource<streams::OutputStream>> {
        let Some(quota) = self.quota.clone() else {
            return Ok(stream);
        };
        let inner: DynOutputStream = self.fs.table.delete(stream)?;
        let guarded: DynOutputStream = Box::new(QuotaStream { inner, quota });
        Ok(self.fs.table.push(guarded)?)
    }
}

impl fs::Host for StateFs<'_> {
    fn convert_error_code(&mut self, err: FsError) -> wasmtime::Result<fs::ErrorCode> {
        fs::Host::convert_error_code(&mut self.fs, err)
    }

    fn filesystem_error_code(
        &mut self,
        err: Resource<streams::Error>,
    ) -> wasmtime::Result<Option<fs::ErrorCode>> {
        fs::Host::filesystem_error_code(&mut self.fs, err)
    }
}

type Fd = Resource<fs::Descriptor>;

impl fs::HostDescriptor for StateFs<'_> {
    fn write(&mut self, fd: Fd, buf: Vec<u8>, offset: fs::Filesize) -> FsResult<fs::Filesize> {
        let end = offset.saturating_add(buf.len() as u64);
        let growth = end.saturating_sub(self.size(&fd)?);
        self.charge(growth)?;
        fs::HostDescriptor::write(&mut self.fs, fd, buf, offset)
    }

    fn set_size(&mut self, fd: Fd, size: fs::Filesize) -> FsResult<()> {
        let growth = size.saturating_sub(self.size(&fd)?);
        self.charge(growth)?;
        fs::HostDescriptor::set_size(&mut self.fs, fd, size)
    }

    fn write_via_stream(
        &mut self,
        fd: Fd,
        offset: fs::Filesize,
    ) -> FsResult<Resource<streams::OutputStream>> {
        // A stream cannot seek: past its start, each byte written grows the
        // file by at most one byte.
        let gap = offset.saturating_sub(self.size(&fd)?);
        self.charge(gap)?;
        let s = fs::HostDescriptor::write_via_stream(&mut self.fs, fd, offset)?;
        self.guard(s)
    }

    fn append_via_stream(&mut self, fd: Fd) -> FsResult<Resource<streams::OutputStream>> {
        let s = fs::HostDescriptor::append_via_stream(&mut self.fs, fd)?;
        self.guard(s)
    }

    fn open_at(
        &mut self,
        fd: Fd,
        path_flags: fs::PathFlags,
        path: String,
        oflags: fs::OpenFlags,
        flags: fs::DescriptorFlags,
    ) -> FsResult<Fd> {
        if oflags.contains(fs::OpenFlags::CREATE) {
            self.charge_entry(&fd, &path)?;
        }
        fs::HostDescriptor::open_at(&mut self.fs, fd, path_flags, path, oflags, flags)
    }

    fn create_directory_at(&mut self, fd: Fd, path: String) -> FsResult<()> {
        self.charge(ENTRY_BYTES)?;
        fs::HostDescriptor::create_directory_at(&mut self.fs, fd, path)
    }

    fn symlink_at(&mut self, fd: Fd, src_path: String, dest_path: String) -> FsResult<()> {
        self.charge(ENTRY_BYTES)?;
        fs::HostDescriptor::symlink_at(&mut self.fs, fd, src_path, dest_path)
    }

    fn link_at(
        &mut self,
        fd: Fd,
        old_path_flags: fs::PathFlags,
        old_path: String,
        new_descriptor: Fd,
        new_path: String,
    ) -> FsResult<()> {
        self.charge(ENTRY_BYTES)?;
        fs::HostDescriptor::link_at(
            &mut self.fs,
            fd,
            old_path_flags,
            old_path,
            new_descriptor,
            new_path,
        )
    }

    // What cannot grow the directory passes straight through.

    fn advise(
        &mut self,
        fd: Fd,
        offset: fs::Filesize,
        len: fs::Filesize,
        advice: fs::Advice,
    ) -> FsResult<()> {
        fs::HostDescriptor::advise(&mut self.fs, fd, offset, len, advice)
    }

    fn sync_data(&mut self, fd: Fd) -> FsResult<()> {
        fs::HostDescriptor::sync_data(&mut self.fs, fd)
    }

    fn get_flags(&mut self, fd: Fd) -> FsResult<fs::DescriptorFlags> {
        fs::HostDescriptor::get_flags(&mut self.fs, fd)
    }

    fn get_type(&mut self, fd: Fd) -> FsResult<fs::DescriptorType> {
        fs::HostDescriptor::get_type(&mut self.fs, fd)
    }

    fn set_times(
        &mut self,
        fd: Fd,
        atim: fs::NewTimestamp,
        mtim: fs::NewTimestamp,
    ) -> FsResult<()> {
        fs::HostDescriptor::set_times(&mut self.fs, fd, atim, mtim)
    }

    fn read(
        &mut self,
        fd: Fd,
        len: fs::Filesize,
        offset: fs::Filesize,
    ) -> FsResult<(Vec<u8>, bool)> {
        fs::HostDescriptor::read(&mut self.fs, fd, len, offset)
    }

    fn read_directory(&mut self, fd: Fd) -> FsResult<Resource<fs::DirectoryEntryStream>> {
        fs::HostDescriptor::read_directory(&mut self.fs, fd)
    }

    fn sync(&mut self, fd: Fd) -> FsResult<()> {
        fs::HostDescriptor::sync(&mut self.fs, fd)
    }

    fn stat(&mut self, fd: Fd) -> FsResult<fs::DescriptorStat> {
        fs::HostDescriptor::stat(&mut self.fs, fd)
    }

    fn stat_at(
        &mut self,
        fd: Fd,
        path_flags: fs::PathFlags,
        path: String,
    ) -> FsResult<fs::DescriptorStat> {
        fs::HostDescriptor::stat_at(&mut self.fs, fd, path_flags, path)
    }

    fn set_times_at(
        &mut self,
        fd: Fd,
        path_flags: fs::PathFlags,
        path: String,
        atim: fs::NewTimestamp,
        mtim: fs::NewTimestamp,
    ) -> FsResult<()> {
        fs::HostDescriptor::set_times_at(&mut self.fs, fd, path_flags, path, atim, mtim)
    }

    fn drop(&mut self, fd: Fd) -> wasmtime::Result<()> {
        fs::HostDescriptor::drop(&mut self.fs, fd)
    }

    fn readlink_at(&mut self, fd: Fd, path: String) -> FsResult<String> {
        fs::HostDescriptor::readlink_at(&mut self.fs, fd, path)
    }

    fn remove_directory_at(&mut self, fd: Fd, path: String) -> FsResult<()> {
        fs::HostDescriptor::remove_directory_at(&mut self.fs, fd, path)
    }

    fn rename_at(
        &mut self,
        fd: Fd,
        old_path: String,
        new_fd: Fd,
        new_path: String,
    ) -> FsResult<()> {
        fs::HostDescriptor::rename_at(&mut self.fs, fd, old_path, new_fd, new_path)
    }

    fn unlink_file_at(&mut self, fd: Fd, path: String) -> FsResult<()> {
        fs::HostDescriptor::unlink_file_at(&mut self.fs, fd, path)
    }

    fn read_via_stream(
        &mut self,
        fd: Fd,
        offset: fs::Filesize,
    ) -> FsResult<Resource<streams::InputStream>> {
        fs::HostDescriptor::read_via_stream(&mut self.fs, fd, offset)
    }

    fn is_same_object(&mut self, a: Fd, b: Fd) -> wasmtime::Result<bool> {
        fs::HostDescriptor::is_same_object(&mut self.fs, a, b)
    }

    fn metadata_hash(&mut self, fd: Fd) -> FsResult<fs::MetadataHashValue> {
        fs::HostDescriptor::metadata_hash(&mut self.fs, fd)
    }

    fn metadata_hash_at(
        &mut self,
        fd: Fd,
        path_flags: fs::PathFlags,
        path: String,
    ) -> FsResult<fs::MetadataHashValue> {
        fs::HostDescriptor::metadata_hash_at(&mut self.fs, fd, path_flags, path)
    }
}

impl fs::HostDirectoryEntryStream for StateFs<'_> {
    fn read_directory_entry(
        &mut self,
        stream: Resource<fs::DirectoryEntryStream>,
    ) -> FsResult<Option<fs::DirectoryEntry>> {
        fs::HostDirectoryEntryStream::read_directory_entry(&mut self.fs, stream)
    }

    fn drop(&mut self, stream: Resource<fs::DirectoryEntryStream>) -> wasmtime::Result<()> {
        fs::HostDirectoryEntryStream::drop(&mut self.fs, stream)
    }
}

/// A file stream that takes each write from the quota first.
struct QuotaStream {
    inner: DynOutputStream,
    quota: Arc<StateQuota>,
}

#[async_trait]
impl Pollable for QuotaStream {
    async fn ready(&mut self) {
        self.inner.ready().await
    }
}

#[async_trait]
impl OutputStream for QuotaStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        if !self.quota.charge(bytes.len() as u64) {
            return Err(StreamError::LastOperationFailed(wasmtime::Error::new(
                io::Error::from_raw_os_error(ENOSPC),
            )));
        }
        self.inner.write(bytes)
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.inner.flush()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.inner.check_write()
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_are_bounded_and_settled_to_the_truth() {
        let dir = tempfile::tempdir().unwrap();
        let grant = StateGrant {
            dir: dir.path().join("p"),
            quota_bytes: 3 * ENTRY_BYTES,
        };
        let q = StateQuota::open(&grant).unwrap();
        assert_eq!(q.used(), 0, "a new directory is empty");
        assert!(q.charge(2 * ENTRY_BYTES));
        assert!(!q.charge(2 * ENTRY_BYTES), "past the quota");
        assert!(!q.charge(u64::MAX), "no wrap-around");
        std::fs::write(grant.dir.join("a"), [1u8; 10]).unwrap();
        q.settle();
        assert_eq!(q.used(), ENTRY_BYTES + 10, "measured again after a charge");
        std::fs::create_dir(grant.dir.join("d")).unwrap();
        std::fs::write(grant.dir.join("d/b"), [1u8; 5]).unwrap();
        q.settle();
        assert_eq!(q.used(), ENTRY_BYTES + 10, "no charge, no new measurement");
        assert!(q.charge(1));
        q.settle();
        assert_eq!(q.used(), 3 * ENTRY_BYTES + 15, "nested entries count");
        let again = StateQuota::open(&grant).unwrap();
        assert_eq!(
            again.used(),
            3 * ENTRY_BYTES + 15,
            "a reopened directory is measured"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_does_not_lead_the_measurement_out() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("big"), vec![0u8; 100_000]).unwrap();
        let grant = StateGrant {
            dir: dir.path().join("p"),
            quota_bytes: 1 << 20,
        };
        std::fs::create_dir(&grant.dir).unwrap();
        std::os::unix::fs::symlink(&outside, grant.dir.join("link")).unwrap();
        let q = StateQuota::open(&grant).unwrap();
        assert_eq!(
            q.used(),
            ENTRY_BYTES,
            "the link is an entry, its target is not walked"
        );
    }
}
