//! The file operations the store makes, as a trait, so that tests can run
//! the store on a disk that loses power: [`SimDisk`] keeps what a real file
//! system promises to keep across a power cut (file data once the file is
//! fsynced, directory entries once the directory is) apart from what it
//! merely holds in its page cache, and [`SimDisk::power_cut`] keeps only
//! the former. `kill -9` loses nothing the kernel already has; this loses
//! everything that was not synced.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// A file being written.
pub(crate) trait DiskFile {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Make the file's data durable (`fsync`).
    fn sync(&mut self) -> io::Result<()>;
}

/// What the store does to its disk.
pub(crate) trait Disk: Send + Sync {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// The paths of a directory's entries.
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Create (or truncate) a file to write.
    fn create(&self, path: &Path) -> io::Result<Box<dyn DiskFile + '_>>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Make a directory's entries durable (`fsync` of the directory).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The real file system.
pub(crate) struct RealDisk;

impl DiskFile for std::fs::File {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        io::Write::write_all(self, bytes)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.flush()?;
        self.sync_all()
    }
}

impl Disk for RealDisk {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        std::fs::read_dir(dir)?
            .map(|e| e.map(|e| e.path()))
            .collect()
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn DiskFile + '_>> {
        Ok(Box::new(std::fs::File::create(path)?))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::File::open(dir)?.sync_all()
    }
}

#[cfg(test)]
pub(crate) use sim::SimDisk;

#[cfg(test)]
mod sim {
    use std::collections::BTreeMap;
    use std::ffi::OsString;
    use std::io;
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    use super::{Disk, DiskFile};

    #[derive(Clone, Debug, Default)]
    struct Inode {
        /// What a read sees.
        data: Vec<u8>,
        /// What survives a power cut: the data at the last fsync.
        durable: Vec<u8>,
    }

    #[derive(Clone, Debug, Default)]
    struct Dir {
        entries: BTreeMap<OsString, usize>,
        /// The entries at the directory's last fsync.
        durable: BTreeMap<OsString, usize>,
    }

    #[derive(Clone, Debug, Default)]
    struct State {
        inodes: Vec<Inode>,
        /// Directories are made durable when created (the store makes its
        /// own at open, before anything is written in them).
        dirs: BTreeMap<PathBuf, Dir>,
    }

    /// A file system in memory that can lose power. Every change is
    /// recorded, so a test can cut the power after any one of them.
    #[derive(Default)]
    pub(crate) struct SimDisk {
        state: Mutex<State>,
        /// What a power cut right after each change would leave.
        cuts: Mutex<Vec<State>>,
    }

    fn not_found(p: &Path) -> io::Error {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} not found", p.display()),
        )
    }

    fn split(p: &Path) -> io::Result<(PathBuf, OsString)> {
        match (p.parent(), p.file_name()) {
            (Some(d), Some(n)) => Ok((d.to_path_buf(), n.to_os_string())),
            _ => Err(not_found(p)),
        }
    }

    impl State {
        fn power_cut(&self) -> State {
            State {
                inodes: self
                    .inodes
                    .iter()
                    .map(|i| Inode {
                        data: i.durable.clone(),
                        durable: i.durable.clone(),
                    })
                    .collect(),
                dirs: self
                    .dirs
                    .iter()
                    .map(|(p, d)| {
                        (
                            p.clone(),
                            Dir {
                                entries: d.durable.clone(),
                                durable: d.durable.clone(),
                            },
                        )
                    })
                    .collect(),
            }
        }

        fn dir(&mut self, p: &Path) -> io::Result<&mut Dir> {
            self.dirs.get_mut(p).ok_or_else(|| not_found(p))
        }

        fn inode(&self, p: &Path) -> io::Result<usize> {
            let (d, n) = split(p)?;
            self.dirs
                .get(&d)
                .and_then(|d| d.entries.get(&n))
                .copied()
                .ok_or_else(|| not_found(p))
        }
    }

    impl SimDisk {
        fn change<R>(&self, f: impl FnOnce(&mut State) -> io::Result<R>) -> io::Result<R> {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let r = f(&mut s)?;
            self.cuts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(s.power_cut());
            Ok(r)
        }

        /// How many changes have been made so far.
        pub(crate) fn changes(&self) -> usize {
            self.cuts.lock().unwrap_or_else(|p| p.into_inner()).len()
        }

        /// The disk as a power cut right after change `at` leaves it.
        pub(crate) fn power_cut(&self, at: usize) -> SimDisk {
            let cuts = self.cuts.lock().unwrap_or_else(|p| p.into_inner());
            SimDisk {
                state: Mutex::new(cuts[at].clone()),
                cuts: Mutex::new(Vec::new()),
            }
        }
    }

    struct SimFile<'d> {
        disk: &'d SimDisk,
        inode: usize,
    }

    impl DiskFile for SimFile<'_> {
        fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
            let i = self.inode;
            self.disk
                .change(|s| Ok(s.inodes[i].data.extend_from_slice(bytes)))
        }

        fn sync(&mut self) -> io::Result<()> {
            let i = self.inode;
            self.disk.change(|s| {
                s.inodes[i].durable = s.inodes[i].data.clone();
                Ok(())
            })
        }
    }

    impl Disk for SimDisk {
        fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
            self.change(|s| {
                for d in dir.ancestors() {
                    s.dirs.entry(d.to_path_buf()).or_default();
                }
                Ok(())
            })
        }

        fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            Ok(s.dir(dir)?.entries.keys().map(|n| dir.join(n)).collect())
        }

        fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
            let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let i = s.inode(path)?;
            Ok(s.inodes[i].data.clone())
        }

        fn create(&self, path: &Path) -> io::Result<Box<dyn DiskFile + '_>> {
            let (d, n) = split(path)?;
            let inode = self.change(|s| {
                s.inodes.push(Inode::default());
                let i = s.inodes.len() - 1;
                s.dir(&d)?.entries.insert(n, i);
                Ok(i)
            })?;
            Ok(Box::new(SimFile { disk: self, inode }))
        }

        fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            let ((fd, fname), (td, tname)) = (split(from)?, split(to)?);
            self.change(|s| {
                let i = s
                    .dir(&fd)?
                    .entries
                    .remove(&fname)
                    .ok_or_else(|| not_found(from))?;
                s.dir(&td)?.entries.insert(tname, i);
                Ok(())
            })
        }

        fn remove_file(&self, path: &Path) -> io::Result<()> {
            let (d, n) = split(path)?;
            self.change(|s| {
                s.dir(&d)?
                    .entries
                    .remove(&n)
                    .map(drop)
                    .ok_or_else(|| not_found(path))
            })
        }

        fn sync_dir(&self, dir: &Path) -> io::Result<()> {
            self.change(|s| {
                let d = s.dir(dir)?;
                d.durable = d.entries.clone();
                Ok(())
            })
        }
    }
}
