//! The Raft log's files: an append-only sequence of segment files of checksummed records, one
//! write and one `fdatasync` per group of operations, recovered by replaying the records in
//! order.
//!
//! **Files.** The log lives in `<data-dir>/log/`: segment files named by a sequence number
//! (`00000000000000000001.seg`, …) and a `LOCK` file that one process holds while it writes (a
//! second `tix serve` on the same directory is refused before it reads anything, so it can never
//! mistake the first one's unsynced tail for a torn one). A segment opens with an 8-byte header
//! ([`SEGMENT_MAGIC`], format version [`SEGMENT_FORMAT`], a zero byte); then come records:
//!
//! ```text
//! payload length: u32 LE | CRC-32 of kind and payload: u32 LE | kind: u8 | payload
//! ```
//!
//! Kinds: an entry (its index as u64 LE, then the entry in the codec's format), a truncation
//! (the first index removed), a purge (the last index purged, then its log id), the vote, and the
//! committed log id. The log store decides what the opaque bytes mean; this module only needs
//! the indexes, to replay truncations and purges and to know which segments a purge frees.
//!
//! **Group commit.** The writer [`push`](SegmentLog::push)es every operation of a group into one
//! buffer, then [`commit`](SegmentLog::commit) writes it with one `write` and makes it durable
//! with one `fdatasync`. Unlike a B-tree commit, nothing already on disk is rewritten: an append
//! costs its own bytes, a checksum and the sync.
//!
//! **Rolling and deletion.** Once the current segment passes its target size
//! ([`SEGMENT_BYTES_TARGET`]), the next group goes to a new segment. A new segment is written
//! aside (`.seg.tmp`), opened with the records that restate everything older segments decided
//! (the vote, the committed log id, the last purge), synced, and only then renamed into place;
//! so every segment file that exists under its final name replays, on its own, to the state it
//! was started from. After a purge, the oldest segments whose every entry is purged are deleted
//! (a prefix of the sequence only, never the current one), so the disk holds about the log
//! openraft keeps, whatever the history's length.
//!
//! **Recovery.** Opening replays every segment in sequence order. A record that does not check
//! out (short, wrong checksum, unknown kind) in the *last* segment is a torn write from a crash
//! mid-group: nothing after it was acknowledged (a group's callbacks fire only after its sync),
//! so the file is cut back to the last whole record and the cut is logged. The same in any
//! earlier segment, a gap in the sequence, or a header that is not a segment's is damage that
//! replay cannot repair: opening fails with the file, the offset and the reason, and nothing is
//! changed on disk.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The first six bytes of every segment file.
pub const SEGMENT_MAGIC: &[u8; 6] = b"TIXSEG";
/// The segment format this build writes and reads.
pub const SEGMENT_FORMAT: u8 = 1;
/// Bytes of the segment header: the magic, the format version and a zero byte.
const HEADER_BYTES: usize = 8;
/// Bytes in front of every record's payload: length, checksum and kind.
const FRAME_BYTES: usize = 9;
/// The largest payload a record may have; a longer length is damage, not a record (a batch
/// entry is far below it).
pub const RECORD_BYTES_MAX: usize = 256 << 20;
/// The size after which the next group goes to a new segment.
pub const SEGMENT_BYTES_TARGET: u64 = 16 << 20;

const KIND_ENTRY: u8 = 1;
const KIND_TRUNCATE: u8 = 2;
const KIND_PURGE: u8 = 3;
const KIND_VOTE: u8 = 4;
const KIND_COMMITTED: u8 = 5;

/// One operation on the log, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record<'a> {
    /// The entry at `index`, in the codec's format.
    Entry {
        /// The entry's log index.
        index: u64,
        /// The encoded entry.
        bytes: &'a [u8],
    },
    /// Every entry from `from_index` on is removed.
    Truncate {
        /// The first index removed.
        from_index: u64,
    },
    /// Every entry up to `index` is purged; `log_id` is the purged log id, encoded.
    Purge {
        /// The last index purged.
        index: u64,
        /// The encoded log id of that entry.
        log_id: &'a [u8],
    },
    /// The vote, encoded.
    Vote(&'a [u8]),
    /// The committed log id, encoded.
    Committed(&'a [u8]),
}

/// What the records of a log replay to: the entries kept and the latest small records, all
/// still encoded.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The entries not truncated or purged, by index.
    pub entries: BTreeMap<u64, Vec<u8>>,
    /// The latest vote.
    pub vote: Option<Vec<u8>>,
    /// The latest committed log id.
    pub committed: Option<Vec<u8>>,
    /// The latest purge: its index and encoded log id.
    pub last_purged: Option<(u64, Vec<u8>)>,
}

impl Recovered {
    /// Applies one record, as replay does.
    pub fn apply(&mut self, record: Record<'_>) {
        match record {
            Record::Entry { index, bytes } => {
                self.entries.insert(index, bytes.to_vec());
            }
            Record::Truncate { from_index } => {
                self.entries.split_off(&from_index);
            }
            Record::Purge { index, log_id } => {
                self.entries = self.entries.split_off(&(index + 1));
                self.last_purged = Some((index, log_id.to_vec()));
            }
            Record::Vote(bytes) => self.vote = Some(bytes.to_vec()),
            Record::Committed(bytes) => self.committed = Some(bytes.to_vec()),
        }
    }
}

/// The records that restate a log's small state — the vote, the committed log id, the last
/// purge — as the head of every new segment does.
fn restatement<'a>(
    vote: Option<&'a [u8]>,
    committed: Option<&'a [u8]>,
    last_purged: Option<&'a (u64, Vec<u8>)>,
) -> impl Iterator<Item = Record<'a>> {
    let purge = last_purged.map(|(index, log_id)| Record::Purge {
        index: *index,
        log_id,
    });
    (vote.map(Record::Vote).into_iter())
        .chain(committed.map(Record::Committed))
        .chain(purge)
}

impl Recovered {
    /// The records that rebuild this state in a new log: the small records, then the entries.
    pub fn records(&self) -> impl Iterator<Item = Record<'_>> {
        let entries = (self.entries.iter()).map(|(index, bytes)| Record::Entry {
            index: *index,
            bytes,
        });
        restatement(
            self.vote.as_deref(),
            self.committed.as_deref(),
            self.last_purged.as_ref(),
        )
        .chain(entries)
    }
}

/// One segment file.
#[derive(Debug, Clone)]
struct Segment {
    seq: u64,
    /// The highest entry index written to it (truncated or not), `None` when it has no entry.
    max_index: Option<u64>,
}

/// The open log: the segments on disk and the current one, appended to by one writer.
pub struct SegmentLog {
    dir: PathBuf,
    /// Held for the log's lifetime: the exclusive lock on `LOCK`.
    _lock: File,
    /// Older segments, oldest first.
    closed: Vec<Segment>,
    current: Segment,
    file: File,
    len: u64,
    segment_bytes_target: u64,
    /// The small records every new segment restates.
    vote: Option<Vec<u8>>,
    committed: Option<Vec<u8>>,
    last_purged: Option<(u64, Vec<u8>)>,
    /// The group being gathered.
    buf: Vec<u8>,
    /// The highest index purged by the group being gathered.
    purged_in_group: Option<u64>,
}

/// Returns the error for damage at `offset` of `path`.
fn damaged(path: &Path, offset: u64, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "the Raft log segment {} is damaged at byte {offset}: {why}; tix does not repair \
             it; restore this node's data directory from a backup, or wipe it and add the node \
             back to the cluster as a new node",
            path.display()
        ),
    )
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.seg"))
}

/// Makes the directory entry changes in `dir` (creations, renames, deletions) durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Appends `record`'s frame to `buf`.
fn encode(buf: &mut Vec<u8>, record: Record<'_>) {
    let start = buf.len();
    buf.extend_from_slice(&[0; FRAME_BYTES]);
    let kind = match record {
        Record::Entry { index, bytes } => {
            buf.extend_from_slice(&index.to_le_bytes());
            buf.extend_from_slice(bytes);
            KIND_ENTRY
        }
        Record::Truncate { from_index } => {
            buf.extend_from_slice(&from_index.to_le_bytes());
            KIND_TRUNCATE
        }
        Record::Purge { index, log_id } => {
            buf.extend_from_slice(&index.to_le_bytes());
            buf.extend_from_slice(log_id);
            KIND_PURGE
        }
        Record::Vote(bytes) => {
            buf.extend_from_slice(bytes);
            KIND_VOTE
        }
        Record::Committed(bytes) => {
            buf.extend_from_slice(bytes);
            KIND_COMMITTED
        }
    };
    let payload_len = buf.len() - start - FRAME_BYTES;
    assert!(
        payload_len <= RECORD_BYTES_MAX,
        "a log record of {payload_len} bytes is above RECORD_BYTES_MAX"
    );
    buf[start + 8] = kind;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&buf[start + 8..]);
    buf[start..start + 4].copy_from_slice(&(payload_len as u32).to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.finalize().to_le_bytes());
}

/// Reads the record at the start of `bytes`: the record and its frame's length, or why it does
/// not check out.
fn decode(bytes: &[u8]) -> Result<(Record<'_>, usize), &'static str> {
    if bytes.len() < FRAME_BYTES {
        return Err("a record's frame is cut short");
    }
    let len = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    if len > RECORD_BYTES_MAX {
        return Err("a record's length is beyond the largest record");
    }
    let Some(body) = bytes.get(8..FRAME_BYTES + len) else {
        return Err("a record is cut short");
    };
    if crc32fast::hash(body) != crc {
        return Err("a record's checksum does not match");
    }
    let (kind, payload) = (body[0], &body[1..]);
    let index = |what| -> Result<(u64, &[u8]), &'static str> {
        let (head, rest) = payload.split_at_checked(8).ok_or(what)?;
        Ok((u64::from_le_bytes(head.try_into().expect("8 bytes")), rest))
    };
    let record = match kind {
        KIND_ENTRY => {
            let (index, bytes) = index("an entry record has no index")?;
            Record::Entry { index, bytes }
        }
        KIND_TRUNCATE => {
            let (from_index, _) = index("a truncation record has no index")?;
            Record::Truncate { from_index }
        }
        KIND_PURGE => {
            let (index, log_id) = index("a purge record has no index")?;
            Record::Purge { index, log_id }
        }
        KIND_VOTE => Record::Vote(payload),
        KIND_COMMITTED => Record::Committed(payload),
        _ => return Err("a record has an unknown kind"),
    };
    Ok((record, FRAME_BYTES + len))
}

/// The sequence numbers of the segment files in the log folder `dir`, in order (it only reads).
pub fn segment_numbers(dir: &Path) -> io::Result<Vec<u64>> {
    let mut seqs = Vec::new();
    for item in std::fs::read_dir(dir)? {
        let name = item?.file_name();
        if let Some(stem) = name.to_string_lossy().strip_suffix(".seg")
            && let Ok(seq) = stem.parse::<u64>()
        {
            seqs.push(seq);
        }
    }
    seqs.sort_unstable();
    Ok(seqs)
}

/// Removes the leftovers of an interrupted roll (`.seg.tmp`) from the log folder `dir`.
fn remove_interrupted_rolls(dir: &Path) -> io::Result<()> {
    for item in std::fs::read_dir(dir)? {
        let item = item?;
        if item.file_name().to_string_lossy().ends_with(".seg.tmp") {
            std::fs::remove_file(item.path())?;
        }
    }
    Ok(())
}

impl SegmentLog {
    /// Opens (or creates) the log in `dir`, replays it and returns it with what it holds. A torn
    /// tail of the last segment is cut off; any other damage fails with what and where.
    pub fn open(dir: &Path, segment_bytes_target: u64) -> io::Result<(SegmentLog, Recovered)> {
        if !dir.is_dir() {
            std::fs::create_dir_all(dir)?;
            // The new folder's own entry must survive a crash too.
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("LOCK"))?;
        lock.try_lock().map_err(|e| {
            io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "the Raft log in {} is in use by another process ({e}); one tix serve per \
                     data directory",
                    dir.display()
                ),
            )
        })?;
        remove_interrupted_rolls(dir)?;
        let seqs = segment_numbers(dir)?;
        for pair in seqs.windows(2) {
            if pair[1] != pair[0] + 1 {
                return Err(damaged(
                    &segment_path(dir, pair[0] + 1),
                    0,
                    "this segment is missing from the sequence",
                ));
            }
        }
        let mut recovered = Recovered::default();
        let mut segments = Vec::new();
        let mut last_len = 0;
        for (i, &seq) in seqs.iter().enumerate() {
            let path = segment_path(dir, seq);
            let last = i + 1 == seqs.len();
            let (max_index, len) = replay(&path, last, &mut recovered)?;
            segments.push(Segment { seq, max_index });
            last_len = len;
        }
        let (current, file, len) = match segments.pop() {
            Some(current) => {
                let file = OpenOptions::new()
                    .append(true)
                    .open(segment_path(dir, current.seq))?;
                (current, file, last_len)
            }
            None => {
                let seq = 1;
                let file = create_segment(dir, seq, &[])?;
                let current = Segment {
                    seq,
                    max_index: None,
                };
                (current, file, HEADER_BYTES as u64)
            }
        };
        let log = SegmentLog {
            dir: dir.to_path_buf(),
            _lock: lock,
            closed: segments,
            current,
            file,
            len,
            segment_bytes_target: segment_bytes_target.max(1),
            vote: recovered.vote.clone(),
            committed: recovered.committed.clone(),
            last_purged: recovered.last_purged.clone(),
            buf: Vec::new(),
            purged_in_group: None,
        };
        metrics::gauge!("tix_log_segment_files").set(log.segment_count() as f64);
        Ok((log, recovered))
    }

    /// Returns how many segment files the log has.
    pub fn segment_count(&self) -> usize {
        self.closed.len() + 1
    }

    /// Adds `record` to the group being gathered (nothing is written yet).
    pub fn push(&mut self, record: Record<'_>) {
        encode(&mut self.buf, record);
        match record {
            Record::Entry { index, .. } => {
                self.current.max_index =
                    Some(self.current.max_index.map_or(index, |m| m.max(index)));
            }
            Record::Truncate { .. } => {}
            Record::Purge { index, log_id } => {
                self.last_purged = Some((index, log_id.to_vec()));
                self.purged_in_group = Some(self.purged_in_group.map_or(index, |p| p.max(index)));
            }
            Record::Vote(bytes) => self.vote = Some(bytes.to_vec()),
            Record::Committed(bytes) => self.committed = Some(bytes.to_vec()),
        }
    }

    /// Writes the gathered group with one write and makes it durable with one `fdatasync`;
    /// then starts a new segment if the current one has reached its target size, and deletes
    /// the segments a purge in the group freed.
    ///
    /// Only the write and the sync decide the result: once the group is durable, a segment
    /// that cannot be started (a full disk) or deleted is logged and tried again after the next
    /// group — the current segment grows meanwhile — rather than failing records that are
    /// safely on disk. (It fails only if a half-made segment cannot be removed again.)
    pub fn commit(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.file.write_all(&self.buf)?;
            self.len += self.buf.len() as u64;
            self.buf.clear();
            self.file.sync_data()?;
        }
        if self.len >= self.segment_bytes_target {
            self.roll()?;
        }
        if let Some(purged) = self.purged_in_group.take() {
            self.delete_purged(purged);
        }
        Ok(())
    }

    /// Starts the next segment, opened with the records that restate the state so far.
    fn roll(&mut self) -> io::Result<()> {
        let seq = self.current.seq + 1;
        let mut head = Vec::new();
        let small = restatement(
            self.vote.as_deref(),
            self.committed.as_deref(),
            self.last_purged.as_ref(),
        );
        for record in small {
            encode(&mut head, record);
        }
        let file = match create_segment(&self.dir, seq, &head) {
            Ok(file) => file,
            Err(e) => {
                // The group is durable; keep appending to the current segment and try again
                // after the next group. A half-made next segment must not stay behind: it would
                // replay after records written here later, restating older values over them.
                let path = segment_path(&self.dir, seq);
                for leftover in [path.with_extension("seg.tmp"), path] {
                    match std::fs::remove_file(&leftover) {
                        Ok(()) => {}
                        Err(gone) if gone.kind() == io::ErrorKind::NotFound => {}
                        Err(stuck) => {
                            return Err(io::Error::other(format!(
                                "could not start log segment {seq} ({e}) nor remove {} ({stuck})",
                                leftover.display()
                            )));
                        }
                    }
                }
                tracing::warn!(error = %e, dir = %self.dir.display(),
                    "could not start a new log segment; the current one grows until it can");
                return Ok(());
            }
        };
        let previous = std::mem::replace(
            &mut self.current,
            Segment {
                seq,
                max_index: None,
            },
        );
        self.closed.push(previous);
        self.file = file;
        self.len = (HEADER_BYTES + head.len()) as u64;
        metrics::gauge!("tix_log_segment_files").set(self.segment_count() as f64);
        Ok(())
    }

    /// Deletes the oldest closed segments whose entries are all at or below `purged`, oldest
    /// first; one that cannot be deleted stays, with every later one, for the next purge (so
    /// the segments on disk always remain a contiguous sequence).
    fn delete_purged(&mut self, purged: u64) {
        let freed = self
            .closed
            .iter()
            .take_while(|s| s.max_index.is_none_or(|m| m <= purged))
            .count();
        let mut deleted = 0;
        for segment in &self.closed[..freed] {
            let path = segment_path(&self.dir, segment.seq);
            match std::fs::remove_file(&path) {
                Ok(()) => deleted += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => deleted += 1,
                Err(e) => {
                    tracing::warn!(error = %e, segment = %path.display(),
                        "could not delete a purged log segment; trying again after the next purge");
                    break;
                }
            }
        }
        if deleted == 0 {
            return;
        }
        self.closed.drain(..deleted);
        if let Err(e) = sync_dir(&self.dir) {
            // The deletions may come back after a crash: harmless, they replay to a state the
            // later segments supersede.
            tracing::warn!(error = %e, "could not sync the log folder after deleting segments");
        }
        metrics::gauge!("tix_log_segment_files").set(self.segment_count() as f64);
    }
}

/// Writes segment `seq` aside with its header and `head`, syncs it, renames it into place and
/// syncs the directory; returns it open for appending.
fn create_segment(dir: &Path, seq: u64, head: &[u8]) -> io::Result<File> {
    let path = segment_path(dir, seq);
    let tmp = path.with_extension("seg.tmp");
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&tmp)?;
    let mut bytes = Vec::with_capacity(HEADER_BYTES + head.len());
    bytes.extend_from_slice(SEGMENT_MAGIC);
    bytes.extend_from_slice(&[SEGMENT_FORMAT, 0]);
    bytes.extend_from_slice(head);
    file.write_all(&bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, &path)?;
    sync_dir(dir)?;
    OpenOptions::new().append(true).open(&path)
}

/// Replays the segment at `path` into `into`; returns the highest entry index it holds and its
/// length (after cutting a torn tail, which only the `last` segment may have).
fn replay(path: &Path, last: bool, into: &mut Recovered) -> io::Result<(Option<u64>, u64)> {
    let bytes = std::fs::read(path)?;
    match bytes.get(..HEADER_BYTES) {
        None => {
            return Err(damaged(
                path,
                0,
                "the file is shorter than a segment header",
            ));
        }
        Some(header) if &header[..6] != SEGMENT_MAGIC => {
            return Err(damaged(path, 0, "the file is not a tix log segment"));
        }
        Some(header) if header[6] != SEGMENT_FORMAT => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the Raft log segment {} has format version {}; this build reads version \
                     {SEGMENT_FORMAT}",
                    path.display(),
                    header[6]
                ),
            ));
        }
        Some(_) => {}
    }
    let mut offset = HEADER_BYTES;
    let mut max_index: Option<u64> = None;
    while offset < bytes.len() {
        match decode(&bytes[offset..]) {
            Ok((record, len)) => {
                if let Record::Entry { index, .. } = record {
                    max_index = Some(max_index.map_or(index, |m| m.max(index)));
                }
                into.apply(record);
                offset += len;
            }
            Err(why) if last => {
                tracing::warn!(
                    segment = %path.display(),
                    offset,
                    bytes_dropped = bytes.len() - offset,
                    reason = why,
                    "cutting a torn tail off the Raft log (a write interrupted by a crash; \
                     nothing in it was acknowledged)"
                );
                let file = OpenOptions::new().write(true).open(path)?;
                file.set_len(offset as u64)?;
                file.sync_all()?;
                break;
            }
            Err(why) => return Err(damaged(path, offset as u64, why)),
        }
    }
    Ok((max_index, offset as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64) -> Vec<u8> {
        format!("entry {index}").into_bytes()
    }

    fn append(log: &mut SegmentLog, expected: &mut Recovered, range: std::ops::Range<u64>) {
        for index in range {
            let bytes = entry(index);
            let record = Record::Entry {
                index,
                bytes: &bytes,
            };
            log.push(record);
            expected.apply(record);
        }
        log.commit().expect("commit");
    }

    #[test]
    fn every_kind_round_trips_through_a_frame() {
        let records = [
            Record::Entry {
                index: 7,
                bytes: b"abc",
            },
            Record::Entry {
                index: u64::MAX,
                bytes: b"",
            },
            Record::Truncate { from_index: 3 },
            Record::Purge {
                index: 2,
                log_id: b"id",
            },
            Record::Vote(b"vote"),
            Record::Committed(b""),
        ];
        let mut buf = Vec::new();
        for r in records {
            encode(&mut buf, r);
        }
        let mut rest = buf.as_slice();
        for r in records {
            let (read, len) = decode(rest).expect("decodes");
            assert_eq!(read, r);
            rest = &rest[len..];
        }
        assert!(rest.is_empty());
    }

    #[test]
    fn a_flipped_bit_anywhere_in_a_frame_is_caught() {
        let mut buf = Vec::new();
        encode(
            &mut buf,
            Record::Entry {
                index: 9,
                bytes: b"payload",
            },
        );
        for byte in 0..buf.len() {
            for bit in 0..8 {
                let mut bad = buf.clone();
                bad[byte] ^= 1 << bit;
                match decode(&bad) {
                    Err(_) => {}
                    Ok((record, _)) => panic!("byte {byte} bit {bit}: read {record:?}"),
                }
            }
        }
    }

    #[test]
    fn replay_applies_truncations_purges_and_the_latest_small_records() {
        let dir = tempfile::tempdir().expect("dir");
        let mut expected = Recovered::default();
        {
            let (mut log, got) = SegmentLog::open(dir.path(), SEGMENT_BYTES_TARGET).expect("open");
            assert_eq!(got, Recovered::default());
            append(&mut log, &mut expected, 1..11);
            for r in [
                Record::Vote(b"v1"),
                Record::Truncate { from_index: 8 },
                Record::Vote(b"v2"),
                Record::Purge {
                    index: 3,
                    log_id: b"p3",
                },
                Record::Committed(b"c5"),
            ] {
                log.push(r);
                expected.apply(r);
            }
            log.commit().expect("commit");
            append(&mut log, &mut expected, 8..10);
        }
        let (_, got) = SegmentLog::open(dir.path(), SEGMENT_BYTES_TARGET).expect("reopen");
        assert_eq!(
            got.entries.keys().copied().collect::<Vec<_>>(),
            vec![4, 5, 6, 7, 8, 9]
        );
        assert_eq!(got.vote.as_deref(), Some(&b"v2"[..]));
        assert_eq!(got.committed.as_deref(), Some(&b"c5"[..]));
        assert_eq!(got.last_purged, Some((3, b"p3".to_vec())));
        assert_eq!(got, expected);
    }

    /// What a log replays to, written into a new log as its records, replays to the same.
    #[test]
    fn records_rebuild_what_they_were_read_from() {
        let mut state = Recovered::default();
        for r in [
            Record::Entry {
                index: 4,
                bytes: b"four",
            },
            Record::Entry {
                index: 5,
                bytes: b"five",
            },
            Record::Vote(b"v"),
            Record::Committed(b"c"),
            Record::Purge {
                index: 3,
                log_id: b"p3",
            },
        ] {
            state.apply(r);
        }
        let dir = tempfile::tempdir().expect("dir");
        {
            let (mut log, _) = SegmentLog::open(dir.path(), SEGMENT_BYTES_TARGET).expect("open");
            for record in state.records() {
                log.push(record);
            }
            log.commit().expect("commit");
        }
        let (_, got) = SegmentLog::open(dir.path(), SEGMENT_BYTES_TARGET).expect("reopen");
        assert_eq!(got, state);
    }

    #[test]
    fn a_second_process_cannot_open_a_log_in_use() {
        let dir = tempfile::tempdir().expect("dir");
        let (_log, _) = SegmentLog::open(dir.path(), SEGMENT_BYTES_TARGET).expect("open");
        let error = SegmentLog::open(dir.path(), SEGMENT_BYTES_TARGET)
            .err()
            .expect("refused");
        assert!(error.to_string().contains("in use"), "{error}");
    }

    /// Cuts the last segment at every length inside its last group and at garbage appended to
    /// it: every cut reopens to the state before that group or with it whole, never an error,
    /// and the log takes new appends after the cut.
    #[test]
    fn a_torn_tail_is_cut_back_to_the_last_whole_record() {
        let dir = tempfile::tempdir().expect("dir");
        let mut before = Recovered::default();
        let (whole_len, after) = {
            let (mut log, _) = SegmentLog::open(dir.path(), SEGMENT_BYTES_TARGET).expect("open");
            append(&mut log, &mut before, 1..6);
            let mut after = before.clone();
            append(&mut log, &mut after, 6..9);
            (log.len, after)
        };
        let path = segment_path(dir.path(), 1);
        let full = std::fs::read(&path).expect("read");
        assert_eq!(full.len() as u64, whole_len);
        let group_start = full.len() - 3 * (FRAME_BYTES + 8 + entry(6).len());
        let mut garbage = full.clone();
        garbage.extend_from_slice(&[0xAB; 5]);
        let mut zeros = full.clone();
        zeros.extend_from_slice(&[0; 64]);
        let cuts = (group_start..full.len())
            .map(|n| full[..n].to_vec())
            .chain([garbage, zeros]);
        for (i, bytes) in cuts.enumerate() {
            std::fs::write(&path, &bytes).expect("write");
            let (mut log, got) = SegmentLog::open(dir.path(), SEGMENT_BYTES_TARGET)
                .unwrap_or_else(|e| panic!("cut {i} ({} bytes): {e}", bytes.len()));
            let whole: Vec<u64> = got.entries.keys().copied().collect();
            assert!(
                whole.len() >= 5 && whole.iter().copied().eq(1..1 + whole.len() as u64),
                "cut {i}: {whole:?}"
            );
            assert!(got.entries.len() <= after.entries.len());
            let mut expected = got.clone();
            append(&mut log, &mut expected, 20..22);
            drop(log);
            let (_, again) = SegmentLog::open(dir.path(), SEGMENT_BYTES_TARGET).expect("again");
            assert_eq!(again, expected, "cut {i}");
        }
    }

    #[test]
    fn damage_before_the_last_segment_is_refused_with_where() {
        let dir = tempfile::tempdir().expect("dir");
        {
            let (mut log, _) = SegmentLog::open(dir.path(), 64).expect("open");
            let mut expected = Recovered::default();
            append(&mut log, &mut expected, 1..11);
            append(&mut log, &mut expected, 11..21);
            assert!(log.segment_count() >= 2);
        }
        let first = segment_path(dir.path(), 1);
        let mut bytes = std::fs::read(&first).expect("read");
        let at = HEADER_BYTES + FRAME_BYTES + 3;
        bytes[at] ^= 0x40;
        std::fs::write(&first, &bytes).expect("write");
        let error = SegmentLog::open(dir.path(), 64).err().expect("refused");
        let text = error.to_string();
        assert!(text.contains("00000000000000000001.seg"), "{text}");
        assert!(text.contains(&format!("byte {HEADER_BYTES}")), "{text}");
        assert!(text.contains("checksum"), "{text}");
        assert_eq!(
            std::fs::read(&first).expect("kept"),
            bytes,
            "nothing changed"
        );

        std::fs::remove_file(segment_path(dir.path(), 2)).expect("rm");
        let error = SegmentLog::open(dir.path(), 64).err().expect("refused");
        assert!(error.to_string().contains("missing"), "{error}");
    }

    /// A purged segment that is already gone (deleted by hand, or a deletion that reached the
    /// disk just before a crash) is no error: the purge completes and the log reopens.
    #[test]
    fn a_purged_segment_already_gone_is_no_error() {
        let dir = tempfile::tempdir().expect("dir");
        let mut expected = Recovered::default();
        let (mut log, _) = SegmentLog::open(dir.path(), 64).expect("open");
        for start in (1..30).step_by(5) {
            append(&mut log, &mut expected, start..start + 5);
        }
        assert!(log.closed.len() >= 3);
        std::fs::remove_file(segment_path(dir.path(), log.closed[0].seq)).expect("rm");
        let purge = Record::Purge {
            index: 20,
            log_id: b"p20",
        };
        log.push(purge);
        expected.apply(purge);
        log.commit()
            .expect("a missing purged segment does not fail the group");
        assert!(
            log.closed
                .first()
                .is_none_or(|s| s.max_index.is_some_and(|m| m > 20))
        );
        drop(log);
        let (_, got) = SegmentLog::open(dir.path(), 64).expect("reopen");
        assert_eq!(got, expected);
    }

    #[test]
    fn a_foreign_or_newer_file_is_refused_by_name() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(segment_path(dir.path(), 1), b"SQLite format 3\0").expect("write");
        let error = SegmentLog::open(dir.path(), 64).err().expect("refused");
        assert!(
            error.to_string().contains("not a tix log segment"),
            "{error}"
        );
        let mut newer = SEGMENT_MAGIC.to_vec();
        newer.extend_from_slice(&[2, 0]);
        std::fs::write(segment_path(dir.path(), 1), newer).expect("write");
        let error = SegmentLog::open(dir.path(), 64).err().expect("refused");
        assert!(error.to_string().contains("format version 2"), "{error}");
    }

    /// Small segments: appends roll over many files, a purge deletes exactly the prefix whose
    /// entries are all purged, every remaining file replays from its own head, and a leftover
    /// of an interrupted roll is ignored and removed.
    #[test]
    fn segments_roll_and_a_purge_deletes_the_freed_prefix() {
        let dir = tempfile::tempdir().expect("dir");
        let mut expected = Recovered::default();
        let target = 200;
        {
            let (mut log, _) = SegmentLog::open(dir.path(), target).expect("open");
            log.push(Record::Vote(b"vote"));
            expected.apply(Record::Vote(b"vote"));
            for start in (1..100).step_by(5) {
                append(&mut log, &mut expected, start..start + 5);
            }
            let files = log.segment_count();
            assert!(files >= 10, "{files} segments");
            let purge = Record::Purge {
                index: 60,
                log_id: b"p60",
            };
            log.push(purge);
            expected.apply(purge);
            log.commit().expect("commit");
            let remaining = segment_numbers(dir.path()).expect("list");
            assert_eq!(remaining.len(), log.segment_count());
            assert!(log.segment_count() < files, "a purge deleted segments");
            assert!(
                log.closed
                    .first()
                    .is_none_or(|s| s.max_index.is_some_and(|m| m > 60))
            );
        }
        std::fs::write(dir.path().join("00000000000000000999.seg.tmp"), b"half").expect("w");
        let (_, got) = SegmentLog::open(dir.path(), target).expect("reopen");
        assert_eq!(got, expected);
        assert_eq!(got.entries.keys().next(), Some(&61));
        assert!(!dir.path().join("00000000000000000999.seg.tmp").exists());
    }
}
