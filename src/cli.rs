//! Command-line definitions (clap derive). Kept in the library so the man
//! page is generated from exactly what the binary parses.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

pub const EXIT_CODES: &str = "\
EXIT CODES:
  0   success; for verify: every message will be delivered as plaintext (or empty)
  1   verify: the server starts, but some messages are at risk (fail, or are delivered as ciphertext)
  2   verify: the server will refuse to start on this store
  3   the store is locked by a running server (or another stanctl)
  4   a rewrite was refused before writing anything (records it cannot handle, clustered store)
  64  usage error (bad option, missing key, conflicting options)
  74  I/O error (missing file, permission denied, disk full), or the directory is not a store";

#[derive(Debug, Parser)]
#[command(
    name = "stanctl",
    version,
    about = "Offline maintenance for NATS Streaming file datastores",
    long_about = "Offline maintenance for NATS Streaming file datastores: inspect, verify, \
encrypt, decrypt and rekey a store while the server is stopped.",
    after_help = EXIT_CODES
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
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Report what the store holds: channels, slices, payload classes, damage. Never writes.
    Inspect(InspectArgs),
    /// Predict what the server will do with this store and these settings. Never writes.
    #[command(after_help = EXIT_CODES)]
    Verify(VerifyArgs),
    /// Encrypt plaintext payloads with one key.
    Encrypt(EncryptArgs),
    /// Decrypt envelopes with one or more keys.
    Decrypt(DecryptArgs),
    /// Re-encrypt envelopes from old keys to a new key.
    Rekey(RekeyArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "UPPER")]
pub enum CipherArg {
    Aes,
    Chacha,
}

impl From<CipherArg> for crate::aead::Cipher {
    fn from(c: CipherArg) -> Self {
        match c {
            CipherArg::Aes => crate::aead::Cipher::Aes,
            CipherArg::Chacha => crate::aead::Cipher::ChaCha,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// The store directory (the server's -dir).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// CRC-32 polynomial the server runs with, in Go's reversed form
    /// (0xedb88320 IEEE, the default; 0x82f63b78 Castagnoli), decimal, or a name.
    #[arg(long, value_name = "POLY", default_value = "0xedb88320")]
    pub crc_poly: String,
    /// Print machine-readable JSON on stdout (schema in README.md).
    #[arg(long)]
    pub json: bool,
    /// Use the portable RustCrypto AEAD backend instead of ring (about 2x
    /// slower; it wipes its key schedules when done).
    #[arg(long)]
    pub rustcrypto: bool,
}

#[derive(Debug, Clone, Default, Args)]
pub struct KeyArgs {
    /// Read a key from FILE (its bytes, one trailing newline removed). Repeatable.
    #[arg(long = "key-file", value_name = "FILE")]
    pub key_files: Vec<PathBuf>,
    /// A key on the command line. Works, but other users can see it in the
    /// process list: prefer --key-file or NATS_STREAMING_ENCRYPTION_KEY.
    #[arg(long = "key", value_name = "KEY")]
    pub keys: Vec<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
    /// One row per slice instead of one per channel.
    #[arg(long)]
    pub by_slice: bool,
    /// Also list every record (offset, sequence, class, key, length, sha256).
    #[arg(long)]
    pub records: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The key the server is configured with (with encryption on,
    /// NATS_STREAMING_ENCRYPTION_KEY, when set and non-empty, wins over it,
    /// as in the server).
    #[command(flatten)]
    pub keys: KeyArgs,
    /// The server runs with encryption on (-encrypt). Implied by a configured
    /// key (--key-file/--key); NATS_STREAMING_ENCRYPTION_KEY alone does not turn it on.
    #[arg(long, conflicts_with = "no_encrypt")]
    pub encrypt: bool,
    /// The server runs without encryption.
    #[arg(long)]
    pub no_encrypt: bool,
    /// The server's cipher. It only chooses how NEW messages are written: both
    /// ciphers are always readable with the key.
    #[arg(long, value_enum, ignore_case = true, default_value = "AES")]
    pub cipher: CipherArg,
    /// The server runs with the truncate-on-unexpected-EOF option.
    #[arg(long)]
    pub truncate_on_eof: bool,
    /// Print one line per message, like the MSG lines of the conformance files.
    #[arg(long)]
    pub list: bool,
}

#[derive(Debug, Clone, Args)]
pub struct RewriteArgs {
    /// Write a converted copy to DIR and leave the source untouched.
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Report what would change; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Declare payloads whose first byte is 1 or 2 that no key opens to be
    /// plaintext (encrypt them, or leave them as they are when decrypting).
    #[arg(long)]
    pub assume_plaintext: bool,
}

#[derive(Debug, Args)]
pub struct EncryptArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub rewrite: RewriteArgs,
    /// Cipher for the new envelopes.
    #[arg(long, value_enum, ignore_case = true)]
    pub cipher: CipherArg,
}

#[derive(Debug, Args)]
pub struct DecryptArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub rewrite: RewriteArgs,
}

#[derive(Debug, Args)]
pub struct RekeyArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Old keys (--key-file, --key, NATS_STREAMING_ENCRYPTION_KEY).
    #[command(flatten)]
    pub keys: KeyArgs,
    /// The new key, from a file.
    #[arg(long, value_name = "FILE", required_unless_present = "new_key")]
    pub new_key_file: Option<PathBuf>,
    /// The new key on the command line (visible to other users; warns).
    #[arg(long, value_name = "KEY")]
    pub new_key: Option<String>,
    #[command(flatten)]
    pub rewrite: RewriteArgs,
    /// Cipher for the re-encrypted envelopes (default: each keeps its cipher).
    #[arg(long, value_enum, ignore_case = true)]
    pub cipher: Option<CipherArg>,
}

/// The man pages, rendered from the clap definitions: `stanctl.1` and one
/// page per subcommand (`stanctl-store-verify.1`, ...), as (file name, bytes).
pub fn man_pages() -> Vec<(String, Vec<u8>)> {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let mut pages = Vec::new();
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut out)
        .expect("render to memory");
    pages.push(("stanctl.1".to_string(), out));
    for group in cmd.get_subcommands() {
        for sub in group.get_subcommands() {
            let name = format!("stanctl-{}-{}", group.get_name(), sub.get_name());
            let bin = format!("stanctl {} {}", group.get_name(), sub.get_name());
            let sub = sub.clone().name(name.clone()).bin_name(bin);
            let mut m = Vec::new();
            clap_mangen::Man::new(sub)
                .render(&mut m)
                .expect("render to memory");
            pages.push((format!("{name}.1"), m));
        }
    }
    pages
}
