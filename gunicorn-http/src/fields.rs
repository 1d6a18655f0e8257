//! The field-block scanner shared by the request head and the chunked trailers
//! (RFC 9112 §5, §7.1.2; gunicorn's `Message.parse_headers`).
//!
//! It is a resumable state machine over a buffer that only grows between calls. Every check
//! is made at a fixed point of the byte stream (the limits as soon as a line is known to be
//! too long, the content of a field once its logical line is complete), so the outcome does
//! not depend on how the bytes were split into reads.

use crate::config::Limits;
use crate::error::HttpError;
use crate::syntax::{find_lf, is_tchar, is_token, latin1_string, scan_value, trim_ows};
use std::borrow::Cow;

/// The settings that change how field lines are read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FieldRules {
    pub limits: Limits,
    /// `--permit-obsolete-folding`: join obs-fold lines with a space instead of refusing.
    pub permit_fold: bool,
    /// `--strip-header-spaces`: drop SP/HTAB between the name and the colon.
    pub strip_spaces: bool,
}

/// The logical field line being read (a first line plus any obs-fold continuations).
#[derive(Debug, Clone)]
struct Pending {
    start: usize,
    end: usize,
    /// Bytes so far, every CRLF included (gunicorn's per-field size).
    len: usize,
    conts: Vec<(usize, usize)>,
}

#[derive(Debug, Clone)]
pub(crate) struct FieldScanner {
    /// Start of the block in the buffer (for the total-size guard).
    block_start: usize,
    /// Start of the next physical line to read.
    pos: usize,
    pending: Option<Pending>,
    /// The line at `pos` continues `pending` (it starts with SP/HTAB).
    in_cont: bool,
    /// Field lines seen, dropped ones included (they count towards the limit, gunicorn).
    count: usize,
}

fn too_many() -> HttpError {
    HttpError::LimitRequestHeaders("limit request headers fields".into())
}

fn too_large() -> HttpError {
    HttpError::LimitRequestHeaders("limit request headers fields size".into())
}

impl FieldScanner {
    pub(crate) fn new(start: usize) -> Self {
        FieldScanner {
            block_start: start,
            pos: start,
            pending: None,
            in_cont: false,
            count: 0,
        }
    }

    /// Reads as many complete field lines of `buf` as possible, handing each validated
    /// `(name, value)` to `on_field`. Returns `Some(end)` once the empty line ending the block
    /// was read (`end` is just past its CRLF), `None` when more bytes are needed.
    pub(crate) fn advance<F>(
        &mut self,
        buf: &[u8],
        rules: &FieldRules,
        mut on_field: F,
    ) -> Result<Option<usize>, HttpError>
    where
        F: FnMut(&[u8], &[u8], bool) -> Result<(), HttpError>,
    {
        let limit = rules.limits.field_size;
        loop {
            // A finished physical line: the next byte says whether it is folded (RFC 9112 §5.2).
            if self.pending.is_some() && !self.in_cont {
                let Some(&next) = buf.get(self.pos) else {
                    return Ok(None);
                };
                if next == b' ' || next == b'\t' {
                    if !rules.permit_fold {
                        let p = self
                            .pending
                            .as_ref()
                            .map_or(&[][..], |p| &buf[p.start..p.end]);
                        return Err(HttpError::ObsoleteFolding(latin1_string(p)));
                    }
                    self.in_cont = true;
                } else if let Some(p) = self.pending.take() {
                    finish_field(buf, &p, rules, &mut on_field)?;
                }
            }
            let pos = self.pos;
            // RFC 9112 §2.2: every line ends with CRLF. The first LF after `pos` ends this
            // line if a CR comes just before it; otherwise it is a bare LF, and the block can
            // never end the way it is read: refused now (gunicorn 27 does), not waited on.
            let crlf = match find_lf(buf, pos) {
                Some(lf) if lf > pos && buf[lf - 1] == b'\r' => lf - 1,
                Some(lf) => {
                    // The bytes before the LF are judged first, as if it had not arrived, so
                    // the outcome does not depend on where the reads were split.
                    self.check_partial(&buf[..lf], rules)?;
                    return Err(HttpError::InvalidHeader(
                        "bare LF as line terminator".into(),
                    ));
                }
                None => {
                    self.check_partial(buf, rules)?;
                    return Ok(None);
                }
            };
            let line_len = crlf - pos + 2;
            if self.in_cont {
                if let Some(p) = self.pending.as_mut() {
                    p.len += line_len;
                    if p.len > limit {
                        return Err(too_large());
                    }
                    p.conts.push((pos, crlf));
                }
                self.in_cont = false;
            } else {
                if crlf == pos {
                    // The empty line: end of the block.
                    self.pos = crlf + 2;
                    return Ok(Some(self.pos));
                }
                if self.count >= rules.limits.fields {
                    return Err(too_many());
                }
                if line_len > limit {
                    return Err(too_large());
                }
                self.count += 1;
                self.pending = Some(Pending {
                    start: pos,
                    end: crlf,
                    len: line_len,
                    conts: Vec::new(),
                });
            }
            self.pos = crlf + 2;
        }
    }

    /// The limits on a line that has not ended yet (`buf` ends inside it), enforced now so a
    /// caller never buffers unboundedly.
    fn check_partial(&self, buf: &[u8], rules: &FieldRules) -> Result<(), HttpError> {
        let limit = rules.limits.field_size;
        let partial = &buf[self.pos.min(buf.len())..];
        let content = partial.len() - usize::from(partial.last() == Some(&b'\r'));
        if self.in_cont {
            let len = self.pending.as_ref().map_or(0, |p| p.len);
            if len + content + 2 > limit {
                return Err(too_large());
            }
        } else if content > 0 {
            if self.count >= rules.limits.fields {
                return Err(too_many());
            }
            if content + 2 > limit {
                return Err(too_large());
            }
        }
        if buf.len() - self.block_start > rules.limits.max_header_buffer() {
            return Err(HttpError::LimitRequestHeaders("max buffer headers".into()));
        }
        Ok(())
    }
}

/// Validates one complete logical field line and hands it on.
fn finish_field<F>(
    buf: &[u8],
    p: &Pending,
    rules: &FieldRules,
    on_field: &mut F,
) -> Result<(), HttpError>
where
    F: FnMut(&[u8], &[u8], bool) -> Result<(), HttpError>,
{
    let line = &buf[p.start..p.end];
    // Fast path: a run of tchars ended by ':' is a valid name (one pass over the name).
    let run = line
        .iter()
        .position(|&b| !is_tchar(b))
        .unwrap_or(line.len());
    let (colon, name) = if run > 0 && line.get(run) == Some(&b':') {
        (run, &line[..run])
    } else {
        // No colon, or an empty name (gunicorn: InvalidHeader).
        let colon = match line.iter().position(|&b| b == b':') {
            Some(c) if c > 0 => c,
            _ => return Err(HttpError::InvalidHeader(latin1_string(line))),
        };
        let mut name = &line[..colon];
        if rules.strip_spaces {
            let end = name
                .iter()
                .rposition(|&b| b != b' ' && b != b'\t')
                .map_or(0, |e| e + 1);
            name = &name[..end];
        }
        // RFC 9110 §5.1: field-name = token. No whitespace before the colon (RFC 9112 §5.1).
        if !is_token(name) {
            return Err(HttpError::InvalidHeaderName(latin1_string(name)));
        }
        (colon, name)
    };
    let first = trim_ows(&line[colon + 1..]);
    let value: Cow<'_, [u8]> = if p.conts.is_empty() {
        Cow::Borrowed(first)
    } else {
        // --permit-obsolete-folding: replace each obs-fold with one SP (RFC 9112 §5.2).
        let mut v = first.to_vec();
        for &(s, e) in &p.conts {
            v.push(b' ');
            v.extend_from_slice(trim_ows(&buf[s..e]));
        }
        Cow::Owned(trim_ows(&v).to_vec())
    };
    // RFC 9110 §5.5: CR, LF, NUL and other controls are refused (HTAB and obs-text allowed).
    let Some(ascii) = scan_value(&value) else {
        return Err(HttpError::InvalidHeader(latin1_string(name)));
    };
    on_field(name, &value, ascii)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(fields: usize, size: usize, fold: bool, strip: bool) -> FieldRules {
        FieldRules {
            limits: Limits {
                request_line: 100,
                fields,
                field_size: size,
            },
            permit_fold: fold,
            strip_spaces: strip,
        }
    }

    fn scan(
        input: &[u8],
        r: &FieldRules,
    ) -> Result<Option<(usize, Vec<(String, String)>)>, HttpError> {
        let mut out = Vec::new();
        let mut s = FieldScanner::new(0);
        let end = s.advance(input, r, |n, v, _| {
            out.push((latin1_string(n), latin1_string(v)));
            Ok(())
        })?;
        Ok(end.map(|e| (e, out)))
    }

    #[test]
    fn field_table() {
        let d = rules(100, 8190, false, false);
        type Want = Result<Option<Vec<(&'static str, &'static str)>>, &'static str>;
        let cases: &[(&[u8], FieldRules, Want)] = &[
            (b"\r\n", d, Ok(Some(vec![]))),
            (b"A: b\r\n\r\n", d, Ok(Some(vec![("A", "b")]))),
            (
                b"A:b \t\r\nC:\r\n\r\n",
                d,
                Ok(Some(vec![("A", "b"), ("C", "")])),
            ),
            (b"A: b\r\n", d, Ok(None)),
            (b"A: b\r\n\r", d, Ok(None)),
            (b"A: \xe9\r\n\r\n", d, Ok(Some(vec![("A", "\u{e9}")]))),
            (b"A: b\tc\r\n\r\n", d, Ok(Some(vec![("A", "b\tc")]))),
            (b"A : b\r\n\r\n", d, Err("InvalidHeaderName")),
            (
                b"A : b\r\n\r\n",
                rules(100, 8190, false, true),
                Ok(Some(vec![("A", "b")])),
            ),
            (b" A: b\r\n\r\n", d, Err("InvalidHeaderName")),
            (b"A\x00: b\r\n\r\n", d, Err("InvalidHeaderName")),
            (b"\xdf: b\r\n\r\n", d, Err("InvalidHeaderName")),
            (b": b\r\n\r\n", d, Err("InvalidHeader")),
            (b"Ab\r\n\r\n", d, Err("InvalidHeader")),
            (b"A: b\nc\r\n\r\n", d, Err("InvalidHeader")),
            // A bare LF is refused as soon as it arrives (RFC 9112 §2.2, gunicorn 27), with
            // no CRLF to wait for; the limits on the bytes before it come first.
            (b"A: b\n", d, Err("InvalidHeader")),
            (b"\n", d, Err("InvalidHeader")),
            (b"A: b\r\n\n", d, Err("InvalidHeader")),
            (b"A\n", d, Err("InvalidHeader")),
            (b"A: b\r\nB: c\n", d, Err("InvalidHeader")),
            (
                b"A: b\r\n c\n",
                rules(100, 8190, true, false),
                Err("InvalidHeader"),
            ),
            (
                b"A: bcdefgh\n",
                rules(100, 7, false, false),
                Err("LimitRequestHeaders"),
            ),
            (
                b"A: b\r\nB\n",
                rules(1, 8190, false, false),
                Err("LimitRequestHeaders"),
            ),
            // A bad field before the bare LF is reported first.
            (b"A : b\r\n\n", d, Err("InvalidHeaderName")),
            (b"A: b\rc\r\n\r\n", d, Err("InvalidHeader")),
            (b"A: b\x00\r\n\r\n", d, Err("InvalidHeader")),
            (b"A: b\x7f\r\n\r\n", d, Err("InvalidHeader")),
            (b"A: b\r\n c\r\n\r\n", d, Err("ObsoleteFolding")),
            (
                b"A: b\r\n c\r\n\td\r\n\r\n",
                rules(100, 8190, true, false),
                Ok(Some(vec![("A", "b c d")])),
            ),
            (
                b"A: b\r\nB: c\r\n\r\n",
                rules(1, 8190, false, false),
                Err("LimitRequestHeaders"),
            ),
            (
                b"A: b\r\nB",
                rules(1, 8190, false, false),
                Err("LimitRequestHeaders"),
            ),
            (
                b"A: b\r\n\r\n",
                rules(1, 8190, false, false),
                Ok(Some(vec![("A", "b")])),
            ),
            // field size counts the CRLF: "A: bc\r\n" is 7 bytes.
            (
                b"A: bc\r\n\r\n",
                rules(100, 7, false, false),
                Ok(Some(vec![("A", "bc")])),
            ),
            (
                b"A: bcd\r\n\r\n",
                rules(100, 7, false, false),
                Err("LimitRequestHeaders"),
            ),
            (
                b"A: bcdef",
                rules(100, 7, false, false),
                Err("LimitRequestHeaders"),
            ),
            (
                b"A: b\r\n c\r\n\r\n",
                rules(100, 10, true, false),
                Ok(Some(vec![("A", "b c")])),
            ),
            (
                b"A: b\r\n c\r\n\r\n",
                rules(100, 9, true, false),
                Err("LimitRequestHeaders"),
            ),
        ];
        for (input, r, want) in cases {
            let got = scan(input, r);
            let shown = String::from_utf8_lossy(input);
            match (got, want) {
                (Ok(Some((end, fields))), Ok(Some(w))) => {
                    assert_eq!(end, input.len(), "{shown}");
                    let w: Vec<(String, String)> = w
                        .iter()
                        .map(|(a, b)| (a.to_string(), b.to_string()))
                        .collect();
                    assert_eq!(fields, w, "{shown}");
                }
                (Ok(None), Ok(None)) => {}
                (Err(e), Err(kind)) => assert!(
                    format!("{e:?}").starts_with(kind),
                    "{shown}: {e:?} vs {kind}"
                ),
                (got, want) => panic!("{shown}: {got:?} vs {want:?}"),
            }
        }
    }

    #[test]
    fn resumes_across_calls() {
        let input = b"A: b\r\n c\r\nB: d\r\n\r\n";
        let r = rules(100, 8190, true, false);
        for cut in 0..=input.len() {
            let mut out = Vec::new();
            let mut s = FieldScanner::new(0);
            let mut push = |n: &[u8], v: &[u8], _: bool| {
                out.push((latin1_string(n), latin1_string(v)));
                Ok(())
            };
            let first = s.advance(&input[..cut], &r, &mut push).unwrap();
            let end = if cut < input.len() {
                assert_eq!(first, None, "cut {cut}");
                s.advance(input, &r, &mut push).unwrap()
            } else {
                first
            };
            assert_eq!(end, Some(input.len()));
            assert_eq!(
                out,
                vec![("A".into(), "b c".into()), ("B".into(), "d".into())],
                "cut {cut}"
            );
        }
    }
}
