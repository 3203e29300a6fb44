//! What the disk did beside a run: a probe that appends 4 KiB and fdatasyncs it again and
//! again on a thread of its own, in the temporary directory's file system (the one the
//! controller's data directory lives on). Benchmarks and the soak print its tail beside their
//! own figures, so every row shows what it stood on.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A running probe; [`DiskProbe::finish`] stops it and hands over what it measured.
#[derive(Debug)]
pub struct DiskProbe {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<u64>>,
    _dir: tempfile::TempDir,
}

impl DiskProbe {
    /// Starts syncing every `every`.
    ///
    /// # Panics
    /// If no temporary file can be written.
    #[must_use]
    pub fn start(every: Duration) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("fsync-beside");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut file = std::fs::File::create(path).expect("probe file");
            let mut us = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                us.push(append_and_sync(&mut file));
                std::thread::sleep(every);
            }
            us
        });
        Self {
            stop,
            thread,
            _dir: dir,
        }
    }

    /// Every sync's duration in µs, in the order they ran.
    ///
    /// # Panics
    /// If the probe's thread panicked (the disk refused a write).
    #[must_use]
    pub fn finish(self) -> Vec<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("disk probe")
    }
}

/// `count` appends and syncs back to back in `dir`: what one durable commit costs at least on
/// this disk. µs each.
///
/// # Panics
/// If the file cannot be written.
#[must_use]
pub fn fsyncs(dir: &Path, count: usize) -> Vec<u64> {
    let mut file = std::fs::File::create(dir.join("fsync-probe")).expect("probe file");
    (0..count).map(|_| append_and_sync(&mut file)).collect()
}

fn append_and_sync(file: &mut std::fs::File) -> u64 {
    let block = [0xa5_u8; 4096];
    let t = Instant::now();
    file.write_all(&block).expect("probe write");
    file.sync_data().expect("probe sync");
    t.elapsed().as_micros() as u64
}

/// The `q` quantile (0..=1) of `sorted`, nearest rank; `None` when empty.
#[must_use]
pub fn quantile(sorted: &[u64], q: f64) -> Option<u64> {
    let rank = (sorted.len() as f64 * q).ceil() as usize;
    sorted.get(rank.saturating_sub(1)).copied()
}
