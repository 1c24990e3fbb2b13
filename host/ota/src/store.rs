//! The gateway's plugin store: content-addressed bundle blobs and, per
//! plugin, a record of the active and previous versions.
//!
//! ```text
//! STORE/blobs/<sha256>.gpk       bundles, named by their digest
//! STORE/plugins/<name>.json      {"name", "active": {digest, version}, "previous"}
//! STORE/tmp/                     files being written; emptied at open
//! ```
//!
//! Every file is written to `tmp/`, fsynced, renamed into place, and the
//! directory fsynced: a power cut leaves either the old file or the new one.
//! A deploy writes the blob first and the record last, so until the record
//! is renamed a restart finds the previous version; after it, the new one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::disk::{Disk, RealDisk};
use crate::fault::{FaultPoint, Faults};
use crate::{Error, sha256_hex};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pointer {
    /// sha256 of the bundle.
    pub digest: String,
    pub version: semver::Version,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginRecord {
    pub name: String,
    pub active: Pointer,
    pub previous: Option<Pointer>,
}

impl PluginRecord {
    /// The record after `offered` is deployed over `current`, or `None` when
    /// exactly that bundle is already active. Only a newer version replaces
    /// the active one; an older one is a rollback attack and the same version
    /// with other content is a mistake, both refused unless `force`.
    pub fn admit(
        current: Option<&PluginRecord>,
        name: &str,
        offered: Pointer,
        force: bool,
    ) -> Result<Option<PluginRecord>, Error> {
        let Some(cur) = current else {
            return Ok(Some(PluginRecord {
                name: name.into(),
                active: offered,
                previous: None,
            }));
        };
        if cur.active.digest == offered.digest {
            return Ok(None);
        }
        if !force {
            if offered.version < cur.active.version {
                return Err(Error::Downgrade {
                    name: name.into(),
                    offered: offered.version,
                    active: cur.active.version.clone(),
                });
            }
            if offered.version == cur.active.version {
                return Err(Error::VersionReused {
                    name: name.into(),
                    version: offered.version,
                });
            }
        }
        Ok(Some(PluginRecord {
            name: name.into(),
            active: offered,
            previous: Some(cur.active.clone()),
        }))
    }
}

pub struct Store {
    root: PathBuf,
    faults: Faults,
    seq: AtomicU64,
    disk: Arc<dyn Disk>,
}

impl Store {
    /// Open (creating) a store. Temp files of writes that were interrupted
    /// are deleted: nothing points at them.
    pub fn open(root: &Path, faults: Faults) -> Result<Store, Error> {
        Store::open_on(Arc::new(RealDisk), root, faults)
    }

    pub(crate) fn open_on(
        disk: Arc<dyn Disk>,
        root: &Path,
        faults: Faults,
    ) -> Result<Store, Error> {
        let s = Store {
            root: root.to_path_buf(),
            faults,
            seq: AtomicU64::new(0),
            disk,
        };
        for d in [s.blobs(), s.plugins(), s.tmp()] {
            s.disk.create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
        }
        let tmp = s.tmp();
        for p in s.disk.list(&tmp).map_err(|e| Error::io(&tmp, e))? {
            s.disk.remove_file(&p).map_err(|e| Error::io(&p, e))?;
        }
        Ok(s)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn faults(&self) -> Faults {
        self.faults
    }

    fn blobs(&self) -> PathBuf {
        self.root.join("blobs")
    }
    fn plugins(&self) -> PathBuf {
        self.root.join("plugins")
    }
    fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// The `state` directory of plugin `name`: kept across its versions
    /// and restarts, gone with [`Store::remove_state`]. Names are checked by
    /// the manifest (`[A-Za-z0-9_-]`), so this stays under the store.
    pub fn state_dir(&self, name: &str) -> PathBuf {
        self.root.join("state").join(name)
    }

    /// Delete plugin `name`'s state directory, if it has one.
    pub fn remove_state(&self, name: &str) -> Result<(), Error> {
        let dir = self.state_dir(name);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(&dir, e)),
        }
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        self.blobs().join(format!("{digest}.gpk"))
    }

    fn record_path(&self, name: &str) -> PathBuf {
        self.plugins().join(format!("{name}.json"))
    }

    /// Store a bundle; returns its digest. Idempotent.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<String, Error> {
        let digest = sha256_hex(bytes);
        let path = self.blob_path(&digest);
        if self.read_blob(&digest).is_ok() {
            return Ok(digest);
        }
        self.write_atomically(&path, bytes, FaultPoint::BlobWrite, FaultPoint::BlobSynced)?;
        self.hit(FaultPoint::BlobRenamed, &path)?;
        Ok(digest)
    }

    /// A stored bundle, checked against its digest.
    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>, Error> {
        let path = self.blob_path(digest);
        let bytes = self.disk.read(&path).map_err(|e| Error::io(&path, e))?;
        if sha256_hex(&bytes) != digest {
            return Err(Error::Store {
                path,
                reason: "contents do not match the digest (disk corruption?)".into(),
            });
        }
        Ok(bytes)
    }

    pub fn record(&self, name: &str) -> Result<Option<PluginRecord>, Error> {
        let path = self.record_path(name);
        match self.disk.read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| Error::Store {
                    path,
                    reason: format!("unreadable record: {e}"),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Every plugin's record, by name. A record that cannot be read is
    /// reported, not skipped silently.
    pub fn records(&self) -> Result<Vec<Result<PluginRecord, Error>>, Error> {
        let dir = self.plugins();
        let mut names: Vec<String> = self
            .disk
            .list(&dir)
            .map_err(|e| Error::io(&dir, e))?
            .into_iter()
            .filter_map(|p| {
                (p.extension()? == "json").then(|| p.file_stem()?.to_str().map(str::to_owned))?
            })
            .collect();
        names.sort();
        Ok(names
            .into_iter()
            .filter_map(|n| self.record(&n).transpose())
            .collect())
    }

    /// Make `record` the plugin's state: one atomic rename.
    pub fn commit(&self, record: &PluginRecord) -> Result<(), Error> {
        let path = self.record_path(&record.name);
        let bytes = serde_json::to_vec_pretty(record).map_err(|e| Error::Store {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        self.write_atomically(
            &path,
            &bytes,
            FaultPoint::PointerWrite,
            FaultPoint::PointerSynced,
        )?;
        self.hit(FaultPoint::PointerRenamed, &path)
    }

    pub fn remove(&self, name: &str) -> Result<(), Error> {
        let path = self.record_path(name);
        self.disk
            .remove_file(&path)
            .map_err(|e| Error::io(&path, e))?;
        self.sync_dir(&self.plugins())
    }

    fn ledger_path(&self) -> PathBuf {
        self.root.join("fleet.json")
    }

    /// The fleet ledger (what desired state this gateway last applied and
    /// which versions it refuses), as the fleet agent wrote it; `None`
    /// before the first.
    pub fn ledger(&self) -> Result<Option<Vec<u8>>, Error> {
        let path = self.ledger_path();
        match self.disk.read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Replace the fleet ledger, atomically as a record is.
    pub fn commit_ledger(&self, bytes: &[u8]) -> Result<(), Error> {
        let path = self.ledger_path();
        self.write_atomically(
            &path,
            bytes,
            FaultPoint::PointerWrite,
            FaultPoint::PointerSynced,
        )
    }

    /// Delete blobs that no record points at. Returns how many went.
    pub fn collect_garbage(&self) -> Result<usize, Error> {
        let mut live = std::collections::HashSet::new();
        for r in self.records()?.into_iter().flatten() {
            live.insert(r.active.digest.clone());
            if let Some(p) = r.previous {
                live.insert(p.digest);
            }
        }
        let dir = self.blobs();
        let mut removed = 0;
        for p in self.disk.list(&dir).map_err(|e| Error::io(&dir, e))? {
            let digest = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            if !live.contains(digest) {
                self.disk.remove_file(&p).map_err(|e| Error::io(&p, e))?;
                removed += 1;
            }
        }
        if removed > 0 {
            self.sync_dir(&dir)?;
        }
        Ok(removed)
    }

    fn hit(&self, at: FaultPoint, path: &Path) -> Result<(), Error> {
        self.faults.hit(at).map_err(|e| Error::io(path, e))
    }

    /// tmp file, fsync, rename, fsync the directory. On any error the temp
    /// file is removed and the destination is as it was.
    fn write_atomically(
        &self,
        dest: &Path,
        bytes: &[u8],
        writing: FaultPoint,
        synced: FaultPoint,
    ) -> Result<(), Error> {
        let tmp = self.tmp().join(format!(
            "{}.{}.{}",
            dest.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
            std::process::id(),
            self.seq.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| {
            let mut f = self.disk.create(&tmp).map_err(|e| Error::io(&tmp, e))?;
            let (first, second) = bytes.split_at(bytes.len() / 2);
            f.write_all(first).map_err(|e| Error::io(&tmp, e))?;
            self.hit(writing, &tmp)?;
            f.write_all(second)
                .and_then(|()| f.sync())
                .map_err(|e| Error::io(&tmp, e))?;
            drop(f);
            self.hit(synced, &tmp)?;
            self.disk
                .rename(&tmp, dest)
                .map_err(|e| Error::io(dest, e))?;
            self.sync_dir(dest.parent().unwrap_or(Path::new(".")))
        })();
        if result.is_err() {
            let _ = self.disk.remove_file(&tmp);
        }
        result
    }

    fn sync_dir(&self, dir: &Path) -> Result<(), Error> {
        self.disk.sync_dir(dir).map_err(|e| Error::io(dir, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::FaultAction;

    fn record(name: &str, digest: &str, v: &str) -> PluginRecord {
        PluginRecord {
            name: name.into(),
            active: Pointer {
                digest: digest.into(),
                version: v.parse().unwrap(),
            },
            previous: None,
        }
    }

    #[test]
    fn only_newer_versions_replace_the_active_one() {
        let p = |d: &str, v: &str| Pointer {
            digest: d.into(),
            version: v.parse().unwrap(),
        };
        let first = PluginRecord::admit(None, "kws", p("a", "1.0.0"), false)
            .unwrap()
            .unwrap();
        assert_eq!(first.previous, None);
        let up = PluginRecord::admit(Some(&first), "kws", p("b", "1.1.0"), false)
            .unwrap()
            .unwrap();
        assert_eq!(
            (up.active.clone(), up.previous.clone()),
            (p("b", "1.1.0"), Some(p("a", "1.0.0")))
        );
        assert_eq!(
            PluginRecord::admit(Some(&up), "kws", p("b", "1.1.0"), false).unwrap(),
            None
        );
        let e = PluginRecord::admit(Some(&up), "kws", p("c", "1.0.9"), false).unwrap_err();
        assert!(e.to_string().contains("rollback attack"), "{e}");
        let e = PluginRecord::admit(Some(&up), "kws", p("c", "1.1.0"), false).unwrap_err();
        assert!(e.to_string().contains("bump the version"), "{e}");
        // Pre-releases sort before their release.
        assert!(PluginRecord::admit(Some(&up), "kws", p("c", "1.1.0-rc.1"), false).is_err());
        let forced = PluginRecord::admit(Some(&up), "kws", p("c", "1.0.9"), true)
            .unwrap()
            .unwrap();
        assert_eq!(forced.active, p("c", "1.0.9"));
    }

    #[test]
    fn blobs_are_content_addressed_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), Faults::NONE).unwrap();
        let d = s.put_blob(b"bundle").unwrap();
        assert_eq!(d, sha256_hex(b"bundle"));
        assert_eq!(s.put_blob(b"bundle").unwrap(), d);
        assert_eq!(s.read_blob(&d).unwrap(), b"bundle");
        std::fs::write(dir.path().join("blobs").join(format!("{d}.gpk")), b"bundlf").unwrap();
        assert!(
            s.read_blob(&d)
                .unwrap_err()
                .to_string()
                .contains("do not match")
        );
        // A damaged blob is rewritten by the next put.
        s.put_blob(b"bundle").unwrap();
        assert_eq!(s.read_blob(&d).unwrap(), b"bundle");
    }

    #[test]
    fn a_full_disk_leaves_the_record_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), Faults::NONE).unwrap();
        let old = record("kws", &s.put_blob(b"v1").unwrap(), "1.0.0");
        s.commit(&old).unwrap();
        for point in [FaultPoint::BlobWrite, FaultPoint::PointerWrite] {
            let full = Store::open(dir.path(), Faults::new(FaultAction::NoSpace, point)).unwrap();
            let e = full
                .put_blob(b"v2")
                .and_then(|d| full.commit(&record("kws", &d, "2.0.0")))
                .unwrap_err();
            assert!(e.is_disk_full(), "{e}");
            assert_eq!(full.record("kws").unwrap(), Some(old.clone()));
            assert_eq!(
                std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
                0
            );
        }
    }

    /// A power cut after any single change the store makes to its disk:
    /// what survives is only what was fsynced ([`crate::disk::SimDisk`]).
    /// Every record left must name bundles that are whole, and a deploy,
    /// removal or collection that returned must have survived. Without the
    /// file fsync a cut leaves empty records and blobs; without the
    /// directory fsync it loses a deploy that was acknowledged.
    #[test]
    fn a_power_cut_at_any_step_keeps_every_acknowledged_change_and_nothing_torn() {
        use crate::disk::SimDisk;

        let disk = Arc::new(SimDisk::default());
        let root = Path::new("/store");
        let s = Store::open_on(disk.clone(), root, Faults::NONE).unwrap();
        let v1 = record("kws", &s.put_blob(b"kws bundle 1.0.0").unwrap(), "1.0.0");
        s.commit(&v1).unwrap();
        let after_v1 = disk.changes();
        let mut v2 = record("kws", &s.put_blob(b"kws bundle 2.0.0").unwrap(), "2.0.0");
        v2.previous = Some(v1.active.clone());
        s.commit(&v2).unwrap();
        let after_v2 = disk.changes();
        let other = record("vww", &s.put_blob(b"vww bundle 1.0.0").unwrap(), "1.0.0");
        s.commit(&other).unwrap();
        let after_other = disk.changes();
        s.remove("vww").unwrap();
        let after_remove = disk.changes();
        assert_eq!(s.collect_garbage().unwrap(), 1);
        let after_gc = disk.changes();

        for cut in 0..disk.changes() {
            let image = Arc::new(disk.power_cut(cut));
            let s = Store::open_on(image, root, Faults::NONE)
                .unwrap_or_else(|e| panic!("cut after change {cut}: the store does not open: {e}"));
            // Nothing torn: every record reads, and names whole bundles.
            for r in s.records().unwrap() {
                let r = r.unwrap_or_else(|e| panic!("cut after change {cut}: {e}"));
                for p in std::iter::once(&r.active).chain(&r.previous) {
                    s.read_blob(&p.digest)
                        .unwrap_or_else(|e| panic!("cut after change {cut}: {} {e}", r.name));
                }
            }
            // Nothing acknowledged lost.
            let kws = s.record("kws").unwrap();
            let want_kws: &[Option<&PluginRecord>] = if cut + 1 >= after_v2 {
                &[Some(&v2)]
            } else if cut + 1 >= after_v1 {
                &[Some(&v1), Some(&v2)]
            } else {
                &[None, Some(&v1)]
            };
            assert!(
                want_kws.contains(&kws.as_ref()),
                "cut after change {cut}: kws is {kws:?}"
            );
            let vww = s.record("vww").unwrap();
            if cut + 1 >= after_remove {
                assert_eq!(vww, None, "cut after change {cut}: a removal was lost");
            } else if cut + 1 >= after_other {
                assert_eq!(vww.as_ref(), Some(&other), "cut after change {cut}");
            }
            if cut + 1 >= after_gc {
                assert_eq!(s.collect_garbage().unwrap(), 0, "cut after change {cut}");
            }
        }
    }

    #[test]
    fn garbage_is_what_no_record_points_at() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), Faults::NONE).unwrap();
        let a = s.put_blob(b"a").unwrap();
        let b = s.put_blob(b"b").unwrap();
        s.put_blob(b"c").unwrap();
        let mut r = record("p", &b, "2.0.0");
        r.previous = Some(Pointer {
            digest: a.clone(),
            version: "1.0.0".parse().unwrap(),
        });
        s.commit(&r).unwrap();
        assert_eq!(s.collect_garbage().unwrap(), 1);
        assert!(s.read_blob(&a).is_ok() && s.read_blob(&b).is_ok());
        assert_eq!(s.records().unwrap().len(), 1);
        s.remove("p").unwrap();
        assert!(s.record("p").unwrap().is_none());
    }
}
