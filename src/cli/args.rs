//! Command-line definitions (clap derive). Kept in the library so the man
//! page is generated from exactly what the binary parses.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "stanctl",
    version,
    about = "Offline maintenance for NATS Streaming file datastores",
    long_about = "Offline maintenance for NATS Streaming file datastores: inspect, verify, \
encrypt, decrypt and rekey a store while the server is stopped.",
    after_help = super::exit::help_text("stanctl")
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Operate on a file store directory.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Operate on a stand-alone Raft log file (a clustered node's raft.log
    /// without its store; for a node, use `store ... --cluster-log-path`).
    #[command(subcommand)]
    Raft(RaftCommand),
    /// Print a shell completion script (bash, zsh or fish) on stdout.
    #[command(after_help = super::exit::help_text("completions"))]
    Completions {
        /// The shell to complete for.
        #[arg(value_enum, value_name = "SHELL")]
        shell: ShellArg,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShellArg {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Subcommand)]
pub enum RaftCommand {
    /// Print what the server's log store returns for every entry. Never writes.
    #[command(after_help = super::exit::help_text("verify"))]
    Verify(RaftVerifyArgs),
    /// Encrypt plaintext command entries with one key.
    Encrypt(RaftEncryptArgs),
    /// Decrypt command entries with one or more keys.
    Decrypt(RaftDecryptArgs),
    /// Re-encrypt command entries from old keys to a new key.
    Rekey(RaftRekeyArgs),
}

#[derive(Debug, Clone, Args)]
pub struct RaftCommonArgs {
    /// The Raft log file (the node's <cluster_log_path>/<cluster id>/raft.log).
    #[arg(value_name = "LOG")]
    pub log: PathBuf,
    /// Read the server's settings from its configuration file, as the server
    /// reads it: encryption, the key (`encryption_key`) and the cipher
    /// (`encryption_cipher`). Flags given win over the file;
    /// NATS_STREAMING_ENCRYPTION_KEY wins over its `encryption_key`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print machine-readable JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Print nothing on stdout but --json output, and no progress bar;
    /// errors and warnings still go to stderr.
    #[arg(short, long)]
    pub quiet: bool,
    /// Use the portable RustCrypto AEAD backend instead of ring.
    #[arg(long)]
    pub rustcrypto: bool,
}

/// rekey's new key (store and raft): --new-key-file or --new-key.
#[derive(Debug, Clone, Args)]
pub struct NewKeyArgs {
    /// The new key, from a file.
    #[arg(long, value_name = "FILE", required_unless_present = "new_key")]
    pub new_key_file: Option<PathBuf>,
    /// The new key on the command line (visible to other users; warns).
    #[arg(long, value_name = "KEY")]
    pub new_key: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct RaftRewriteArgs {
    /// Write the converted log to FILE (new) and leave LOG untouched.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Report what would change; write nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
}

/// raft encrypt's and rekey's --assume-plaintext.
#[derive(Debug, Clone, Args)]
pub struct RaftAssumeArgs {
    /// Declare command data that starts with byte 1 or 2, that no key opens
    /// and whose nonce is neither the server's nor stanctl's, to be
    /// plaintext: encrypt seals it; rekey leaves it.
    #[arg(long)]
    pub assume_plaintext: bool,
}

#[derive(Debug, Args)]
#[command(mut_arg("key_files", |a| a.help("The key the server is configured with, from FILE (one key); NATS_STREAMING_ENCRYPTION_KEY wins over it, as in the server")))]
pub struct RaftVerifyArgs {
    #[command(flatten)]
    pub common: RaftCommonArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
    /// The server runs with encryption on (implied by a configured key).
    #[arg(long, conflicts_with = "no_encrypt")]
    pub encrypt: bool,
    /// The server runs without encryption (envelopes are served raw).
    #[arg(long)]
    pub no_encrypt: bool,
    /// Print one line per entry, as the server's dump (RAFTLOG, LOG, CONF).
    #[arg(long, conflicts_with = "json")]
    pub list: bool,
}

#[derive(Debug, Args)]
#[command(after_help = super::exit::help_text("encrypt"))]
#[command(mut_arg("key_files", |a| a.help("The key to encrypt with, from FILE. Exactly one key in all: --key-file, --key or NATS_STREAMING_ENCRYPTION_KEY")))]
pub struct RaftEncryptArgs {
    #[command(flatten)]
    pub common: RaftCommonArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub rewrite: RaftRewriteArgs,
    #[command(flatten)]
    pub assume: RaftAssumeArgs,
    /// Cipher for the new envelopes. Required unless the configuration file
    /// (--config) names one (`encryption_cipher`).
    #[arg(long, value_enum, ignore_case = true)]
    pub cipher: Option<CipherArg>,
}

#[derive(Debug, Args)]
#[command(after_help = super::exit::help_text("decrypt"))]
#[command(mut_arg("key_files", |a| a.help("A key to decrypt with, from FILE. Repeatable; NATS_STREAMING_ENCRYPTION_KEY adds one more")))]
pub struct RaftDecryptArgs {
    #[command(flatten)]
    pub common: RaftCommonArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub rewrite: RaftRewriteArgs,
    /// Accepted for old scripts and ignored with a warning: decrypt keeps
    /// command data that only looks like an envelope anyway.
    #[arg(long, hide = true)]
    pub assume_plaintext: bool,
}

#[derive(Debug, Args)]
#[command(after_help = super::exit::help_text("rekey"))]
#[command(mut_arg("key_files", |a| a.help("An OLD key, from FILE. Repeatable; NATS_STREAMING_ENCRYPTION_KEY adds one more")))]
#[command(mut_arg("keys", |a| a.help("An OLD key on the command line (other users can see it: prefer --key-file)")))]
pub struct RaftRekeyArgs {
    #[command(flatten)]
    pub common: RaftCommonArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub new_key: NewKeyArgs,
    #[command(flatten)]
    pub rewrite: RaftRewriteArgs,
    #[command(flatten)]
    pub assume: RaftAssumeArgs,
    /// Cipher for the envelopes rekey re-seals (default: each keeps its own).
    /// With --cipher, envelopes already under the new key but in the other
    /// cipher are re-sealed too: give the same key as old and new key to
    /// change only the cipher.
    #[arg(long, value_enum, ignore_case = true)]
    pub cipher: Option<CipherArg>,
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Report what the store holds: channels, slices, payload classes, damage. Never writes.
    ///
    /// Archived slices (msgs.N.dat.bak, left by the server's slice
    /// archiving) are listed, not counted in the table; the report ends with
    /// how many plaintext messages are on disk, in live and archived slices,
    /// and where.
    Inspect(InspectArgs),
    /// Predict what the server will do with this store and these settings. Never writes.
    ///
    /// The report also says how many plaintext messages are stored on disk,
    /// in live and archived (msgs.N.dat.bak) slices, and where.
    Verify(VerifyArgs),
    /// Encrypt plaintext payloads with one key.
    ///
    /// Archived slices (msgs.N.dat.bak and msgs.N.idx.bak, left by the
    /// server's slice archiving, which it never reads) are converted with
    /// the live ones, by the same rule and checks. The report says how many
    /// plaintext messages remain on disk and where.
    Encrypt(EncryptArgs),
    /// Decrypt envelopes with one or more keys.
    ///
    /// Archived slices (msgs.N.dat.bak and msgs.N.idx.bak) are decrypted
    /// with the live ones. The report says how many plaintext messages are
    /// on disk and where.
    Decrypt(DecryptArgs),
    /// Re-encrypt envelopes from old keys to a new key.
    ///
    /// Archived slices (msgs.N.dat.bak and msgs.N.idx.bak) are re-keyed
    /// with the live ones. The report says how many plaintext messages
    /// remain on disk and where.
    Rekey(RekeyArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "UPPER")]
pub enum CipherArg {
    Aes,
    Chacha,
}

impl From<CipherArg> for crate::crypto::aead::Cipher {
    fn from(c: CipherArg) -> Self {
        match c {
            CipherArg::Aes => crate::crypto::aead::Cipher::Aes,
            CipherArg::Chacha => crate::crypto::aead::Cipher::ChaCha,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// The store directory (the server's -dir). Optional with --config when the
    /// file sets `dir`; given, it wins over the file.
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Read the server's settings from its configuration file, as the server
    /// reads it (includes, variables, the `streaming` map): the store
    /// directory, encryption, cipher, key, CRC options. Flags given win over
    /// the file; NATS_STREAMING_ENCRYPTION_KEY wins over its `encryption_key`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// CRC-32 polynomial the server runs with (-file_crc_poly), in Go's reversed form
    /// (0xedb88320 IEEE, the default; 0x82f63b78 Castagnoli), decimal, or a name.
    /// Default: the configuration file's `crc_poly`, else 0xedb88320.
    #[arg(long, value_name = "POLY")]
    pub crc_poly: Option<String>,
    /// Print machine-readable JSON on stdout (its "schema" field names the format and version).
    #[arg(long)]
    pub json: bool,
    /// Print nothing on stdout but --json output, and no progress bar;
    /// errors and warnings still go to stderr.
    #[arg(short, long)]
    pub quiet: bool,
    /// Use the portable RustCrypto AEAD backend instead of ring (slower:
    /// rewrites about 2x, verify about 1.2x; it wipes its key schedules
    /// when done).
    #[arg(long)]
    pub rustcrypto: bool,
}

/// Where a clustered node's Raft log is (the store's server.dat names the
/// node and its cluster id).
#[derive(Debug, Clone, Default, Args)]
pub struct NodeArgs {
    /// The node's -cluster_log_path: its Raft log is DIR/<cluster id>/raft.log
    /// (the server's default is <cluster id>/<node id>, relative to its
    /// working directory; assumed when --config has a cluster block without
    /// log_path). Checked, and rewritten with the store, as one node.
    #[arg(long, value_name = "DIR", conflicts_with = "raft_log")]
    pub cluster_log_path: Option<PathBuf>,
    /// The node's Raft log file itself (instead of --cluster-log-path).
    #[arg(long, value_name = "FILE")]
    pub raft_log: Option<PathBuf>,
}

impl NodeArgs {
    pub fn options(&self) -> crate::ops::node::NodeOptions {
        crate::ops::node::NodeOptions {
            cluster_log_path: self.cluster_log_path.clone(),
            raft_log: self.raft_log.clone(),
            server_default: false,
        }
    }
}

#[derive(Debug, Clone, Default, Args)]
pub struct KeyArgs {
    /// Read a key from FILE (its bytes, one trailing newline, \n or \r\n,
    /// removed; `-` reads standard input). Repeatable.
    #[arg(short = 'k', long = "key-file", value_name = "FILE")]
    pub key_files: Vec<PathBuf>,
    /// A key on the command line. Works, but other users can see it in the
    /// process list: prefer --key-file or NATS_STREAMING_ENCRYPTION_KEY.
    #[arg(long = "key", value_name = "KEY")]
    pub keys: Vec<String>,
}

#[derive(Debug, Args)]
#[command(after_help = super::exit::help_text("inspect"))]
#[command(mut_arg("key_files", |a| a.help("A key to try, from FILE (its bytes, one trailing newline, \\n or \\r\\n, removed; - reads standard input). Repeatable; NATS_STREAMING_ENCRYPTION_KEY adds one more")))]
pub struct InspectArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub node: NodeArgs,
    /// One row per slice instead of one per channel.
    #[arg(long)]
    pub by_slice: bool,
    /// Also list every record (offset, sequence, class, key, length, sha256).
    /// The rows wait in an unnamed temporary file in $TMPDIR (about 60
    /// bytes a record) until they are printed: if it is missing or full,
    /// set TMPDIR to a writable directory with room (exit 74 otherwise).
    #[arg(long)]
    pub records: bool,
}

#[derive(Debug, Args)]
#[command(after_help = super::exit::help_text("verify"))]
#[command(mut_arg("key_files", |a| a.help("The key the server is configured with, from FILE (one key). With encryption on, NATS_STREAMING_ENCRYPTION_KEY, when set and non-empty, wins over it, as in the server")))]
#[command(mut_arg("keys", |a| a.help("The configured key on the command line (other users can see it: prefer --key-file)")))]
pub struct VerifyArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub node: NodeArgs,
    /// The server runs with encryption on (-encrypt). Implied by a configured
    /// key (--key-file/--key); NATS_STREAMING_ENCRYPTION_KEY alone does not turn it on.
    #[arg(long, conflicts_with = "no_encrypt")]
    pub encrypt: bool,
    /// The server runs without encryption.
    #[arg(long)]
    pub no_encrypt: bool,
    /// The server's cipher (-encryption_cipher). It only chooses how NEW
    /// messages are written: both ciphers are always readable with the key.
    /// Default: the configuration file's `encryption_cipher`, else AES.
    #[arg(long, value_enum, ignore_case = true)]
    pub cipher: Option<CipherArg>,
    /// The server runs with -file_truncate_bad_eof (truncate a record cut
    /// short at the end of a file, losing it, instead of refusing to start).
    #[arg(long)]
    pub truncate_on_eof: bool,
    /// The server's -file_crc (file_options { crc }): false, the server
    /// checks no record or index CRC (only each slice's last record at
    /// start-up), and damaged records are decoded and delivered as they are.
    /// Default: the --config file's `crc`, else true.
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub file_crc: Option<bool>,
    /// Same as --file-crc=false.
    #[arg(long)]
    pub no_file_crc: bool,
    /// The server's -file_read_buffer_size (file_options { file_read_buffer_size }),
    /// in bytes or with a unit like the server's (64KB, 2MB); 0 turns the
    /// read-ahead of lookups off, which makes every lookup compare the
    /// record's header size with the index. Default: the --config file's
    /// `read_buffer_size`, else 2MB.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub file_read_buffer_size: Option<u64>,
    /// Print one line per message, like the MSG lines of the conformance files.
    /// The lines wait in an unnamed temporary file in $TMPDIR (about 100
    /// bytes a message) until the verdict is known: if it is missing or
    /// full, set TMPDIR to a writable directory with room (exit 74
    /// otherwise).
    #[arg(long, conflicts_with = "json")]
    pub list: bool,
}

/// A size as the server's configuration takes it: a number, optionally
/// followed by K/KB/M/MB/G/GB (KB, MB, GB: powers of 1024; K, M, G: of 1000).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.chars().take_while(|c| c.is_ascii_digit()).count();
    let (num, unit) = t.split_at(digits);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (a number of bytes, or like 64KB, 2MB)"))?;
    let mul: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" | "ki" | "kib" => 1 << 10,
        "m" => 1_000_000,
        "mb" | "mi" | "mib" => 1 << 20,
        "g" => 1_000_000_000,
        "gb" | "gi" | "gib" => 1 << 30,
        _ => return Err(format!("{s:?}: unknown unit (use KB, MB or GB)")),
    };
    n.checked_mul(mul)
        .ok_or_else(|| format!("{s:?} is too large"))
}

#[derive(Debug, Clone, Args)]
pub struct RewriteArgs {
    /// Write a converted copy to DIR (new or empty) and leave the source
    /// untouched. The store is read once (every record checked before the
    /// copy is put in place); after an interrupted run, rerunning the same
    /// command writes DIR anew.
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Report what would change; write nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Salvage a damaged store: carry every record the rewrite cannot handle
    /// (bad CRC, undecodable, no key opens it, ...) over byte for byte with
    /// its index entry's size, convert all the others, and list what was
    /// kept. A slice whose records cannot be framed as the server frames
    /// them is carried over whole. Kept records keep their old key (or
    /// plaintext); the server gives each the verdict it had before. Before
    /// writing, a check writes the salvaged store (in place: a scratch copy
    /// in $TMPDIR, which needs room for it) and verifies that no kept
    /// record's verdict changes; Ctrl-C there removes what it wrote.
    #[arg(long)]
    pub keep_damaged: bool,
    /// In place, read the store once instead of twice: the check stages
    /// every slice's new files in its channel's .stanctl-staging directory
    /// (every record is still checked before any file of the store
    /// changes), then swaps them in. Costs free disk space for the new
    /// files of every slice at once (checked first: refused when it does
    /// not fit); saves the second read and decryption of every envelope.
    /// Not with --output (which always reads the store once) or
    /// --keep-damaged.
    #[arg(long, conflicts_with_all = ["output", "keep_damaged"])]
    pub one_pass: bool,
}

#[derive(Debug, Clone, Args)]
pub struct AssumeArgs {
    /// Declare payloads that start with byte 1 or 2, that no key opens and
    /// whose nonce is neither the server's nor stanctl's, to be plaintext:
    /// encrypt seals them; rekey leaves them.
    #[arg(long)]
    pub assume_plaintext: bool,
}

#[derive(Debug, Args)]
#[command(after_help = super::exit::help_text("encrypt"))]
#[command(mut_arg("key_files", |a| a.help("The key to encrypt with, from FILE. Exactly one key in all: --key-file, --key or NATS_STREAMING_ENCRYPTION_KEY")))]
pub struct EncryptArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub rewrite: RewriteArgs,
    #[command(flatten)]
    pub assume: AssumeArgs,
    /// Cipher for the new envelopes. Required unless the configuration file
    /// (--config) names one (`encryption_cipher`).
    #[arg(long, value_enum, ignore_case = true)]
    pub cipher: Option<CipherArg>,
}

#[derive(Debug, Args)]
#[command(after_help = super::exit::help_text("decrypt"))]
#[command(mut_arg("key_files", |a| a.help("A key to decrypt with, from FILE. Repeatable; NATS_STREAMING_ENCRYPTION_KEY adds one more")))]
pub struct DecryptArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub rewrite: RewriteArgs,
    /// Accepted for old scripts and ignored with a warning: decrypt keeps
    /// payloads that only look like envelopes anyway.
    #[arg(long, hide = true)]
    pub assume_plaintext: bool,
}

#[derive(Debug, Args)]
#[command(after_help = super::exit::help_text("rekey"))]
#[command(mut_arg("key_files", |a| a.help("An OLD key, from FILE. Repeatable; NATS_STREAMING_ENCRYPTION_KEY adds one more")))]
#[command(mut_arg("keys", |a| a.help("An OLD key on the command line (other users can see it: prefer --key-file)")))]
pub struct RekeyArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub new_key: NewKeyArgs,
    #[command(flatten)]
    pub rewrite: RewriteArgs,
    #[command(flatten)]
    pub assume: AssumeArgs,
    /// Cipher for the envelopes rekey re-seals (default: each keeps its own).
    /// With --cipher, envelopes already under the new key but in the other
    /// cipher are re-sealed too: give the same key as old and new key to
    /// change only the cipher.
    #[arg(long, value_enum, ignore_case = true)]
    pub cipher: Option<CipherArg>,
}
