//! Parallel gzip whose bytes do not depend on the number of threads.
//!
//! The uncompressed stream is cut at fixed offsets (every [`BLOCK`] bytes). Each block is deflated
//! on its own, primed with the last 32 KiB of the block before it as the preset dictionary (what
//! pigz does), and ends with a sync flush (an empty stored block, byte-aligned) so the raw deflate
//! outputs concatenate into one valid deflate stream; the last block ends the stream. The CRC-32
//! and length of the trailer are computed over the whole input in order. Every block's output is a
//! function of (dictionary, block, is-last) only, so 1, 2 or 64 threads write the same bytes.

use flate2::{Compress, Compression, FlushCompress, Status};
use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Uncompressed bytes per block: large enough that the sync flush and the lost matches at block
/// starts cost < 0.1 % of the output, small enough that a 10 MB layer still spreads over threads.
pub(crate) const BLOCK: usize = 1 << 20;
/// Deflate's window: the most of the previous block a match can reach.
const DICT: usize = 32 * 1024;
/// gzip header: no name, no mtime, XFL 0, OS 255 ("unknown"), so nothing of the host leaks in.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// Threads a build uses by default: one per core the process may run on.
pub(crate) fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Deflates one block (raw deflate, no header). Not the last block: ends with a sync flush.
fn deflate_block(level: u32, dict: &[u8], data: &[u8], last: bool) -> io::Result<Vec<u8>> {
    let mut z = Compress::new(Compression::new(level), false);
    if !dict.is_empty() {
        z.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let mut out = Vec::with_capacity(data.len() + data.len() / 64 + 128);
    let flush = if last { FlushCompress::Finish } else { FlushCompress::Sync };
    loop {
        let done_in = z.total_in() as usize;
        let status = z.compress_vec(&data[done_in..], &mut out, flush).map_err(io::Error::other)?;
        let all_in = z.total_in() as usize == data.len();
        // A flush is complete once all input is taken and the output was not filled to the brim
        // (zlib's rule); the last block is complete at the end of the stream.
        let complete = if last { status == Status::StreamEnd } else { all_in && out.len() < out.capacity() };
        if complete {
            return Ok(out);
        }
        out.reserve(out.capacity().max(64 * 1024));
    }
}

struct Job {
    dict: Vec<u8>,
    data: Vec<u8>,
    last: bool,
    reply: SyncSender<io::Result<Vec<u8>>>,
}

struct Pool {
    jobs: Option<mpsc::Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    fn new(threads: usize, level: u32) -> Pool {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let workers = (0..threads)
            .map(|_| {
                let rx = Arc::clone(&rx);
                std::thread::spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    let _ = job.reply.send(deflate_block(level, &job.dict, &job.data, job.last));
                })
            })
            .collect();
        Pool { jobs: Some(tx), workers }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.jobs = None; // closes the channel: workers return
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// A gzip writer (one member) compressing [`BLOCK`]s on `threads` threads.
pub(crate) struct ParallelGzip<W: Write> {
    out: Option<W>,
    level: u32,
    buf: Vec<u8>,
    dict: Vec<u8>,
    crc: flate2::Crc,
    pool: Option<Pool>,
    pending: VecDeque<Receiver<io::Result<Vec<u8>>>>,
    max_pending: usize,
}

impl<W: Write> ParallelGzip<W> {
    pub(crate) fn new(mut out: W, level: u32, threads: usize) -> io::Result<Self> {
        out.write_all(&HEADER)?;
        let threads = threads.max(1);
        let pool = (threads > 1).then(|| Pool::new(threads, level));
        Ok(ParallelGzip {
            out: Some(out),
            level,
            buf: Vec::with_capacity(BLOCK),
            dict: Vec::new(),
            crc: flate2::Crc::new(),
            pool,
            pending: VecDeque::new(),
            max_pending: 2 * threads,
        })
    }

    fn out(&mut self) -> &mut W {
        self.out.as_mut().expect("writer used after finish")
    }

    /// Hands the buffered block to a worker (or deflates it here with one thread).
    fn dispatch(&mut self, last: bool) -> io::Result<()> {
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(if last { 0 } else { BLOCK }));
        self.crc.update(&data);
        let dict = std::mem::take(&mut self.dict);
        if !last {
            self.dict = data[data.len().saturating_sub(DICT)..].to_vec();
        }
        match &self.pool {
            None => {
                let bytes = deflate_block(self.level, &dict, &data, last)?;
                self.out().write_all(&bytes)
            }
            Some(pool) => {
                let (tx, rx) = mpsc::sync_channel(1);
                let jobs = pool.jobs.as_ref().expect("pool open while writing");
                jobs.send(Job { dict, data, last, reply: tx }).map_err(|_| io::Error::other("compression thread gone"))?;
                self.pending.push_back(rx);
                while self.pending.len() >= self.max_pending {
                    self.drain_one()?;
                }
                Ok(())
            }
        }
    }

    /// Writes the oldest block's output (blocks leave in the order they came in).
    fn drain_one(&mut self) -> io::Result<()> {
        if let Some(rx) = self.pending.pop_front() {
            let bytes = rx.recv().map_err(|_| io::Error::other("compression thread gone"))??;
            self.out().write_all(&bytes)?;
        }
        Ok(())
    }

    /// Ends the stream (last block, CRC-32 and length) and returns the inner writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.dispatch(true)?;
        while !self.pending.is_empty() {
            self.drain_one()?;
        }
        let (crc, len) = (self.crc.sum(), self.crc.amount());
        let out = self.out();
        out.write_all(&crc.to_le_bytes())?;
        out.write_all(&len.to_le_bytes())?;
        self.pool = None;
        Ok(self.out.take().expect("finish runs once"))
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(BLOCK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == BLOCK {
            self.dispatch(false)?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Mixed data: compressible runs and pseudo-random stretches, crossing block boundaries.
    fn sample(len: usize) -> Vec<u8> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if (i / 5000) % 3 == 0 {
                    (x >> 56) as u8
                } else {
                    b"the quick brown fox "[i % 20]
                }
            })
            .collect()
    }

    fn gz(data: &[u8], threads: usize) -> Vec<u8> {
        let mut w = ParallelGzip::new(Vec::new(), 6, threads).unwrap();
        // Odd write sizes: boundaries come from the stream offset, not from the calls.
        for c in data.chunks(70_001) {
            w.write_all(c).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn same_bytes_for_any_thread_count_and_gunzip_round_trips() {
        for len in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 12_345] {
            let data = sample(len);
            let one = gz(&data, 1);
            for t in [2, 3, 8] {
                assert!(gz(&data, t) == one, "len {len}: {t} threads wrote other bytes than 1");
            }
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&one[..]).read_to_end(&mut back).unwrap();
            assert!(back == data, "len {len}: round trip");
            // Single member: the trailer is the CRC and size of the whole input.
            let n = one.len();
            assert_eq!(u32::from_le_bytes(one[n - 4..].try_into().unwrap()), len as u32);
            assert_eq!(&one[..10], &HEADER);
        }
    }

    #[test]
    fn gzip_tool_accepts_the_stream() {
        let data = sample(2 * BLOCK + 7);
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("x.gz");
        std::fs::write(&f, gz(&data, 4)).unwrap();
        let out = std::process::Command::new("gzip").arg("-dc").arg(&f).output().expect("gzip on PATH");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stdout == data);
    }

    #[test]
    fn dictionary_keeps_the_ratio_of_one_stream() {
        // Text repeating with a period longer than a block boundary's reach without a dictionary.
        let data: Vec<u8> = (0..4 * BLOCK).map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789"[(i * 7 + i / 97) % 36]).collect();
        let blocks = gz(&data, 2).len();
        let mut one = flate2::write::GzEncoder::new(Vec::new(), Compression::new(6));
        one.write_all(&data).unwrap();
        let single = one.finish().unwrap().len();
        assert!(blocks as f64 <= single as f64 * 1.01 + 64.0, "{blocks} vs one stream {single}");
    }
}
