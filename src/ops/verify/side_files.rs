//! The side files (server.dat, clients.dat, subs.dat) as the server
//! recovers them, and the key: findings about the store as a whole.

use super::*;

/// server.dat, clients.dat and subs.dat as the server recovers them, and the
/// key; with the server's log lines about them.
pub(super) fn side_file_findings(
    meta: &side::StoreMeta,
    st: &Settings,
) -> (Vec<Finding>, Vec<(RecoveryKey, LogLine)>) {
    let mut out = Vec::new();
    let mut log = Vec::new();
    for d in &meta.damage {
        let server_dat = d.file == crate::format::layout::SERVER_FILE;
        if meta.no_server_info && !server_dat {
            // No state in server.dat: the server reads no other side file.
            continue;
        }
        // A header with no payload is io.EOF, a clean end, for the server; a
        // zero header truncates clients.dat or subs.dat there; a record cut
        // short is truncated away with -file_truncate_bad_eof (not in
        // server.dat, where every read error stops the server).
        let sev = match d.kind {
            DamageKind::ZeroPadding { .. } | DamageKind::DanglingHeader => Severity::Warning,
            DamageKind::TruncatedRecord { .. } if st.truncate_on_eof && !server_dat => {
                Severity::Warning
            }
            _ => Severity::WillNotStart,
        };
        let kind = FindingKind::SideFile(d.kind.clone());
        let mut f = store_finding(sev, Some(&d.file), d.offset, kind);
        f.channel = d.channel.clone();
        let key = recovery_order(&f);
        let offset = d.offset.unwrap_or(0);
        let line = match &d.kind {
            DamageKind::Version(_) | DamageKind::ServerDatSize { .. } => None,
            k @ (DamageKind::CrcMismatch { .. }
            | DamageKind::TruncatedRecord { .. }
            | DamageKind::ServerDatZeroHeader)
                if server_dat =>
            {
                Some(LogLine::ServerFileCorrupted(k.clone()))
            }
            _ if server_dat => None,
            DamageKind::CrcMismatch { expected, actual } => Some(LogLine::Corrupted {
                file: d.file.clone(),
                expected: *expected,
                actual: *actual,
            }),
            DamageKind::TruncatedRecord {
                expected,
                available,
            } => Some(LogLine::UnexpectedEof {
                file: d.file.clone(),
                offset,
                expected: *expected,
                available: *available,
                truncated: st.truncate_on_eof,
            }),
            _ => None,
        };
        log.extend(line.map(|l| (key, l)));
        out.push(f);
    }
    if st.encryption && st.key.is_none() {
        out.push(store_finding(
            Severity::WillNotStart,
            None,
            None,
            FindingKind::NoKey,
        ));
    }
    (out, log)
}
