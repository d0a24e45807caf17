//! The bytes of an estate file before JSON parsing: UTF-16 transcoding and empty-file detection.

use std::cell::Cell;
use std::fmt;
use std::io::Read;
use std::rc::Rc;

/// Notes whether anything but whitespace went through (an all-whitespace file is "empty").
pub(super) struct ContentTracker<R> {
    pub(super) inner: R,
    pub(super) seen_content: Rc<Cell<bool>>,
}

impl<R: Read> Read for ContentTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if !self.seen_content.get() && !buf[..n].iter().all(u8::is_ascii_whitespace) {
            self.seen_content.set(true);
        }
        Ok(n)
    }
}

#[derive(Debug)]
pub(super) struct BadUtf16;

impl fmt::Display for BadUtf16 {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the file looks like UTF-16 but is not valid UTF-16; save it as UTF-8")
    }
}

impl std::error::Error for BadUtf16 {}

/// UTF-16 (after its byte-order mark) to UTF-8, a buffer at a time.
pub(super) struct Utf16Reader<R> {
    inner: R,
    little: bool,
    /// A high surrogate waiting for its low half, and an odd byte waiting for its pair.
    pending_unit: Option<u16>,
    pending_byte: Option<u8>,
    out: Vec<u8>,
    out_at: usize,
    done: bool,
}

impl<R: Read> Utf16Reader<R> {
    pub(super) fn new(inner: R, little: bool) -> Self {
        Utf16Reader {
            inner,
            little,
            pending_unit: None,
            pending_byte: None,
            out: Vec::new(),
            out_at: 0,
            done: false,
        }
    }

    fn bad() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, BadUtf16)
    }

    /// Decodes the next chunk into `out`; false at the end of the input.
    fn refill(&mut self) -> std::io::Result<bool> {
        self.out.clear();
        self.out_at = 0;
        while self.out.is_empty() {
            if self.done {
                return Ok(false);
            }
            let mut raw = [0u8; 8192];
            let n = self.inner.read(&mut raw)?;
            if n == 0 {
                self.done = true;
                if self.pending_byte.is_some() || self.pending_unit.is_some() {
                    return Err(Self::bad());
                }
                return Ok(false);
            }
            let mut bytes = self.pending_byte.take().into_iter().chain(raw[..n].iter().copied());
            while let Some(first) = bytes.next() {
                let Some(second) = bytes.next() else {
                    self.pending_byte = Some(first);
                    break;
                };
                let unit = if self.little {
                    u16::from_le_bytes([first, second])
                } else {
                    u16::from_be_bytes([first, second])
                };
                self.push_unit(unit)?;
            }
        }
        Ok(true)
    }

    fn push_unit(&mut self, unit: u16) -> std::io::Result<()> {
        let decoded = match (self.pending_unit.take(), unit) {
            (None, 0xD800..=0xDBFF) => {
                self.pending_unit = Some(unit);
                return Ok(());
            }
            (None, unit) => char::decode_utf16([unit]).next(),
            (Some(high), low) => char::decode_utf16([high, low]).next(),
        };
        match decoded {
            Some(Ok(c)) => {
                let mut buf = [0u8; 4];
                self.out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                Ok(())
            }
            _ => Err(Self::bad()),
        }
    }
}

impl<R: Read> Read for Utf16Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.out_at == self.out.len() && !self.refill()? {
            return Ok(0);
        }
        let n = buf.len().min(self.out.len() - self.out_at);
        buf[..n].copy_from_slice(&self.out[self.out_at..self.out_at + n]);
        self.out_at += n;
        Ok(n)
    }
}
