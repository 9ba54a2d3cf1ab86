//! The narrow file interface the log store uses, like redb's `StorageBackend`: the real
//! files ([`FileBackend`]) and a fault-injecting wrapper for tests ([`FaultBackend`]).
//!
//! Writes go through `pwrite` ([`SegmentFile::write_at`]), never through the map, so a full
//! disk or an I/O error is an error return and not a SIGBUS; reads go through a read-only
//! map ([`SegmentFile::map`]) handed out as `Bytes`. A retired segment is renamed away from
//! the log at once ([`SegmentFile::retire`]) and its file deleted only when the last `Bytes`
//! over its map is dropped.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

/// One open file of the store.
pub trait SegmentFile: Send + Sync {
    /// The file's size in bytes.
    ///
    /// # Errors
    /// An I/O error.
    fn size(&self) -> io::Result<u64>;

    /// Writes all of `buf` at `offset` (`pwrite`).
    ///
    /// # Errors
    /// An I/O error or a full disk; some of `buf` may have been written.
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;

    /// `fdatasync`: every byte written before is durable when this returns `Ok`.
    ///
    /// # Errors
    /// An I/O error; then it is unknown what is durable, and a retry proves nothing.
    fn sync_data(&self) -> io::Result<()>;

    /// A read-only view of the whole file. Later writes through [`SegmentFile::write_at`]
    /// become visible in it (a shared map of the page cache).
    ///
    /// # Errors
    /// An I/O error.
    fn map(&self) -> io::Result<Bytes>;

    /// Takes the file out of the store now (renamed to `*.dead`, the rename made durable)
    /// and deletes it when the last view from [`SegmentFile::map`] is gone.
    ///
    /// # Errors
    /// An I/O error.
    fn retire(&self) -> io::Result<()>;
}

/// The directory operations of the store.
pub trait StorageBackend: Send + Sync + 'static {
    /// Names of the files in the store's directory.
    ///
    /// # Errors
    /// An I/O error.
    fn list(&self) -> io::Result<Vec<String>>;

    /// Creates file `name` (which must not exist) with `len` bytes allocated and zeroed.
    /// The new directory entry is durable when this returns.
    ///
    /// # Errors
    /// An I/O error, or a full disk (the space is allocated now, not on a later write).
    fn create(&self, name: &str, len: u64) -> io::Result<Arc<dyn SegmentFile>>;

    /// Opens the existing file `name` for reading and writing.
    ///
    /// # Errors
    /// An I/O error.
    fn open(&self, name: &str) -> io::Result<Arc<dyn SegmentFile>>;

    /// Renames `from` to `to` (replacing it) and makes the rename durable.
    ///
    /// # Errors
    /// An I/O error.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;

    /// Deletes `name`; the caller guarantees that nothing maps it.
    ///
    /// # Errors
    /// An I/O error.
    fn remove(&self, name: &str) -> io::Result<()>;
}

/// The real files in one directory.
#[derive(Debug, Clone)]
pub struct FileBackend {
    dir: PathBuf,
}

impl FileBackend {
    /// Files in `dir` (created if missing).
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn new(dir: &Path) -> io::Result<FileBackend> {
        std::fs::create_dir_all(dir)?;
        Ok(FileBackend {
            dir: dir.to_path_buf(),
        })
    }

    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }
}

/// Where a retired file now lives, shared by the file and the owners of its maps.
#[derive(Debug, Default)]
struct Retired {
    path: Mutex<Option<PathBuf>>,
}

/// Owner of one memory map: deletes the retired file when the last `Bytes` drops it.
struct MapOwner {
    map: Option<memmap2::Mmap>,
    retired: Arc<Retired>,
}

impl AsRef<[u8]> for MapOwner {
    fn as_ref(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}

impl Drop for MapOwner {
    fn drop(&mut self) {
        // Unmap first, then delete: the file is never deleted under a live map.
        drop(self.map.take());
        if let Some(path) = self.retired.path.lock().take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

struct RealFile {
    file: File,
    path: PathBuf,
    dir: PathBuf,
    retired: Arc<Retired>,
    /// The map handed out, made once: every view shares it.
    map: Mutex<Option<Bytes>>,
}

impl RealFile {
    fn new(file: File, path: PathBuf, dir: PathBuf) -> RealFile {
        RealFile {
            file,
            path,
            dir,
            retired: Arc::default(),
            map: Mutex::new(None),
        }
    }
}

/// Maps `file` read-only.
#[allow(unsafe_code)]
fn map_file(file: &File) -> io::Result<memmap2::Mmap> {
    // SAFETY: the map is only ever read, and the store never truncates, shrinks or writes
    // through a mapping: it appends with pwrite to the preallocated area past the published
    // end, and readers only touch bytes below the end they loaded with Acquire. A segment
    // file is never truncated (its size is fixed at creation) and is deleted only by
    // `MapOwner::drop`, after this map has been unmapped. Nothing else writes the store's
    // directory while it is open.
    unsafe { memmap2::Mmap::map(file) }
}

impl SegmentFile for RealFile {
    fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn map(&self) -> io::Result<Bytes> {
        let mut cached = self.map.lock();
        if let Some(map) = &*cached {
            return Ok(map.clone());
        }
        let map = if self.size()? == 0 {
            None
        } else {
            Some(map_file(&self.file)?)
        };
        let bytes = Bytes::from_owner(MapOwner {
            map,
            retired: self.retired.clone(),
        });
        *cached = Some(bytes.clone());
        Ok(bytes)
    }

    fn retire(&self) -> io::Result<()> {
        let mut dead = self.path.clone().into_os_string();
        dead.push(".dead");
        let dead = PathBuf::from(dead);
        std::fs::rename(&self.path, &dead)?;
        File::open(&self.dir)?.sync_all()?;
        let has_map = self.map.lock().take().is_some();
        if has_map {
            *self.retired.path.lock() = Some(dead);
        } else {
            std::fs::remove_file(dead)?;
        }
        Ok(())
    }
}

/// Allocates `len` bytes of `file` on disk, so that a full disk fails here and not when a
/// record is appended later.
#[allow(unsafe_code)]
fn allocate(file: &File, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let len = libc::off_t::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file too large"))?;
    // SAFETY: posix_fallocate only reads its integer arguments; the descriptor is open
    // and owned by `file` for the whole call. It returns the error number instead of
    // setting errno.
    match unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) } {
        0 => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

impl StorageBackend for FileBackend {
    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            if let Some(name) = entry?.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    fn create(&self, name: &str, len: u64) -> io::Result<Arc<dyn SegmentFile>> {
        let path = self.dir.join(name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        if let Err(error) = allocate(&file, len) {
            drop(file);
            let _ = std::fs::remove_file(&path);
            return Err(error);
        }
        file.sync_all()?;
        self.sync_dir()?;
        Ok(Arc::new(RealFile::new(file, path, self.dir.clone())))
    }

    fn open(&self, name: &str) -> io::Result<Arc<dyn SegmentFile>> {
        let path = self.dir.join(name);
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        Ok(Arc::new(RealFile::new(file, path, self.dir.clone())))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        std::fs::rename(self.dir.join(from), self.dir.join(to))?;
        self.sync_dir()
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        std::fs::remove_file(self.dir.join(name))?;
        self.sync_dir()
    }
}

/// What the fault-injecting backend remembers of one file for a simulated crash.
#[derive(Debug, Default, Clone)]
struct Image {
    /// The content as of the last successful sync.
    durable: Vec<u8>,
    /// Writes since then, in order: (global sequence, offset, bytes).
    pending: Vec<(u64, u64, Vec<u8>)>,
}

#[derive(Debug, Default)]
struct FaultState {
    /// Operations (writes, syncs, creations) left before every operation fails.
    ops_left: Option<u64>,
    /// Operations done.
    ops: u64,
    /// Durable images by file name.
    images: BTreeMap<String, Image>,
    /// Sequence number of the last write.
    write_seq: u64,
}

impl FaultState {
    fn tick(&mut self) -> io::Result<()> {
        self.ops += 1;
        match &mut self.ops_left {
            Some(0) => Err(io::Error::other("injected fault")),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

/// Real files plus injected faults, for tests: fails every operation after a number of
/// them, and keeps the "durable" image of every file (what a crash would leave: the bytes
/// synced, and nothing written after) apart from the live files.
#[derive(Clone)]
pub struct FaultBackend {
    inner: FileBackend,
    state: Arc<Mutex<FaultState>>,
}

impl FaultBackend {
    /// Files in `dir`; the files already there count as durable.
    ///
    /// # Errors
    /// When the directory cannot be read.
    pub fn new(dir: &Path) -> io::Result<FaultBackend> {
        let inner = FileBackend::new(dir)?;
        let mut state = FaultState::default();
        for name in inner.list()? {
            let durable = std::fs::read(dir.join(&name))?;
            state.images.insert(
                name,
                Image {
                    durable,
                    pending: Vec::new(),
                },
            );
        }
        Ok(FaultBackend {
            inner,
            state: Arc::new(Mutex::new(state)),
        })
    }

    /// From now on, `ops` more operations (writes, syncs, creations, renames) succeed and
    /// every later one fails; `None` lifts the fault.
    pub fn fail_after(&self, ops: Option<u64>) {
        self.state.lock().ops_left = ops;
    }

    /// Operations done so far.
    pub fn ops(&self) -> u64 {
        self.state.lock().ops
    }

    /// Simulates a power loss: rewrites every file to its durable image, where the last
    /// unsynced write (if `torn_bytes` is given) lands torn, only its first `torn_bytes`
    /// bytes. Call it after the store using this backend was dropped.
    ///
    /// # Errors
    /// When the files cannot be rewritten.
    pub fn crash(&self, torn_bytes: Option<usize>) -> io::Result<()> {
        let mut state = self.state.lock();
        let last = state
            .images
            .iter()
            .flat_map(|(name, image)| image.pending.iter().map(move |p| (p.0, name.clone())))
            .max();
        for name in self.inner.list()? {
            if !state.images.contains_key(&name) {
                self.inner.remove(&name)?;
            }
        }
        for (name, image) in state.images.iter_mut() {
            let mut content = std::mem::take(&mut image.durable);
            if let (Some(torn), Some((seq, last_name))) = (torn_bytes, &last)
                && last_name == name
                && let Some((_, offset, bytes)) = image.pending.iter().find(|p| p.0 == *seq)
            {
                let bytes = &bytes[..torn.min(bytes.len())];
                let at = *offset as usize;
                if content.len() < at + bytes.len() {
                    content.resize(at + bytes.len(), 0);
                }
                content[at..at + bytes.len()].copy_from_slice(bytes);
            }
            image.pending.clear();
            std::fs::write(self.inner.dir.join(name), &content)?;
            image.durable = content;
        }
        Ok(())
    }
}

struct FaultFile {
    inner: Arc<dyn SegmentFile>,
    name: String,
    state: Arc<Mutex<FaultState>>,
}

impl SegmentFile for FaultFile {
    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut state = self.state.lock();
        if let Err(error) = state.tick() {
            // A failed write may still have written a part.
            let half = &buf[..buf.len() / 2];
            let _ = self.inner.write_at(half, offset);
            return Err(error);
        }
        self.inner.write_at(buf, offset)?;
        state.write_seq += 1;
        let seq = state.write_seq;
        if let Some(image) = state.images.get_mut(&self.name) {
            image.pending.push((seq, offset, buf.to_vec()));
        }
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut state = self.state.lock();
        state.tick()?;
        self.inner.sync_data()?;
        if let Some(image) = state.images.get_mut(&self.name) {
            for (_, offset, bytes) in std::mem::take(&mut image.pending) {
                let at = offset as usize;
                if image.durable.len() < at + bytes.len() {
                    image.durable.resize(at + bytes.len(), 0);
                }
                image.durable[at..at + bytes.len()].copy_from_slice(&bytes);
            }
        }
        Ok(())
    }

    fn map(&self) -> io::Result<Bytes> {
        self.inner.map()
    }

    fn retire(&self) -> io::Result<()> {
        let mut state = self.state.lock();
        state.tick()?;
        self.inner.retire()?;
        state.images.remove(&self.name);
        Ok(())
    }
}

impl StorageBackend for FaultBackend {
    fn list(&self) -> io::Result<Vec<String>> {
        self.inner.list()
    }

    fn create(&self, name: &str, len: u64) -> io::Result<Arc<dyn SegmentFile>> {
        let mut state = self.state.lock();
        state.tick()?;
        let inner = self.inner.create(name, len)?;
        let size = usize::try_from(len).unwrap_or(usize::MAX);
        state.images.insert(
            name.to_owned(),
            Image {
                durable: vec![0; size],
                pending: Vec::new(),
            },
        );
        Ok(Arc::new(FaultFile {
            inner,
            name: name.to_owned(),
            state: self.state.clone(),
        }))
    }

    fn open(&self, name: &str) -> io::Result<Arc<dyn SegmentFile>> {
        let inner = self.inner.open(name)?;
        Ok(Arc::new(FaultFile {
            inner,
            name: name.to_owned(),
            state: self.state.clone(),
        }))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut state = self.state.lock();
        state.tick()?;
        self.inner.rename(from, to)?;
        if let Some(image) = state.images.remove(from) {
            state.images.insert(to.to_owned(), image);
        }
        Ok(())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let mut state = self.state.lock();
        self.inner.remove(name)?;
        state.images.remove(name);
        Ok(())
    }
}
