//! The "socket" tungstenite reads and writes during one call: the input (the start of a frame
//! held from earlier calls, then the caller's bytes) and the session's output buffer. Nothing
//! here touches a file descriptor.

use std::io;

/// One call's view of the connection. Reads drain `held`, then `input`, then report
/// `WouldBlock`, which tungstenite treats as "no more bytes yet"; writes append to `output`,
/// which never fails, so tungstenite never holds frames back.
pub(crate) struct Wire<'a> {
    pub(crate) held: &'a [u8],
    pub(crate) input: &'a [u8],
    pub(crate) output: &'a mut Vec<u8>,
}

impl<'a> Wire<'a> {
    /// For writing only.
    pub(crate) fn output(output: &'a mut Vec<u8>) -> Self {
        Wire {
            held: &[],
            input: &[],
            output,
        }
    }
}

impl io::Read for Wire<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let src = if self.held.is_empty() {
            &mut self.input
        } else {
            &mut self.held
        };
        if src.is_empty() {
            // Never Ok(0): tungstenite would take it for the peer closing the TCP connection.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(src.len());
        let (now, rest) = src.split_at(n);
        buf[..n].copy_from_slice(now);
        *src = rest;
        Ok(n)
    }
}

impl io::Write for Wire<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
