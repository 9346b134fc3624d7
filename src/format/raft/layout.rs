//! Where a clustered node keeps its Raft log: `<cluster_log_path>/<cluster
//! id>/raft.log` (bbolt), snapshots beside it in `snapshots/` (no payloads).
//! The server's default `cluster_log_path` is `<cluster id>/<node id>`,
//! relative to its working directory; the node id is in the file store's
//! `server.dat` (ServerInfo field 10).

use std::path::{Path, PathBuf};

pub const RAFT_LOG_FILE: &str = "raft.log";
pub const SNAPSHOTS_DIR: &str = "snapshots";

pub fn raft_log_path(cluster_log_path: &Path, cluster_id: &str) -> PathBuf {
    cluster_log_path.join(cluster_id).join(RAFT_LOG_FILE)
}

/// The server's default `cluster_log_path` (relative to its working dir).
pub fn default_cluster_log_path(cluster_id: &str, node_id: &str) -> PathBuf {
    Path::new(cluster_id).join(node_id)
}
