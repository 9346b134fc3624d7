//! Generates a synthetic NATS Streaming file store for benchmarks.
//!
//! Built only from the library's own writer pieces (`record::write_record`,
//! `index::IndexEntry::new`, `envelope::seal` with `nonce::NonceGen`,
//! `keys::Key`), so what it writes is what stanctl itself would write.
//!
//! ```text
//! cargo run --release --example genstore -- --out DIR --channels 8 \
//!     --messages 32768 --size-min 3072 --size-max 5120 \
//!     --mix plain=60,aes=30,chacha=10 --key-file k.key --seed 1
//! ```
//!
//! Layout: `server.dat` (one ServerInfo record, ClusterID "bench-cluster"),
//! `clients.dat` (version only), and per channel `bench.cNNN/` with
//! `subs.dat` (version only), `msgs.N.dat` and `msgs.N.idx`. A new slice
//! starts once the current `.dat` exceeds `--slice-bytes`. Plaintext payloads
//! never start with byte 1 or 2, so the store is unambiguous and
//! `stanctl store verify DIR --key-file F` exits 0 on it.
//!
//! With `--raft-dir D --raft-entries N` it also writes a clustered node's
//! Raft log, `D/bench-cluster/raft.log` (so `D` is the node's
//! `-cluster_log_path`), with the library's bbolt writer: entries encoded
//! as go-msgpack's raft.Log (AppendedAt, Data, Extensions, Index, Term,
//! Type), every 10th a configuration and every 10th+4 a noop, the rest
//! commands with payloads of the store's sizes and mix (envelopes under
//! `SHA-256(key)` with a server-style nonce: a prefix and the index as a
//! counter); `--raft-big-every K` makes every K-th command 10 KB (overflow
//! pages); `--raft-deleted D` starts the log at index D+1 (a compacted
//! head).

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use stanctl::crypto::aead::{Backend, ChannelAead, Cipher};
use stanctl::crypto::envelope;
use stanctl::crypto::keys::{Key, KeyOrigin};
use stanctl::crypto::nonce::NonceGen;
use stanctl::format::crc::Crc32;
use stanctl::format::index::IndexEntry;
use stanctl::format::proto::write_varint;
use stanctl::format::record::{write_record, FILE_VERSION};

const USAGE: &str = "\
usage: genstore --out DIR [--channels N] [--messages M] [--size-min B] [--size-max B]
                [--slice-bytes B] [--slice-messages N] [--mix plain=60,aes=30,chacha=10]
                [--key-file F] [--seed S] [--raft-dir D --raft-entries N
                [--raft-big-every K] [--raft-deleted D]]
  --messages is per channel; payload sizes are uniform in [size-min, size-max];
  a slice ends after --slice-bytes or --slice-messages (0: no limit), whichever
  comes first (tiny messages: --size-min 40 --size-max 40 --slice-messages 1000000);
  --key-file is required when the mix has aes or chacha records.";

struct Opts {
    out: PathBuf,
    channels: u32,
    messages: u64,
    size_min: usize,
    size_max: usize,
    slice_bytes: u64,
    /// Messages per slice at most; 0 = no limit.
    slice_messages: u64,
    /// Percent of plaintext, AES and ChaCha records.
    mix: [u32; 3],
    key_file: Option<PathBuf>,
    seed: u64,
    raft_dir: Option<PathBuf>,
    raft_entries: u64,
    raft_big_every: u64,
    raft_deleted: u64,
}

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        out: PathBuf::new(),
        channels: 4,
        messages: 1000,
        size_min: 4096,
        size_max: 4096,
        slice_bytes: 64 << 20,
        slice_messages: 0,
        mix: [100, 0, 0],
        key_file: None,
        seed: 1,
        raft_dir: None,
        raft_entries: 0,
        raft_big_every: 0,
        raft_deleted: 0,
    };
    let mut out = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "-h" || a == "--help" {
            return Err(String::new());
        }
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut val = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        let num = |s: String| -> Result<u64, String> {
            parse_size(&s).ok_or_else(|| format!("{name}: not a number: {s}"))
        };
        match name.as_str() {
            "--out" => out = Some(PathBuf::from(val()?)),
            "--channels" => o.channels = num(val()?)? as u32,
            "--messages" => o.messages = num(val()?)?,
            "--size-min" => o.size_min = num(val()?)? as usize,
            "--size-max" => o.size_max = num(val()?)? as usize,
            "--slice-bytes" => o.slice_bytes = num(val()?)?,
            "--slice-messages" => o.slice_messages = num(val()?)?,
            "--mix" => o.mix = parse_mix(&val()?)?,
            "--key-file" => o.key_file = Some(PathBuf::from(val()?)),
            "--seed" => o.seed = num(val()?)?,
            "--raft-dir" => o.raft_dir = Some(PathBuf::from(val()?)),
            "--raft-entries" => o.raft_entries = num(val()?)?,
            "--raft-big-every" => o.raft_big_every = num(val()?)?,
            "--raft-deleted" => o.raft_deleted = num(val()?)?,
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    o.out = out.ok_or("--out is required")?;
    if o.channels == 0 {
        return Err("--channels must be at least 1".into());
    }
    if o.size_min > o.size_max {
        return Err("--size-min is larger than --size-max".into());
    }
    if o.slice_bytes == 0 {
        return Err("--slice-bytes must be positive".into());
    }
    if (o.mix[1] > 0 || o.mix[2] > 0) && o.key_file.is_none() {
        return Err("--key-file is required for aes/chacha records".into());
    }
    Ok(o)
}

/// `4096`, `4k`, `64M`, `1G` (binary units).
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (digits, mult) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 1u64 << 10),
        b'm' | b'M' => (&s[..s.len() - 1], 1 << 20),
        b'g' | b'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    digits.parse::<u64>().ok()?.checked_mul(mult)
}

fn parse_mix(s: &str) -> Result<[u32; 3], String> {
    let mut mix = [0u32; 3];
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("--mix: expected name=percent, got {part}"))?;
        let v: u32 = v
            .parse()
            .map_err(|_| format!("--mix: bad percent in {part}"))?;
        match k.to_ascii_lowercase().as_str() {
            "plain" => mix[0] = v,
            "aes" => mix[1] = v,
            "chacha" => mix[2] = v,
            _ => return Err(format!("--mix: unknown kind {k} (plain, aes, chacha)")),
        }
    }
    if mix.iter().sum::<u32>() != 100 {
        return Err(format!(
            "--mix: percentages add up to {}, not 100",
            mix.iter().sum::<u32>()
        ));
    }
    Ok(mix)
}

/// xorshift64*: fast, deterministic, good enough for filler bytes.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        // splitmix64 of the seed, so that seeds 0, 1, 2 ... differ widely and
        // the state is never zero.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    #[inline]
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }

    fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next().to_le_bytes();
        let n = rest.len();
        rest.copy_from_slice(&last[..n]);
    }
}

fn versioned(path: &Path) -> std::io::Result<BufWriter<File>> {
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path)?);
    w.write_all(&FILE_VERSION.to_le_bytes())?;
    Ok(w)
}

/// One open slice: its `.dat` and `.idx` writers and the `.dat` length.
struct Slice {
    dat: BufWriter<File>,
    idx: BufWriter<File>,
    len: u64,
}

impl Slice {
    fn open(dir: &Path, n: u32) -> std::io::Result<Slice> {
        Ok(Slice {
            dat: versioned(&dir.join(format!("msgs.{n}.dat")))?,
            idx: versioned(&dir.join(format!("msgs.{n}.idx")))?,
            len: 4,
        })
    }

    fn finish(mut self) -> std::io::Result<()> {
        self.dat.flush()?;
        self.idx.flush()
    }
}

#[derive(Default)]
struct Totals {
    records: u64,
    bytes: u64,
    kinds: [u64; 3],
    slices: u64,
}

fn write_channel(
    o: &Opts,
    key: Option<&Key>,
    crc: &Crc32,
    chan: &str,
    rng: &mut Rng,
    t: &mut Totals,
) -> std::io::Result<()> {
    let dir = o.out.join(chan);
    fs::create_dir_all(&dir)?;
    versioned(&dir.join("subs.dat"))?.flush()?;

    let ck = key.map(|k| k.channel_key(chan.as_bytes()));
    let aead = ck.as_ref().map(|k| ChannelAead::new(k, Backend::default()));
    let nonces = ck.as_ref().map(NonceGen::new);

    let mut slice_no = 1;
    let mut slice = Slice::open(&dir, slice_no)?;
    t.slices += 1;
    let mut plain = vec![0u8; o.size_max];
    let mut sealed = Vec::with_capacity(o.size_max + envelope::OVERHEAD);
    let mut payload = Vec::with_capacity(o.size_max + envelope::OVERHEAD + 64);
    let mut rec = Vec::with_capacity(o.size_max + envelope::OVERHEAD + 64 + 8);
    // 2023-11-14T22:13:20Z, one message per millisecond.
    let ts0: i64 = 1_700_000_000_000_000_000;

    let mut in_slice = 0u64;
    for seq in 1..=o.messages {
        if slice.len > o.slice_bytes || (o.slice_messages > 0 && in_slice >= o.slice_messages) {
            in_slice = 0;
            slice.finish()?;
            slice_no += 1;
            slice = Slice::open(&dir, slice_no)?;
            t.slices += 1;
        }
        let size = o.size_min + rng.below((o.size_max - o.size_min + 1) as u64) as usize;
        let data = &mut plain[..size];
        rng.fill(data);
        if let Some(b) = data.first_mut() {
            if *b < 3 {
                *b += 3; // never 1 or 2: plaintext stays unambiguous
            }
        }
        let roll = rng.below(100) as u32;
        let kind = if roll < o.mix[0] {
            0
        } else if roll < o.mix[0] + o.mix[1] {
            1
        } else {
            2
        };
        let data: &[u8] = if kind == 0 || data.is_empty() {
            data
        } else {
            let cipher = if kind == 1 {
                Cipher::Aes
            } else {
                Cipher::ChaCha
            };
            let nonce = nonces.as_ref().unwrap().nonce(cipher, seq, data);
            envelope::seal(aead.as_ref().unwrap(), cipher, &nonce, data, &mut sealed);
            &sealed
        };
        t.kinds[if data.is_empty() { 0 } else { kind }] += 1;

        let ts = ts0 + seq as i64 * 1_000_000;
        payload.clear();
        payload.push(0x08); // 1 sequence, varint
        write_varint(&mut payload, seq);
        payload.push(0x12); // 2 subject, bytes
        write_varint(&mut payload, chan.len() as u64);
        payload.extend_from_slice(chan.as_bytes());
        if !data.is_empty() {
            payload.push(0x22); // 4 data, bytes
            write_varint(&mut payload, data.len() as u64);
            payload.extend_from_slice(data);
        }
        payload.push(0x28); // 5 timestamp, varint
        write_varint(&mut payload, ts as u64);

        let pcrc = crc.checksum(&payload);
        rec.clear();
        write_record(&mut rec, 0, pcrc, &payload);
        let entry = IndexEntry::new(seq, slice.len, ts, payload.len() as u32, crc);
        slice.dat.write_all(&rec)?;
        slice.idx.write_all(&entry.to_bytes())?;
        slice.len += rec.len() as u64;
        t.records += 1;
        in_slice += 1;
        t.bytes += rec.len() as u64;
    }
    slice.finish()
}

fn server_info(out: &Path, crc: &Crc32) -> std::io::Result<()> {
    let mut p = Vec::new();
    let id = b"bench-cluster";
    p.push(0x0a); // 1 ClusterID, bytes
    write_varint(&mut p, id.len() as u64);
    p.extend_from_slice(id);
    let mut rec = Vec::new();
    write_record(&mut rec, 0, crc.checksum(&p), &p);
    let mut w = versioned(&out.join("server.dat"))?;
    w.write_all(&rec)?;
    w.flush()
}

fn run(o: &Opts) -> Result<(), String> {
    let key = match &o.key_file {
        Some(f) => {
            let material = stanctl::cli::keys::read_key_file(f).map_err(|e| e.to_string())?;
            Some(Key::from_material(
                "K1",
                KeyOrigin::File(f.clone()),
                &material,
            ))
        }
        None => None,
    };
    if o.out.exists()
        && fs::read_dir(&o.out)
            .map_err(|e| e.to_string())?
            .next()
            .is_some()
    {
        return Err(format!("{} exists and is not empty", o.out.display()));
    }
    fs::create_dir_all(&o.out).map_err(|e| e.to_string())?;
    let crc = Crc32::ieee();
    let io = |e: std::io::Error| e.to_string();
    server_info(&o.out, &crc).map_err(io)?;
    versioned(&o.out.join("clients.dat"))
        .and_then(|mut w| w.flush())
        .map_err(io)?;

    let start = Instant::now();
    let mut t = Totals::default();
    for c in 0..o.channels {
        let chan = format!("bench.c{c:03}");
        let mut rng = Rng::new(o.seed ^ (u64::from(c) << 32));
        write_channel(o, key.as_ref(), &crc, &chan, &mut rng, &mut t).map_err(io)?;
    }
    if let Some(dir) = &o.raft_dir {
        let material = match &o.key_file {
            Some(f) => Some(stanctl::cli::keys::read_key_file(f).map_err(|e| e.to_string())?),
            None => None,
        };
        write_raft_log(o, dir, material.as_ref().map(|m| m.as_slice()))
            .map_err(|e| e.to_string())?;
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "genstore: {} channels, {} slices, {} records ({} plain/empty, {} AES, {} ChaCha), \
         {:.1} MiB of records in {:.2}s ({:.0} MiB/s)",
        o.channels,
        t.slices,
        t.records,
        t.kinds[0],
        t.kinds[1],
        t.kinds[2],
        t.bytes as f64 / (1 << 20) as f64,
        secs,
        t.bytes as f64 / (1 << 20) as f64 / secs.max(1e-9)
    );
    Ok(())
}

/// go-msgpack's encoding of an unsigned integer (smallest form).
fn mp_uint(v: u64, out: &mut Vec<u8>) {
    match v {
        0..=0x7f => out.push(v as u8),
        0x80..=0xff => out.extend_from_slice(&[0xcc, v as u8]),
        0x100..=0xffff => {
            out.push(0xcd);
            out.extend_from_slice(&(v as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xce);
            out.extend_from_slice(&(v as u32).to_be_bytes());
        }
        _ => {
            out.push(0xcf);
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
}

fn mp_str(b: &[u8], out: &mut Vec<u8>) {
    stanctl::format::raft::msgpack::data_header(b.len(), out).expect("under 4 GiB");
    out.extend_from_slice(b);
}

/// A raft.Log value as the server's go-msgpack writes it: a map of six
/// keys in alphabetical order; AppendedAt as an 8-byte msgpack timestamp in
/// a str (as in the fixtures), Data nil when absent.
fn raft_value(index: u64, typ: u8, secs: u64, nanos: u32, data: Option<&[u8]>) -> Vec<u8> {
    let mut v = vec![0x86];
    mp_str(b"AppendedAt", &mut v);
    let t = (u64::from(nanos) << 34) | secs;
    mp_str(&t.to_be_bytes(), &mut v);
    mp_str(b"Data", &mut v);
    match data {
        Some(d) => mp_str(d, &mut v),
        None => v.push(0xc0),
    }
    mp_str(b"Extensions", &mut v);
    v.push(0xc0);
    mp_str(b"Index", &mut v);
    mp_uint(index, &mut v);
    mp_str(b"Term", &mut v);
    mp_uint(3, &mut v);
    mp_str(b"Type", &mut v);
    mp_uint(u64::from(typ), &mut v);
    v
}

fn write_raft_log(o: &Opts, dir: &Path, material: Option<&[u8]>) -> std::io::Result<()> {
    use stanctl::crypto::raft::{seal, RaftKey};
    use stanctl::format::raft::bbolt::Writer;
    let bolt = |e: stanctl::format::raft::bbolt::BoltError| std::io::Error::other(e.to_string());
    let key = material.map(|m| RaftKey::from_material(m, Backend::default()));
    let logdir = dir.join("bench-cluster");
    fs::create_dir_all(&logdir)?;
    let path = logdir.join("raft.log");
    if path.exists() {
        fs::remove_file(&path)?;
    }
    let mut w = Writer::create(&path, 4096).map_err(bolt)?;
    w.enter(b"channels").map_err(bolt)?;
    for c in 0..o.channels {
        let name = format!("bench.c{c:03}");
        w.put(name.as_bytes(), &u64::from(c + 1).to_be_bytes())
            .map_err(bolt)?;
    }
    w.leave(0).map_err(bolt)?;
    w.enter(b"conf").map_err(bolt)?;
    w.put(b"CurrentTerm", &3u64.to_be_bytes()).map_err(bolt)?;
    w.put(b"LastVoteCand", b"node-a").map_err(bolt)?;
    w.put(b"LastVoteTerm", &3u64.to_be_bytes()).map_err(bolt)?;
    w.leave(0).map_err(bolt)?;
    w.enter(b"logs").map_err(bolt)?;
    let mut rng = Rng::new(o.seed ^ 0x5241_4654);
    let prefix = (rng.next() as u32 | 1).to_be_bytes();
    let (mut commands, mut sealed) = (0u64, Vec::new());
    let mut payload = Vec::new();
    let first = o.raft_deleted + 1;
    for index in first..first + o.raft_entries {
        let (typ, data): (u8, Option<&[u8]>) = match index % 10 {
            1 => (5, Some(b"bench-configuration".as_slice())),
            5 => (1, None),
            _ => {
                commands += 1;
                let len = if o.raft_big_every > 0 && commands % o.raft_big_every == 0 {
                    10_240
                } else {
                    o.size_min + rng.below((o.size_max - o.size_min + 1) as u64) as usize
                };
                payload.resize(len.max(1), 0);
                rng.fill(&mut payload);
                // Plaintext never starts with 1 or 2 (unambiguous).
                if payload[0] == 1 || payload[0] == 2 {
                    payload[0] = b'p';
                }
                let pick = rng.below(100) as u32;
                let cipher = if pick < o.mix[0] {
                    None
                } else if pick < o.mix[0] + o.mix[1] {
                    Some(Cipher::Aes)
                } else {
                    Some(Cipher::ChaCha)
                };
                match (cipher, &key) {
                    (Some(c), Some(k)) => {
                        let mut nonce = [0u8; 12];
                        nonce[..4].copy_from_slice(&prefix);
                        nonce[4..].copy_from_slice(&index.to_be_bytes());
                        sealed.clear();
                        seal(k, c, &nonce, &payload, &mut sealed);
                        (0, Some(sealed.as_slice()))
                    }
                    _ => (0, Some(payload.as_slice())),
                }
            }
        };
        let value = raft_value(
            index,
            typ,
            1_700_000_000,
            (index % 1_000_000_000) as u32,
            data,
        );
        w.put(&index.to_be_bytes(), &value).map_err(bolt)?;
    }
    w.leave(0).map_err(bolt)?;
    w.finish(0, 2).map_err(bolt)?;
    File::open(&path)?.sync_all()?;
    eprintln!(
        "genstore: raft log {} with {} entries ({} commands) from index {first}",
        path.display(),
        o.raft_entries,
        commands
    );
    Ok(())
}

fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("genstore: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(64);
        }
    };
    match run(&o) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("genstore: {e}");
            ExitCode::from(74)
        }
    }
}
