//! The rule per payload: what each operation does with what it sees.

use super::*;

/// What to do with each payload. The keys live in `Job::keys`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// keys = [the key]: plaintext is sealed with it and `cipher`.
    Encrypt { cipher: Cipher },
    /// keys = every key given: envelopes any of them opens become plaintext.
    Decrypt,
    /// keys = [new key, old keys...]: envelopes an old key opens are re-sealed
    /// with the new key, keeping their cipher unless `cipher` is set; with
    /// `cipher`, envelopes the new key opens in the other cipher are too.
    Rekey { cipher: Option<Cipher> },
}

impl Rule {
    pub fn operation(&self) -> Operation {
        match self {
            Rule::Encrypt { .. } => Operation::Encrypt,
            Rule::Decrypt => Operation::Decrypt,
            Rule::Rekey { .. } => Operation::Rekey,
        }
    }
}

/// A run's rule with its keys and sink. For `Encrypt` and `Rekey`, `keys[0]`
/// is the key new envelopes are sealed with.
pub(super) struct Job<'a> {
    pub rule: Rule,
    pub keys: &'a [Key],
    pub assume_plaintext: bool,
    pub crc: Crc32,
    pub backend: Backend,
    /// Carry records the rewrite cannot handle over byte for byte.
    pub keep_damaged: bool,
    pub sink: &'a dyn Sink,
}

impl<'a> Job<'a> {
    /// The job `opts` describes, with these keys and sink; `keep_damaged`
    /// is the caller's (a stand-alone Raft log never salvages).
    pub fn new(
        opts: &RewriteOptions,
        keys: &'a [Key],
        keep_damaged: bool,
        sink: &'a dyn Sink,
    ) -> Self {
        Job {
            rule: opts.rule,
            keys,
            assume_plaintext: opts.assume_plaintext,
            crc: opts.crc.clone(),
            backend: opts.backend,
            keep_damaged,
            sink,
        }
    }
}

/// What a payload is, as far as the given keys can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Empty,
    Plain,
    /// First byte 1 or 2, 13 bytes or fewer: no envelope can be that short.
    Short,
    /// An envelope in this cipher, opened by `keys[i]`.
    Opened(usize, Cipher),
    Unopened(NonceOrigin),
}

/// What happens to a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Keep,
    Encrypt,
    Decrypt,
    Rekey,
}

/// The rule applied to one payload; `Err` is why it cannot be handled.
pub fn decide(rule: Rule, seen: Seen, assume_plaintext: bool) -> Result<Change, Refused> {
    Ok(match (seen, rule) {
        (Seen::Empty, _) => Change::Keep,
        (Seen::Plain, Rule::Encrypt { .. }) => Change::Encrypt,
        (Seen::Plain, _) => Change::Keep,
        // keys[0] is the target key. rekey --cipher re-seals its envelopes
        // in another cipher: the one command that changes a cipher.
        (Seen::Opened(0, has), Rule::Rekey { cipher: Some(want) }) if has != want => Change::Rekey,
        // encrypt keeps them (it seals plaintext; its report names the
        // rekey that converts them), as does rekey without --cipher.
        (Seen::Opened(0, _), Rule::Encrypt { .. } | Rule::Rekey { .. }) => Change::Keep,
        (Seen::Opened(..), Rule::Decrypt) => Change::Decrypt,
        (Seen::Opened(..), Rule::Rekey { .. }) => Change::Rekey,
        (Seen::Opened(..), Rule::Encrypt { .. }) => unreachable!("encrypt has one key"),
        // Decrypting leaves plaintext as it is, so a payload that only looks
        // like an envelope needs no decision: keeping its bytes loses
        // nothing, and a rerun after success (or a crash) stays a no-op.
        (Seen::Short | Seen::Unopened(NonceOrigin::Unknown), Rule::Decrypt) => Change::Keep,
        (Seen::Short | Seen::Unopened(NonceOrigin::Unknown), _) if !assume_plaintext => {
            return Err(Refused::Ambiguous)
        }
        (Seen::Short | Seen::Unopened(NonceOrigin::Unknown), Rule::Encrypt { .. }) => {
            Change::Encrypt
        }
        (Seen::Short | Seen::Unopened(NonceOrigin::Unknown), _) => Change::Keep,
        // A nonce in the server's or stanctl's scheme: a real envelope, even
        // with --assume-plaintext (sealing it again would bury it).
        (Seen::Unopened(_), _) => return Err(Refused::WrongKey),
    })
}

/// `Seen` from what the scanner recorded.
pub(super) fn seen_of(info: &RecordInfo) -> Seen {
    match (info.kind, info.key) {
        (PayloadKind::Empty, _) => Seen::Empty,
        (PayloadKind::Plain, _) => Seen::Plain,
        (PayloadKind::Short(_), _) => Seen::Short,
        (PayloadKind::Envelope(c), KeyOutcome::Opened(i)) => Seen::Opened(i as usize, c),
        (PayloadKind::Envelope(_), KeyOutcome::Unopened(o)) => Seen::Unopened(o),
        // Every rule has at least one key, so the scanner always tries.
        (PayloadKind::Envelope(_), KeyOutcome::NotTried) => Seen::Unopened(NonceOrigin::Unknown),
    }
}

/// Bytes field 4 takes in a record for a payload of `n` bytes (absent when empty).
pub(super) fn field4_len(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        1 + proto::varint_len(n as u64) + n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENC: Rule = Rule::Encrypt {
        cipher: Cipher::Aes,
    };
    const REKEY: Rule = Rule::Rekey { cipher: None };

    #[test]
    fn rules_per_payload() {
        use Seen::*;
        assert_eq!(decide(ENC, Plain, false), Ok(Change::Encrypt));
        assert_eq!(decide(ENC, Empty, false), Ok(Change::Keep));
        assert_eq!(decide(ENC, Opened(0, Cipher::Aes), false), Ok(Change::Keep));
        // encrypt never re-seals: another cipher under its key is kept.
        assert_eq!(
            decide(ENC, Opened(0, Cipher::ChaCha), false),
            Ok(Change::Keep)
        );
        assert_eq!(
            decide(Rule::Decrypt, Opened(1, Cipher::Aes), false),
            Ok(Change::Decrypt)
        );
        assert_eq!(decide(Rule::Decrypt, Plain, false), Ok(Change::Keep));
        assert_eq!(
            decide(REKEY, Opened(0, Cipher::ChaCha), false),
            Ok(Change::Keep)
        );
        assert_eq!(
            decide(REKEY, Opened(2, Cipher::Aes), false),
            Ok(Change::Rekey)
        );
        // rekey --cipher converts envelopes already under the new key.
        let to_aes = Rule::Rekey {
            cipher: Some(Cipher::Aes),
        };
        assert_eq!(
            decide(to_aes, Opened(0, Cipher::ChaCha), false),
            Ok(Change::Rekey)
        );
        assert_eq!(
            decide(to_aes, Opened(0, Cipher::Aes), false),
            Ok(Change::Keep)
        );
        assert_eq!(
            decide(to_aes, Opened(1, Cipher::Aes), false),
            Ok(Change::Rekey)
        );
        assert_eq!(decide(REKEY, Plain, false), Ok(Change::Keep));
    }

    #[test]
    fn ambiguous_needs_assume_plaintext() {
        let look = Seen::Unopened(NonceOrigin::Unknown);
        for rule in [ENC, REKEY] {
            assert_eq!(decide(rule, look, false), Err(Refused::Ambiguous));
            assert_eq!(decide(rule, Seen::Short, false), Err(Refused::Ambiguous));
        }
        // Decrypt keeps them as they are: nothing to decide, and reruns stay no-ops.
        assert_eq!(decide(Rule::Decrypt, look, false), Ok(Change::Keep));
        assert_eq!(decide(Rule::Decrypt, Seen::Short, false), Ok(Change::Keep));
        assert_eq!(decide(ENC, look, true), Ok(Change::Encrypt));
        assert_eq!(decide(ENC, Seen::Short, true), Ok(Change::Encrypt));
        assert_eq!(decide(Rule::Decrypt, look, true), Ok(Change::Keep));
        assert_eq!(decide(REKEY, Seen::Short, true), Ok(Change::Keep));
    }

    #[test]
    fn real_envelopes_under_unknown_keys_are_always_refused() {
        for o in [NonceOrigin::Server, NonceOrigin::Stanctl] {
            for rule in [ENC, Rule::Decrypt, REKEY] {
                assert_eq!(
                    decide(rule, Seen::Unopened(o), true),
                    Err(Refused::WrongKey)
                );
            }
        }
    }

    #[test]
    fn field4_sizes() {
        assert_eq!(field4_len(0), 0);
        assert_eq!(field4_len(5), 7);
        assert_eq!(field4_len(200), 203);
    }
}
