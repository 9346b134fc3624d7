//! The side files (server.dat, clients.dat, subs.dat) as the server
//! recovers them, and the key: findings about the store as a whole.

use super::*;

/// server.dat, clients.dat and subs.dat as the server recovers them, and the key.
pub(super) fn side_file_findings(meta: &side::StoreMeta, st: &Settings) -> Vec<Finding> {
    let mut out = Vec::new();
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
    out
}
