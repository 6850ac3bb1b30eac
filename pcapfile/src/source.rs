//! The reader's input: one large buffer, reused from record to record,
//! that records are parsed in place from. A packet handed out borrows
//! the buffer until the next read; the buffer grows only for a record
//! bigger than it, and only as that record's bytes arrive (a bogus length
//! in a header does not allocate).

use std::io::{self, Read};

/// The buffer's size to start with: many records per `read` call.
const INITIAL: usize = 1 << 20;

/// A buffered input whose bytes stay where they are until the next
/// [`Source::ensure`].
pub(crate) struct Source<'a> {
    input: Box<dyn Read + 'a>,
    buf: Vec<u8>,
    /// The unconsumed bytes are `buf[pos..end]`.
    pos: usize,
    end: usize,
    eof: bool,
}

impl<'a> Source<'a> {
    pub(crate) fn new(input: impl Read + 'a) -> Self {
        Source {
            input: Box::new(input),
            buf: Vec::new(),
            pos: 0,
            end: 0,
            eof: false,
        }
    }

    /// Makes `n` bytes available at [`Source::pos`] when the input has
    /// them; returns how many are available (fewer than `n` only at the
    /// end of the input). Moves the unconsumed bytes: positions taken
    /// before are stale.
    pub(crate) fn ensure(&mut self, n: usize) -> io::Result<usize> {
        if self.end - self.pos >= n {
            return Ok(self.end - self.pos);
        }
        if self.pos + n > self.buf.len() && self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        while self.end - self.pos < n && !self.eof {
            if self.end == self.buf.len() {
                // Double, to at least the initial size, at most what is
                // needed beyond it: a record arriving grows the buffer in
                // steps it fills.
                let want = (self.pos + n).max(INITIAL);
                let grown = (2 * self.buf.len()).clamp(INITIAL, want);
                self.buf.resize(grown, 0);
            }
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.end - self.pos)
    }

    /// Where the unconsumed bytes start in [`Source::bytes`].
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// The buffer: positions from [`Source::pos`] index it.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf[..self.end]
    }

    /// The `n` unconsumed bytes from [`Source::pos`] (`n` at most what
    /// [`Source::ensure`] made available).
    pub(crate) fn peek(&self, n: usize) -> &[u8] {
        &self.buf[self.pos..self.pos + n]
    }

    /// Consumes `n` bytes (at most what is available).
    pub(crate) fn consume(&mut self, n: usize) {
        self.pos += n;
    }

    /// Reads up to `buf.len()` bytes into `buf`; the count read.
    pub(crate) fn read_into(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.ensure(buf.len())?.min(buf.len());
        buf[..n].copy_from_slice(self.peek(n));
        self.consume(n);
        Ok(n)
    }

    /// Reads up to `n` bytes into a new vector.
    pub(crate) fn read_vec(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let n = self.ensure(n)?.min(n);
        let v = self.peek(n).to_vec();
        self.consume(n);
        Ok(v)
    }
}
