//! The "socket" tungstenite reads and writes during one call: the caller's input slice and the
//! session's output buffer. Nothing here touches a file descriptor.

use std::io;

/// One call's view of the connection. Reads drain `input` and then report `WouldBlock`, which
/// tungstenite treats as "no more bytes yet" (it keeps a partial frame for the next call);
/// writes append to `output`, which never fails, so tungstenite never holds frames back.
pub(crate) struct Wire<'a> {
    pub(crate) input: &'a [u8],
    pub(crate) output: &'a mut Vec<u8>,
}

impl io::Read for Wire<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            // Never Ok(0): tungstenite would take it for the peer closing the TCP connection.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.input.len());
        let (now, rest) = self.input.split_at(n);
        buf[..n].copy_from_slice(now);
        self.input = rest;
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
